package tests

// Deadlines and bounds: the caller's own deadline, and the bounds the Conn
// puts on each MongoDB call and cursor, against a server that stopped
// answering.

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
// Finding 11: the caller's own deadline was reported as ErrUnavailable.
func TestTheCallersDeadlineIsNotReportedAsAnOutage(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewProxy(t, host)
	env := testenv.New(t, func(c *runtime.Config) { c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1) })
	must(t, env.Conn.EnsureIndexes(ctxT(t), memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	proxy.Freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := r.Put(ctx, memKey{"s", "b", "m"}, memData{Value: 1}, ms(1))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("Put past the caller's deadline: %v; want context.DeadlineExceeded, not ErrUnavailable", err)
	}
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 13: nothing bounded a MongoDB call: a silent server held a Put
// until the caller's own deadline. Config.OpTimeout bounds each call, and
// the error says so.
func TestOpTimeoutBoundsACallToASilentServer(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewProxy(t, host)
	env := testenv.New(t, func(c *runtime.Config) {
		c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1)
		c.OpTimeout = 300 * time.Millisecond
	})
	ctx := ctxT(t)
	// The 300 ms are for the call to the silent server, not for the set-up,
	// which a busy machine may make slower: the indexes are made through a
	// Conn without the proxy and with the default OpTimeout, and the Conn
	// under test is made ready (its probe bounded by ReadyTimeout) before
	// the server goes silent.
	must(t, env.Open(t, func(c *runtime.Config) { c.MongoURI, c.OpTimeout = mongoURI, 0 }).EnsureIndexes(ctx, memorySchema()))
	must(t, env.Conn.Ready(ctx))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	proxy.Freeze()
	err := r.Put(ctx, memKey{"s", "b", "m"}, memData{Value: 1}, ms(1))
	if !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), "OpTimeout") || ctx.Err() != nil {
		t.Fatalf("Put to a silent server: %v; want ErrUnavailable naming OpTimeout, well before the caller's deadline", err)
	}
}

// Found by the second review (of the batch outcomes and the guarantees);
// it failed before its fix.
// A list stopped early, and a list whose getMore times out, close their
// cursor within a bound even when the server has stopped answering.
func TestAListStoppedOnASilentServerReturns(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewMongoProxy(t, host)
	env := testenv.New(t, func(c *runtime.Config) {
		c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1)
		c.ListBatch = 2
		// The default OpTimeout (10 s) bounds the getMore to the silent
		// server, and the writes before it: a shorter one would be a budget
		// that a busy machine's writes could miss.
	})
	ctx := ctxT(t)
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	for i := 0; i < 10; i++ {
		must(t, r.Put(ctx, memKey{"s", "b", itoa(i)}, memData{Value: i}, ms(1)))
	}
	for _, stop := range []bool{true, false} {
		done := make(chan error, 1)
		go func() {
			for _, err := range r.List(ctx, runtime.ListOptions{Prefix: []any{"s"}}) {
				if err != nil {
					done <- err
					return
				}
				proxy.Freeze()
				if stop {
					break
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if !stop && !errors.Is(err, runtime.ErrUnavailable) {
				t.Fatalf("a getMore to a silent server: %v; want ErrUnavailable", err)
			}
		case <-time.After(patience):
			t.Fatalf("List (stopped early: %v) still blocked on a silent server after %s (OpTimeout 10s)", stop, patience)
		}
		proxy.Restore()
	}
}
