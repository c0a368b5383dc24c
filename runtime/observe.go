package runtime

import (
	"context"
	"sync"

	"go.mongodb.org/mongo-driver/v2/event"
)

// Observer watches a Conn's repository operations and MongoDB commands
// (Config.Observer), for tracing and latency metrics: package
// github.com/persistgen/persistgen/telemetry implements it with
// OpenTelemetry. The counters (calls, round trips, hits, misses, errors,
// lease waits) need no Observer: Conn.Stats has them, and telemetry reads
// them when metrics are collected. Without an Observer (the default) an
// operation pays one nil check.
type Observer interface {
	// StartOperation is called as a repository operation starts (domain
	// "signal", op "Get", ...). It returns the context the operation runs
	// under, so that what it sends nests under a span, and the function
	// called once when it ends, with the error it returned (ErrNotFound
	// included; nil for success).
	StartOperation(ctx context.Context, domain, op string) (context.Context, func(err error))
	// StartCommand is called as a MongoDB command is sent, under the
	// context of the operation that sends it, and returns the function
	// called when its reply (or failure) arrives. (Redis commands are
	// the Redis client's to instrument: telemetry adds go-redis's own
	// OpenTelemetry hooks, which nest the same way.)
	StartCommand(ctx context.Context, system, command string) func(err error)
}

// observe starts an operation for the Conn's Observer; done is called
// once the operation returns, with its error.
// (The callers defer a closure calling done(err) rather than passing
// &err: a pointer handed to a func value escapes, and would cost an
// allocation per operation with telemetry off.)
func (r *Repo[K, P]) observe(ctx context.Context, op opID) (context.Context, func(error)) {
	o := r.conn.cfg.Observer
	if o == nil {
		return ctx, noDone
	}
	octx, end := o.StartOperation(ctx, r.s.Domain, opNames[op])
	if octx == nil { // an Observer's slip never breaks an operation
		octx = ctx
	}
	if end == nil {
		end = noDone
	}
	return octx, end
}

func noDone(error) {}

// commandObserver follows MongoDB commands from start to reply for an
// Observer, by request id.
type commandObserver struct {
	o       Observer
	pending sync.Map // int64 request id -> func(error)
}

// The driver calls these from its own goroutines (the readiness wait's
// too), where an Observer's panic could not be recovered by anyone: it is
// recovered here, and the command goes unobserved.
func (c *commandObserver) started(ctx context.Context, e *event.CommandStartedEvent) {
	defer func() { _ = recover() }()
	if end := c.o.StartCommand(ctx, "mongodb", e.CommandName); end != nil {
		c.pending.Store(e.RequestID, end)
	}
}

func (c *commandObserver) finished(id int64, err error) {
	defer func() { _ = recover() }()
	if end, ok := c.pending.LoadAndDelete(id); ok {
		end.(func(error))(err)
	}
}
