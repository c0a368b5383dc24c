// Package testenv gives integration tests their own database and Redis key
// prefix on the servers that `make test` provides (or that the environment
// names), and a TCP proxy that tests use to cut a server off.
//
// Environment:
//
//	PERSIST_TEST_MONGO_URI  MongoDB-wire server (FerretDB under make test, or a real MongoDB)
//	PERSIST_TEST_REDIS_URL  Redis, as redis://host:port/db
//	PERSIST_TEST_REQUIRE=1  fail, rather than skip, when either is unset
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/persistgen/persistgen/runtime"
)

// Env is one test's slice of the servers.
type Env struct {
	// Config opens further Conns on the same database and key prefix (a
	// second process's view).
	Config runtime.Config
	Conn   *runtime.Conn
	// Redis is a direct client, for inspecting and corrupting the cache:
	// a cluster client when the tests run on a Redis Cluster
	// (PERSIST_TEST_REDIS_CLUSTER).
	Redis redis.UniversalClient
}

// URIs returns the servers' addresses, skipping (or failing, when
// PERSIST_TEST_REQUIRE=1) the test when they are not configured.
func URIs(t testing.TB) (mongoURI, redisURL string) {
	t.Helper()
	mongoURI, redisURL = os.Getenv("PERSIST_TEST_MONGO_URI"), os.Getenv("PERSIST_TEST_REDIS_URL")
	if mongoURI == "" || redisURL == "" {
		msg := "integration test: PERSIST_TEST_MONGO_URI and PERSIST_TEST_REDIS_URL are not set; run `make test`, which starts the servers"
		if os.Getenv("PERSIST_TEST_REQUIRE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return mongoURI, redisURL
}

// ID returns a short random identifier.
func ID() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// New opens a Conn on a fresh database and key prefix, removed when the test
// ends. mod may adjust the Config before Open.
func New(t testing.TB, mod ...func(*runtime.Config)) *Env {
	t.Helper()
	mongoURI, redisURL := URIs(t)
	id := ID()
	cfg := runtime.Config{
		MongoURI:     mongoURI,
		Database:     "pgt_" + id,
		RedisURL:     redisURL,
		KeyPrefix:    "pgt:" + id + ":",
		ReadyTimeout: 20 * time.Second,
	}
	cluster := Cluster()
	if len(cluster) > 0 {
		cfg.RedisClusterAddrs = cluster
	}
	for _, m := range mod {
		m(&cfg)
	}
	cfg = pointedElsewhere(cfg, redisURL, "")
	conn, err := runtime.Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	ro, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("PERSIST_TEST_REDIS_URL: %v", err)
	}
	var rdb redis.UniversalClient = redis.NewClient(ro)
	if len(cluster) > 0 {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster})
	}
	env := &Env{Config: cfg, Conn: conn, Redis: rdb}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Drop through a Conn without a proxy in the way.
		clean := cfg
		clean.MongoURI, clean.RedisURL, clean.Redis = mongoURI, redisURL, nil
		if c, err := runtime.Open(clean); err == nil {
			if err := c.Database().Drop(ctx); err != nil {
				t.Logf("cleanup: drop %s: %v", cfg.Database, err)
			}
			_ = c.Close(ctx)
		}
		DeletePrefix(ctx, t, rdb, cfg.KeyPrefix)
		_ = rdb.Close()
		_ = conn.Close(ctx)
	})
	return env
}

// Open opens another Conn on the same database and prefix, closed at the end
// of the test.
func (e *Env) Open(t testing.TB, mod ...func(*runtime.Config)) *runtime.Conn {
	t.Helper()
	cfg := e.Config
	for _, m := range mod {
		m(&cfg)
	}
	cfg = pointedElsewhere(cfg, e.Config.RedisURL, e.Config.RedisAddr)
	c, err := runtime.Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// Cluster returns the seed addresses of the Redis Cluster the tests run
// on (PERSIST_TEST_REDIS_CLUSTER, comma separated), or nil.
func Cluster() []string {
	var out []string
	for _, a := range strings.Split(os.Getenv("PERSIST_TEST_REDIS_CLUSTER"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Keys lists the Redis keys under the test's prefix, without the prefix.
func (e *Env) Keys(ctx context.Context, t testing.TB) []string {
	t.Helper()
	keys, err := scanKeys(ctx, e.Redis, e.Config.KeyPrefix+"*")
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	for i, k := range keys {
		keys[i] = strings.TrimPrefix(k, e.Config.KeyPrefix)
	}
	return keys
}

// scanKeys lists the keys matching pattern, on every master of a cluster.
func scanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	scan := func(ctx context.Context, c *redis.Client) ([]string, error) {
		var out []string
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			out = append(out, iter.Val())
		}
		return out, iter.Err()
	}
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return scan(ctx, rdb.(*redis.Client))
	}
	var mu sync.Mutex
	var out []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		keys, err := scan(ctx, c)
		mu.Lock()
		out = append(out, keys...)
		mu.Unlock()
		return err
	})
	return out, err
}

// DeletePrefix deletes every key under prefix (never the whole server).
func DeletePrefix(ctx context.Context, t testing.TB, rdb redis.UniversalClient, prefix string) {
	if prefix == "" {
		return
	}
	keys, err := scanKeys(ctx, rdb, prefix+"*")
	if err != nil {
		t.Logf("cleanup: redis scan: %v", err)
	}
	if len(keys) == 0 {
		return
	}
	p := rdb.Pipeline() // a DEL a key: a cluster refuses one DEL across slots
	for _, k := range keys {
		p.Del(ctx, k)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Logf("cleanup: redis del: %v", err)
	}
}

// Need skips the test, naming what is missing, when the server lacks a
// capability the test needs (only there: on a server that has it, the test
// runs). The Conn is made ready first.
func Need(t testing.TB, c *runtime.Conn, want runtime.Capabilities) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("ready: %v", err)
	}
	if missing := c.Capabilities().Missing(want); missing != "" {
		t.Skipf("the server (%s) lacks %s", c.Server().Product, missing)
	}
}

// pointedElsewhere drops the cluster addresses from a Config whose test
// pointed Redis somewhere else (a proxy, a server of its own, a dead port):
// that test is about one Redis.
func pointedElsewhere(cfg runtime.Config, url, addr string) runtime.Config {
	if cfg.RedisURL != url || cfg.RedisAddr != addr || cfg.Redis != nil {
		cfg.RedisClusterAddrs = nil
	}
	return cfg
}
