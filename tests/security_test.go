package tests

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
	"github.com/persistgen/persistgen/schema"
)

// logBuffer is a slog destination the test reads back: every record with
// its attributes, as text.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// noSecret fails the test when text holds a secret, in any spelling.
func noSecret(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			if strings.Contains(text, form) {
				t.Errorf("%s shows the secret %q:\n%s", where, form, text)
			}
		}
	}
}

// A Redis that refuses the password is reported as what it is, at once:
// RedisRequired makes it fatal, naming the server and the user and never
// the password; without it the Conn serves every read correctly from
// MongoDB and logs the refusal once, at Error.
func TestRedisWrongPasswordIsUnauthorized(t *testing.T) {
	env := setup(t, memorySchema())
	const right, wrong = "right-Redis-pw-41", "wrong-Redis-pw-42"
	port := testenv.StartRedisServer(t, "--requirepass", right)
	testenv.WaitPort(t, port)
	addr := "127.0.0.1:" + strconv.Itoa(port)

	// A refused password is final: a guard that waited on it would end with
	// Ready's context (see beyondTheTest), not with ErrUnauthorized.
	c := env.Open(t, func(c *runtime.Config) {
		c.RedisURL, c.RedisAddr, c.RedisPassword, c.RedisRequired = "", addr, wrong, true
		c.ReadyTimeout = beyondTheTest
	})
	err := c.Ready(ctxT(t))
	if !errors.Is(err, runtime.ErrUnauthorized) {
		t.Fatalf("Ready = %v; want ErrUnauthorized, at once: a refused password is final", err)
	}
	for _, want := range []string{addr, `user "default"`, "CC_REDIS_PASSWORD"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	noSecret(t, "the error", err.Error(), wrong, right)

	// Fail-open: correct reads from MongoDB, one Error record.
	var logs logBuffer
	c2 := env.Open(t, func(c *runtime.Config) {
		c.RedisURL, c.RedisAddr, c.RedisPassword = "", addr, wrong
		c.RedisRetryAfter = 20 * time.Millisecond
		c.Logger = logs.logger()
	})
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, c2, memorySchema())
	for i := range 10 {
		k := memKey{"s", "b", strconv.Itoa(i)}
		must(t, r.Put(ctx, k, memData{Value: i}, ms(int64(i+1))))
		rec, err := r.Get(ctx, k)
		if err != nil || rec.Payload.Value != i {
			t.Fatalf("Get %v = %+v, %v", k, rec.Payload, err)
		}
		time.Sleep(25 * time.Millisecond) // past RedisRetryAfter: Redis is tried again
	}
	text := logs.String()
	if n := strings.Count(text, "level=ERROR"); n != 1 || !strings.Contains(text, "refused the credentials") {
		t.Errorf("want the refusal logged once at Error; got %d Error records:\n%s", n, text)
	}
	if c2.Stats().RedisFailures < 2 {
		t.Errorf("Redis was not tried again: %+v", c2.Stats())
	}
	noSecret(t, "the log", text, wrong, right)
}

// createUser makes a MongoDB user with readWrite on db, or skips when the
// server has no user management (the embedded FerretDB v1).
func createUser(t *testing.T, adminURI, db, user, password string) {
	t.Helper()
	ctx := ctxT(t)
	cl, err := mongo.Connect(options.Client().ApplyURI(adminURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Disconnect(context.Background()) })
	cmd := bson.D{{Key: "createUser", Value: user}, {Key: "pwd", Value: password},
		{Key: "roles", Value: bson.A{bson.D{{Key: "role", Value: "readWrite"}, {Key: "db", Value: db}}}}}
	if err := cl.Database("admin").RunCommand(ctx, cmd).Err(); err != nil {
		t.Skipf("the server cannot create users (createUser: %v): the test needs a server with user management", err)
	}
	t.Cleanup(func() {
		_ = cl.Database("admin").RunCommand(context.Background(), bson.D{{Key: "dropUser", Value: user}}).Err()
	})
}

// withCredentials returns uri with user and password, authenticating
// against admin.
func withCredentials(t *testing.T, uri, user, password string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	q := u.Query()
	q.Set("authSource", "admin")
	u.RawQuery = q.Encode()
	return u.String()
}

// A MongoDB that refuses the credentials is ErrUnauthorized within a
// second or two, naming the server and the user, never the password, and
// saying what to do; the right credentials work.
func TestMongoWrongPasswordIsUnauthorized(t *testing.T) {
	env := setup(t, memorySchema())
	mongoURI, _ := testenv.URIs(t)
	user := "pgt_" + testenv.ID()
	const right, wrong = "right/Mongo:pw@43", "wrong/Mongo:pw@44"
	createUser(t, mongoURI, env.Config.Database, user, right)

	// The refusal is reported at once: a guard that waited on it would end
	// with Ready's context (see beyondTheTest), not with ErrUnauthorized.
	var logs logBuffer
	c := env.Open(t, func(c *runtime.Config) {
		c.MongoURI = withCredentials(t, mongoURI, user, wrong)
		c.Logger = logs.logger()
		c.ReadyTimeout = beyondTheTest
	})
	err := c.Ready(ctxT(t))
	if !errors.Is(err, runtime.ErrUnauthorized) || errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("Ready = %v; want ErrUnauthorized, at once, not an outage", err)
	}
	for _, want := range []string{strconv.Quote(user), "CC_MONGO_CONNECTION_STRING", "authSource"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	noSecret(t, "the error", err.Error()+logs.String(), wrong, right)
	r := newRepo[memKey, memData](t, c, memorySchema())
	_, err = r.Get(ctxT(t), memKey{"s", "b", "1"})
	if !errors.Is(err, runtime.ErrUnauthorized) {
		t.Fatalf("Get on the refused Conn = %v; want ErrUnauthorized", err)
	}
	noSecret(t, "Get's error", err.Error(), wrong, right)

	good := env.Open(t, func(c *runtime.Config) { c.MongoURI = withCredentials(t, mongoURI, user, right) })
	rg := newRepo[memKey, memData](t, good, memorySchema())
	must(t, rg.Put(ctxT(t), memKey{"s", "b", "1"}, memData{Value: 7}, ms(1)))
	if rec, err := rg.Get(ctxT(t), memKey{"s", "b", "1"}); err != nil || rec.Payload.Value != 7 {
		t.Fatalf("with the right password: %+v, %v", rec.Payload, err)
	}
}

// Redis over TLS with a certificate the test makes: the runtime trusts the
// CA it is given and caches identities through it; with another CA the
// handshake fails at once with an error that says to set CC_REDIS_TLS_CA.
func TestRedisOverTLS(t *testing.T) {
	env := setup(t, memorySchema())
	certs := testenv.MakeCerts(t)
	tlsPort := testenv.FreePort(t)
	testenv.StartRedisServer(t, "--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", certs.CertFile,
		"--tls-key-file", certs.KeyFile, "--tls-ca-cert-file", certs.CAFile, "--tls-auth-clients", "no")
	testenv.WaitPort(t, tlsPort)
	addr := "127.0.0.1:" + strconv.Itoa(tlsPort)

	c := env.Open(t, func(c *runtime.Config) {
		c.RedisURL, c.RedisAddr, c.RedisTLS, c.RedisTLSCAFile, c.RedisRequired = "", addr, true, certs.CAFile, true
	})
	ctx := ctxT(t)
	must(t, c.Ready(ctx))
	r := newRepo[memKey, memData](t, c, memorySchema())
	k := memKey{"s", "b", "tls"}
	must(t, r.Put(ctx, k, memData{Value: 3}, ms(1)))
	before := c.Stats()
	if rec, err := r.Get(ctx, k); err != nil || rec.Payload.Value != 3 {
		t.Fatalf("Get = %+v, %v", rec.Payload, err)
	}
	after := c.Stats()
	if after.RedisFailures != 0 || after.Redis == before.Redis {
		t.Fatalf("the identity did not go through Redis over TLS: before %+v after %+v", before, after)
	}
	// The identity is really in that Redis: read it over TLS directly.
	rk, err := c.Redis().(*redis.Client).Get(ctx, env.Config.KeyPrefix+"memory_cache:s:b:tls").Result()
	if err != nil || len(rk) != 24 {
		t.Fatalf("identity in the TLS Redis: %q, %v", rk, err)
	}

	// The handshake failure is reported at once: a guard that waited on it
	// would end with Ready's context (see beyondTheTest), whose error says
	// nothing of the certificate.
	other := testenv.MakeCerts(t) // a CA that did not sign the server's certificate
	bad := env.Open(t, func(c *runtime.Config) {
		c.RedisURL, c.RedisAddr, c.RedisTLS, c.RedisTLSCAFile, c.RedisRequired = "", addr, true, other.CAFile, true
		c.ReadyTimeout = beyondTheTest
	})
	err = bad.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), "CC_REDIS_TLS_CA") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Ready with the wrong CA = %v; want an error about the certificate naming CC_REDIS_TLS_CA", err)
	}
	if _, err := runtime.Open(runtime.Config{RedisTLS: true, RedisTLSCAFile: "/nonexistent/ca.pem"}); err == nil || !strings.Contains(err.Error(), "CC_REDIS_TLS_CA") {
		t.Fatalf("a missing CA file: %v", err)
	}
}

// The Redis ACL that `persistgen acl` prints (schema.RedisACL) is enough:
// a user limited to it runs the main paths with no Redis failure, and is
// refused a command outside the list and a key outside the patterns.
func TestRedisACLLeastPrivilege(t *testing.T) {
	for _, mode := range []runtime.CacheMode{runtime.CacheIdentity, runtime.CacheValue, runtime.CacheLocal} {
		t.Run(string(mode), func(t *testing.T) { testRedisACL(t, memorySchemaIn(mode, 0)) })
	}
}

func testRedisACL(t *testing.T, s *runtime.Schema) {
	env := setup(t, s)
	port := testenv.StartRedisServer(t)
	testenv.WaitPort(t, port)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx := ctxT(t)
	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	const pw = "acl-pw-45"
	rule := schema.RedisACL(env.Config.KeyPrefix, s)
	args := []any{"ACL", "SETUSER", "pg", "on", ">" + pw}
	for _, f := range strings.Fields(rule) {
		args = append(args, f)
	}
	must(t, admin.Do(ctx, args...).Err())
	// The default user is switched off: only the ACL user can work.
	must(t, admin.Do(ctx, "ACL", "SETUSER", "default", "off").Err())

	var logs logBuffer
	c := env.Open(t, func(c *runtime.Config) {
		c.RedisURL, c.RedisAddr, c.RedisUsername, c.RedisPassword, c.RedisRequired = "", addr, "pg", pw, true
		c.Logger = logs.logger()
	})
	must(t, c.Ready(ctx))
	r := newRepo[memKey, memData](t, c, s)
	var items []runtime.Item[memKey, memData]
	var keys []memKey
	for i := range 20 {
		k := memKey{"s", "b", strconv.Itoa(i)}
		keys = append(keys, k)
		items = append(items, runtime.Item[memKey, memData]{Key: k, Payload: memData{Value: i}, When: ms(int64(i + 1))})
	}
	must(t, r.PutMany(ctx, items))
	must(t, r.Put(ctx, keys[0], memData{Value: 100}, ms(50)))
	got, err := r.GetMany(ctx, keys)
	must(t, err)
	if len(got) != 20 || got[0].Payload.Value != 100 || got[19].Payload.Value != 19 {
		t.Fatalf("GetMany = %d records (%+v)", len(got), got)
	}
	if ok, err := r.Remove(ctx, keys[1]); err != nil || !ok {
		t.Fatalf("Remove = %v, %v", ok, err)
	}
	if _, err := r.Get(ctx, keys[1]); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Get after Remove = %v", err)
	}
	if s.ValueCached() {
		for range 2 { // a miss that fills, then a hit
			if rec, err := r.Get(ctx, keys[2]); err != nil || rec.Payload.Value != 2 {
				t.Fatalf("Get = %+v, %v", rec.Payload, err)
			}
		}
		// (No write leaves its row on a Redis this young: see
		// TestLocalCacheAcrossARedisRestart.)
		if st := c.Stats().Cache[string(s.Mode())]; st.Hits+st.LocalHits == 0 {
			t.Fatalf("no value-cache hit under the ACL: %+v", st)
		}
	}
	if st := c.Stats(); st.RedisFailures != 0 || st.Redis == 0 {
		t.Fatalf("under the ACL: %+v\n%s", st, logs.String())
	}
	pg := redis.NewClient(&redis.Options{Addr: addr, Username: "pg", Password: pw})
	defer pg.Close()
	for _, cmd := range [][]any{{"FLUSHALL"}, {"KEYS", "*"}, {"SET", "elsewhere:x", "1"}, {"GET", "signal_cache:a:b:c"}} {
		if err := pg.Do(ctx, cmd...).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
			t.Errorf("%v under the ACL = %v; want NOPERM", cmd, err)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged under the ACL:\n%s", logs.String())
	}
}

// The commands shown in the README print no secret from any variable: the
// generator (validate, acl), and the server description make test prints,
// given connection strings with passwords that a server refuses or that do
// not parse.
func TestCommandsNeverPrintSecrets(t *testing.T) {
	mongoURI, _ := testenv.URIs(t)
	root := testenv.Root(t)
	const mongoPW, redisPW = "cmd/Mongo:pw@46", "cmd-Redis-pw-47"
	env := []string{
		"CC_MONGO_CONNECTION_STRING=" + withCredentials(t, mongoURI, "nobody_"+testenv.ID(), mongoPW),
		"CC_REDIS_PASSWORD=" + redisPW, "CC_REDIS_USER=bob",
		"PERSIST_TEST_MONGO_URI=" + withCredentials(t, mongoURI, "nobody_"+testenv.ID(), mongoPW),
		"PERSIST_TEST_REDIS_URL=redis://bob:" + redisPW + "@127.0.0.1:1/0",
	}
	for i, args := range [][]string{
		{"run", "./cmd/persistgen", "validate"},
		{"run", "./cmd/persistgen", "acl"},
		{"run", "./internal/testenv/serverinfo"},
		{"run", "./internal/testenv/serverinfo", "-mongo", "mongodb://alice:" + url.QueryEscape(mongoPW) + "@127.0.0.1:notaport/x"},
	} {
		out, err := testenv.GoErr(root, env, args...)
		what := "go run " + args[1] + " (case " + strconv.Itoa(i) + ")" // the arguments hold the secret
		noSecret(t, what, out, mongoPW, redisPW)
		if strings.Contains(args[1], "serverinfo") && (err == nil || !strings.Contains(out, "xxxxx") && !strings.Contains(out, "unauthorized")) {
			t.Errorf("%s should fail saying why, redacted:\n%s", what, out)
		}
	}
}

// MongoDB over TLS through the connection string (tls, tlsCAFile), against
// a server listening with a certificate the test makes; with another CA the
// first operation fails within seconds, saying to give tlsCAFile.
func TestMongoOverTLS(t *testing.T) {
	env := setup(t, memorySchema())
	certs := testenv.MakeCerts(t)
	port := testenv.StartFerretDB2(t, false, &certs).TLSPort
	uri := func(ca string) string {
		return "mongodb://127.0.0.1:" + strconv.Itoa(port) + "/?tls=true&tlsCAFile=" + url.QueryEscape(ca)
	}
	c := env.Open(t, func(c *runtime.Config) { c.MongoURI = uri(certs.CAFile) })
	ctx := ctxT(t)
	must(t, c.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, c, memorySchema())
	k := memKey{"s", "b", "tls"}
	must(t, r.Put(ctx, k, memData{Value: 9}, ms(1)))
	if rec, err := r.Get(ctx, k); err != nil || rec.Payload.Value != 9 {
		t.Fatalf("Get over TLS = %+v, %v", rec.Payload, err)
	}
	// Another Conn over TLS reads the same row (its identity comes from Redis).
	again := newRepo[memKey, memData](t, env.Open(t, func(c *runtime.Config) { c.MongoURI = uri(certs.CAFile) }), memorySchema())
	if rec, err := again.Get(ctx, k); err != nil || rec.Payload.Value != 9 {
		t.Fatalf("Get on a second TLS Conn = %+v, %v", rec.Payload, err)
	}

	// The handshake failure is reported within seconds, not after the
	// readiness wait: a guard that waited on it would end with Ready's
	// context (see beyondTheTest), whose error says nothing of tlsCAFile.
	other := testenv.MakeCerts(t)
	bad := env.Open(t, func(c *runtime.Config) {
		c.MongoURI = uri(other.CAFile)
		c.ReadyTimeout = beyondTheTest
	})
	err := bad.Ready(ctx)
	if err == nil || !strings.Contains(err.Error(), "tlsCAFile") || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Ready with the wrong CA = %v", err)
	}
}

// Passwords can come from files (Docker or Kubernetes secrets), so that no
// variable and no process argument holds them.
func TestPasswordsFromFiles(t *testing.T) {
	env := setup(t, memorySchema())
	mongoURI, _ := testenv.URIs(t)
	user := "pgt_" + testenv.ID()
	const mongoPW, redisPW = "file-Mongo-pw-48", "file-Redis-pw-49"
	createUser(t, mongoURI, env.Config.Database, user, mongoPW)
	port := testenv.StartRedisServer(t, "--requirepass", redisPW)
	testenv.WaitPort(t, port)
	dir := t.TempDir()
	mf, rf := dir+"/mongo_password", dir+"/redis_password"
	must(t, os.WriteFile(mf, []byte(mongoPW+"\n"), 0o600))
	must(t, os.WriteFile(rf, []byte(redisPW+"\n"), 0o600))
	u, err := url.Parse(withCredentials(t, mongoURI, user, "unused"))
	must(t, err)
	u.User = url.User(user) // no password in the connection string
	c := env.Open(t, func(c *runtime.Config) {
		c.MongoURI, c.MongoPasswordFile = u.String(), mf
		c.RedisURL, c.RedisAddr, c.RedisPasswordFile, c.RedisRequired = "", "127.0.0.1:"+strconv.Itoa(port), rf, true
	})
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, c, memorySchema())
	must(t, r.Put(ctx, memKey{"s", "b", "f"}, memData{Value: 5}, ms(1)))
	if rec, err := r.Get(ctx, memKey{"s", "b", "f"}); err != nil || rec.Payload.Value != 5 || c.Stats().RedisFailures != 0 {
		t.Fatalf("with password files: %+v, %v, %+v", rec.Payload, err, c.Stats())
	}
	// A missing file is a clear error at Open; the password never shows.
	_, err = runtime.Open(runtime.Config{MongoURI: u.String(), MongoPasswordFile: dir + "/missing"})
	if err == nil || !strings.Contains(err.Error(), "CC_MONGO_PASSWORD_FILE") {
		t.Fatalf("missing password file: %v", err)
	}
}

// A server that requires a login, reached without one, fails the first
// operation at once saying so (not later, at the first write).
func TestMongoWithoutALoginIsUnauthorized(t *testing.T) {
	env := setup(t, memorySchema())
	f := testenv.StartFerretDB2(t, true, nil)
	// At once: a guard that waited on the refusal would end with Ready's
	// context (see beyondTheTest), not with ErrUnauthorized.
	c := env.Open(t, func(c *runtime.Config) {
		c.MongoURI = "mongodb://127.0.0.1:" + strconv.Itoa(f.Port) + "/"
		c.ReadyTimeout = beyondTheTest
	})
	err := c.Ready(ctxT(t))
	if !errors.Is(err, runtime.ErrUnauthorized) || !strings.Contains(err.Error(), "requires a login") {
		t.Fatalf("Ready = %v; want ErrUnauthorized saying it requires a login", err)
	}
}

// A Redis that was down, and comes back refusing the password, is logged
// again, at Error: the failure changed kind.
func TestRedisRefusalAfterAnOutageIsLogged(t *testing.T) {
	env := setup(t, memorySchema())
	port := testenv.FreePort(t)
	var logs logBuffer
	// Ready waits a second for Redis, then works around it (longer where
	// MongoDB's probe needs longer: see openReady).
	c := openReady(t, env, time.Second, func(c *runtime.Config) {
		c.RedisURL, c.RedisAddr, c.RedisPassword = "", "127.0.0.1:"+strconv.Itoa(port), "outage-then-wrong-pw"
		c.RedisRetryAfter, c.RedisTimeout = 20*time.Millisecond, 100*time.Millisecond
		c.Logger = logs.logger()
	})
	r := newRepo[memKey, memData](t, c, memorySchema())
	ctx := ctxT(t)
	must(t, r.Put(ctx, memKey{"s", "b", "1"}, memData{Value: 1}, ms(1)))
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("the outage was not logged:\n%s", logs.String())
	}
	testenv.StartRedisServerOn(t, port, "--requirepass", "the-rotated-pw")
	testenv.WaitPort(t, port)
	for deadline := time.Now().Add(patience); !strings.Contains(logs.String(), "refused the credentials"); {
		if time.Now().After(deadline) {
			t.Fatalf("the refusal after the outage was not logged:\n%s", logs.String())
		}
		time.Sleep(30 * time.Millisecond)
		if rec, err := r.Get(ctx, memKey{"s", "b", "1"}); err != nil || rec.Payload.Value != 1 {
			t.Fatalf("Get = %+v, %v", rec.Payload, err)
		}
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Fatalf("%d Error records:\n%s", n, logs.String())
	}
	noSecret(t, "the log", logs.String(), "outage-then-wrong-pw", "the-rotated-pw")
}
