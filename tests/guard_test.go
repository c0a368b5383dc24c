package tests

// The infrastructure guard (Conn.Ready): the wait for the servers on a
// Conn's first operation, what it reports, and what bounds it.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// The ReadyTimeout is short, so that the wait for the cut MongoDB ends
// soon. When it also ends the wait for the restored MongoDB's probe (a busy
// machine), the test starts again with a longer one (shortReadyTimeouts);
// a guard that cannot be retried fails every round.
func TestGuardNamesMongoAddressAndCanBeRetried(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewProxy(t, host)
	shortReadyTimeouts(t, 700*time.Millisecond, func(readyTimeout time.Duration) error {
		proxy.Cut()
		env := testenv.New(t, func(c *runtime.Config) {
			c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1)
			c.ReadyTimeout = readyTimeout
		})
		ctx := ctxT(t)
		r := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
		_, err := r.Get(ctx, sigKey{"a", "b", "c"})
		if !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), "mongodb at "+proxy.Addr()) {
			t.Fatalf("Mongo down: %v; want ErrUnavailable naming %s", err, proxy.Addr())
		}
		proxy.Restore()
		if err := r.Put(ctx, sigKey{"a", "b", "c"}, &sigRow{ID: "up"}, time.Time{}); err != nil {
			return fmt.Errorf("the first write once MongoDB is back: %w", err)
		}
		got, err := r.Get(ctx, sigKey{"a", "b", "c"})
		must(t, err)
		if got.Payload.ID != "up" {
			t.Fatalf("got %+v", got.Payload)
		}
		// Once ready, the guard costs nothing: a warm read is still 2 round trips.
		tctx, tr := runtime.WithTrace(ctx)
		_, err = r.Get(tctx, sigKey{"a", "b", "c"})
		must(t, err)
		if tr.Total() != 2 {
			t.Fatalf("warm read after the guard: %v", tr.Commands())
		}
		return nil
	})
}

func TestGuardReportsTheCallersCancellationAsSuch(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewProxy(t, host)
	proxy.Cut()
	env := testenv.New(t, func(c *runtime.Config) {
		c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1)
		// Only the caller's deadline is to end its wait: the restored
		// MongoDB's probe has all the time a busy machine needs.
		c.ReadyTimeout = patience
	})
	ctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
	defer cancel()
	err := env.Conn.Ready(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("Ready with the caller's deadline passing first: %v; want context.DeadlineExceeded, not ErrUnavailable", err)
	}
	proxy.Restore()
	must(t, env.Conn.Ready(ctxT(t)))
}

// The ReadyTimeout is short, so that the wait for Redis ends soon; it
// bounds MongoDB's probe too, which a busy machine can make slower: the
// test then starts again with a longer one (shortReadyTimeouts).
func TestRedisDownAtStartIsAbsorbedUnlessRequired(t *testing.T) {
	t.Parallel()
	_, redisURL := testenv.URIs(t)
	proxy := testenv.NewProxy(t, strings.TrimSuffix(strings.TrimPrefix(redisURL, "redis://"), "/0"))
	shortReadyTimeouts(t, 500*time.Millisecond, func(readyTimeout time.Duration) error {
		proxy.Cut()
		opt := func(c *runtime.Config) {
			c.RedisURL = "redis://" + proxy.Addr() + "/0"
			c.ReadyTimeout = readyTimeout
		}
		env := testenv.New(t, opt)
		ctx := ctxT(t)
		r := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
		if err := r.Put(ctx, sigKey{"a", "b", "c"}, &sigRow{ID: "x"}, time.Time{}); err != nil {
			return fmt.Errorf("a write with Redis down: %w", err)
		}
		got, err := r.Get(ctx, sigKey{"a", "b", "c"})
		must(t, err)
		if got.Payload.ID != "x" {
			t.Fatalf("got %+v", got.Payload)
		}

		strict := env.Open(t, opt, func(c *runtime.Config) { c.RedisRequired = true })
		err = strict.Ready(ctx)
		if mongoWaitEnded(err) {
			return err
		}
		if !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), "redis at "+proxy.Addr()) {
			t.Fatalf("required Redis down: %v; want ErrUnavailable naming %s", err, proxy.Addr())
		}
		proxy.Restore()
		if err := strict.Ready(ctx); err != nil { // a failed wait can be retried
			return fmt.Errorf("the wait again, once Redis is back: %w", err)
		}
		return nil
	})
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 8: with MongoDB unreachable, a second caller of the guard with a
// short deadline queued behind the first caller's wait. It returns with its
// own deadline's error while the first still waits.
func TestGuardReturnsAtEachCallersOwnDeadline(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewProxy(t, host)
	proxy.Cut()
	env := testenv.New(t, func(c *runtime.Config) {
		c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1)
		// The first caller's wait outlasts the second's deadline, and the
		// restored MongoDB's probe, however busy the machine.
		c.ReadyTimeout = patience
	})
	first := make(chan error, 1)
	go func() { first <- env.Conn.Ready(ctxT(t)) }()
	for proxy.Accepted() == 0 { // the first caller's wait is under way
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := env.Conn.Ready(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("second caller: %v; want its own deadline, not ErrUnavailable", err)
	}
	select {
	case err := <-first:
		t.Fatalf("the first caller's wait ended with the second caller's: %v", err)
	default:
	}
	proxy.Restore()
	if err := <-first; err != nil {
		t.Fatalf("the first caller's wait, once MongoDB is back: %v", err)
	}
}

// Found by the second review (of the batch outcomes and the guarantees);
// it failed before its fix.
// A probe cut off after its writes (the server stops answering during the
// clean-up) does not hold the guard beyond its bound.
func TestAProbeCleanUpOnASilentServerIsBounded(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewMongoProxy(t, host)
	env := testenv.New(t, func(c *runtime.Config) {
		c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1)
		c.ReadyTimeout = 3 * time.Second
		c.DisableRedis = true
	})
	proxy.FreezeOn("delete") // the server stops answering as the clean-up starts
	done := make(chan error, 1)
	go func() { done <- env.Conn.Ready(context.Background()) }()
	select {
	case <-done:
	case <-time.After(patience):
		t.Fatalf("Ready still blocked %s into a probe whose clean-up met a silent server (ReadyTimeout 3s)", patience)
	}
	proxy.Restore()
}
