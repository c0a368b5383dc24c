package tests

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// On a Redis Cluster (PERSIST_TEST_REDIS_CLUSTER, which `make test` starts:
// 3 masters, 3 replicas), the Conn talks to the cluster, and the rows of
// the value cache and the identities spread over its masters: every script
// touches one key, every value key is its own hash tag.
func TestOnARedisClusterKeysSpreadOverMasters(t *testing.T) {
	if len(testenv.Cluster()) == 0 {
		t.Skip("not on a Redis Cluster (PERSIST_TEST_REDIS_CLUSTER is not set)")
	}
	vs := memorySchemaIn(runtime.CacheValue, 0)
	env := setup(t, vs)
	if _, ok := env.Conn.Redis().(*redis.ClusterClient); !ok {
		t.Fatalf("the Conn's Redis is a %T, not a cluster client", env.Conn.Redis())
	}
	ids := memorySchemaIn(runtime.CacheIdentity, 0)
	ids.Collection = "ids-items"
	must(t, env.Conn.EnsureIndexes(ctxT(t), ids))
	v, id := newRepo[memKey, memData](t, env.Conn, vs), newRepo[memKey, memData](t, env.Conn, ids)
	var items []runtime.Item[memKey, memData]
	for i := range 60 {
		k := memKey{"s", "b", strconv.Itoa(i)}
		must(t, v.Put(ctxT(t), k, memData{Value: i}, ms(1)))
		items = append(items, runtime.Item[memKey, memData]{Key: k, Payload: memData{Value: i}, When: ms(1)})
	}
	must(t, id.PutMany(ctxT(t), items)) // one pipeline across slots
	for i := range 60 {
		k := memKey{"s", "b", strconv.Itoa(i)}
		for _, r := range []*runtime.Repo[memKey, memData]{v, id} {
			if rec, err := r.Get(ctxT(t), k); err != nil || rec.Payload.Value != i {
				t.Fatalf("Get %v = %+v, %v", k, rec.Payload, err)
			}
		}
	}
	var mu sync.Mutex
	perMaster := map[string]int{}
	err := env.Redis.(*redis.ClusterClient).ForEachMaster(ctxT(t), func(ctx context.Context, c *redis.Client) error {
		n := 0
		iter := c.Scan(ctx, 0, env.Config.KeyPrefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		mu.Lock()
		perMaster[c.Options().Addr] = n
		mu.Unlock()
		return iter.Err()
	})
	must(t, err)
	held, total := 0, 0
	for _, n := range perMaster {
		total += n
		if n > 0 {
			held++
		}
	}
	if held < 2 || total < 120 {
		t.Fatalf("keys per master %v: want them spread over several masters, 120 at least (60 rows in value mode, 60 identities)", perMaster)
	}
	if st := env.Conn.Stats(); st.RedisFailures != 0 {
		t.Fatalf("Redis failures on the cluster: %d", st.RedisFailures)
	}
}
