package tests

// The Redis breaker: what turns the identity cache off, and what brings it
// back.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 10a: the Redis breaker ran on the domain clock (Config.Now), so a
// simulated clock kept the cache off for good. It runs on the wall clock.
func TestRedisBreakerIgnoresTheSimulatedClock(t *testing.T) {
	t.Parallel()
	_, redisURL := testenv.URIs(t)
	proxy := testenv.NewProxy(t, strings.TrimSuffix(strings.TrimPrefix(redisURL, "redis://"), "/0"))
	frozen := time.UnixMilli(1_600_000_000_000)
	env := testenv.New(t, func(c *runtime.Config) {
		c.RedisURL = "redis://" + proxy.Addr() + "/0"
		c.RedisRetryAfter = 100 * time.Millisecond
		c.Now = func() time.Time { return frozen }
	})
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"s", "b", "m"}
	proxy.Cut()
	must(t, r.Put(ctx, k, memData{Value: 1}, ms(1))) // Redis fails: the breaker opens
	proxy.Restore()
	deadline := time.Now().Add(patience)
	for {
		must(t, r.Put(ctx, k, memData{Value: 2}, ms(2)))
		tctx, tr := runtime.WithTrace(ctx)
		_, err := r.Get(tctx, k)
		must(t, err)
		if tr.Redis() == 1 && tr.Mongo() == 1 {
			return // a warm read: the cache is back
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache stays off under a simulated clock: %v", tr.Commands())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 10b: a caller's own cancelled context counted as a Redis failure
// and turned the cache off for every caller. It does not.
func TestACallersCancelledContextDoesNotTurnTheCacheOff(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"s", "b", "m"}
	must(t, r.Put(ctx, k, memData{Value: 1}, ms(1)))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Get(cancelled, k); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context: %v", err)
	}
	tctx, tr := runtime.WithTrace(ctx)
	if _, err := r.Get(tctx, k); err != nil {
		t.Fatal(err)
	}
	if tr.Redis() != 1 || tr.Mongo() != 1 || env.Conn.Stats().RedisFailures != 0 {
		t.Fatalf("after another caller's cancellation: %v, %d Redis failures; want a warm read", tr.Commands(), env.Conn.Stats().RedisFailures)
	}
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 10c: an identity key of the wrong type (WRONGTYPE) tripped the
// breaker on every read and never healed. It reads as a miss, is replaced,
// and counts as no Redis failure.
func TestAnIdentityKeyOfTheWrongTypeHeals(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"s", "b", "m"}
	must(t, r.Put(ctx, k, memData{Value: 1}, ms(1)))
	rk, _ := r.RedisKey(k)
	must(t, env.Redis.Del(ctx, rk).Err())
	must(t, env.Redis.HSet(ctx, rk, "x", "y").Err())
	for i := 0; i < 2; i++ {
		got, err := r.Get(ctx, k)
		if err != nil || got.Payload.Value != 1 {
			t.Fatalf("read %d over a hash identity: %+v, %v", i, got.Payload, err)
		}
		many, err := r.GetMany(ctx, []memKey{k})
		if err != nil || many[0] == nil {
			t.Fatalf("GetMany over a hash identity: %v, %v", many, err)
		}
	}
	if typ := env.Redis.Type(ctx, rk).Val(); typ != "string" || env.Conn.Stats().RedisFailures != 0 {
		t.Fatalf("identity key is a %s, %d Redis failures; want it replaced, none counted", typ, env.Conn.Stats().RedisFailures)
	}
	tctx, tr := runtime.WithTrace(ctx)
	_, err := r.Get(tctx, k)
	must(t, err)
	if tr.Redis() != 1 || tr.Mongo() != 1 {
		t.Fatalf("read after healing: %v; want a warm read", tr.Commands())
	}
}
