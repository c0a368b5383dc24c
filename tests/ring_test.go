package tests

import (
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// The Redis side depends on a small interface, so a single node, a cluster
// and a ring all fit.
var (
	_ runtime.RedisClient = (*redis.Client)(nil)
	_ runtime.RedisClient = (*redis.ClusterClient)(nil)
	_ runtime.RedisClient = (*redis.Ring)(nil)
)

// startRedis starts a redis-server of the test's own on a free loopback
// port, stopped when the test ends, and returns its address.
func startRedis(t *testing.T) string {
	t.Helper()
	port := testenv.StartRedisServer(t)
	testenv.WaitPort(t, port)
	return "127.0.0.1:" + strconv.Itoa(port)
}

func TestRingOfTwoRedisServersAsTheCache(t *testing.T) {
	t.Parallel()
	a, b := startRedis(t), startRedis(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": a, "b": b}})
	t.Cleanup(func() { ring.Close() })
	env := testenv.New(t, func(c *runtime.Config) { c.Redis = ring })
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	var keys []memKey
	var items []runtime.Item[memKey, memData]
	for i := 0; i < 40; i++ {
		k := memKey{"s", "b", itoa(i)}
		keys = append(keys, k)
		items = append(items, runtime.Item[memKey, memData]{Key: k, Payload: memData{Value: i}, When: ms(1)})
	}
	must(t, r.PutMany(ctx, items))
	tctx, tr := runtime.WithTrace(ctx)
	got, err := r.GetMany(tctx, keys)
	must(t, err)
	for i, g := range got {
		if g == nil || g.Payload.Value != i {
			t.Fatalf("key %d read %+v", i, g)
		}
	}
	if tr.Mongo() != 1 {
		t.Fatalf("warm batch read through the ring: %v; want the identities from Redis and one find", tr.Commands())
	}
	// The identities are spread over both servers.
	for name, addr := range map[string]string{"a": a, "b": b} {
		c := redis.NewClient(&redis.Options{Addr: addr})
		n, err := c.DBSize(ctx).Result()
		c.Close()
		must(t, err)
		if n == 0 {
			t.Errorf("server %s holds no identity", name)
		}
	}
	one, err := r.Get(ctx, keys[7])
	must(t, err)
	if one.Payload.Value != 7 {
		t.Fatalf("Get through the ring: %+v", one.Payload)
	}
}
