// Package telemetry exports a persistgen Conn's work with OpenTelemetry:
//
//   - NewObserver, set as runtime.Config.Observer, makes a span per
//     repository operation ("persistgen signal.Get") with a child span per
//     MongoDB command it sends, and records each operation's latency in the
//     histogram persistgen.operation.duration (seconds);
//   - InstrumentRedis adds go-redis's own OpenTelemetry tracing (redisotel)
//     to the Conn's Redis client, whose spans nest under the operation's;
//   - Register exports the Conn's counters (Conn.Stats: calls, errors,
//     round trips, cache hits and misses, absorbed Redis failures, and
//     the value cache's hits, misses, lease waits, invalidations, fills
//     rejected per cache mode) as observable counters, read only when
//     metrics are collected: nothing on the operations' path.
//
// Every instrument carries persistgen.domain and persistgen.operation (or
// persistgen.cache.mode). Telemetry is off unless set up: a Conn without an
// Observer pays one nil check per operation (see BENCHMARKS.md).
package telemetry

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/persistgen/persistgen/runtime"
)

// Scope is the instrumentation scope of the tracer and meter.
const Scope = "github.com/persistgen/persistgen"

// Attribute keys.
const (
	AttrDomain    = attribute.Key("persistgen.domain")
	AttrOperation = attribute.Key("persistgen.operation")
	AttrCacheMode = attribute.Key("persistgen.cache.mode")
	AttrNotFound  = attribute.Key("persistgen.not_found")
)

// Observer implements runtime.Observer.
type Observer struct {
	tracer trace.Tracer
	dur    metric.Float64Histogram
}

var _ runtime.Observer = (*Observer)(nil)

// NewObserver returns an Observer tracing through tp and recording
// latencies through mp (either may be a noop provider).
func NewObserver(tp trace.TracerProvider, mp metric.MeterProvider) (*Observer, error) {
	dur, err := mp.Meter(Scope).Float64Histogram("persistgen.operation.duration",
		metric.WithDescription("How long repository operations took, per domain and operation."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	if err != nil {
		return nil, err
	}
	return &Observer{tracer: tp.Tracer(Scope), dur: dur}, nil
}

// StartOperation starts the operation's span and, at its end, records its
// latency. ErrNotFound is an answer, not a failure: the span is marked
// persistgen.not_found rather than errored.
func (o *Observer) StartOperation(ctx context.Context, domain, op string) (context.Context, func(error)) {
	start := time.Now()
	attrs := []attribute.KeyValue{AttrDomain.String(domain), AttrOperation.String(op)}
	ctx, span := o.tracer.Start(ctx, "persistgen "+domain+"."+op, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		switch {
		case err == nil:
		case errors.Is(err, runtime.ErrNotFound):
			span.SetAttributes(AttrNotFound.Bool(true))
		default:
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		o.dur.Record(context.WithoutCancel(ctx), time.Since(start).Seconds(), metric.WithAttributes(attrs...))
	}
}

// StartCommand starts a client span for a MongoDB command.
func (o *Observer) StartCommand(ctx context.Context, system, command string) func(error) {
	_, span := o.tracer.Start(ctx, command, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", system), attribute.String("db.operation.name", command)))
	return func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// InstrumentRedis adds go-redis's OpenTelemetry tracing to the Conn's
// Redis client (a *redis.Client, *redis.ClusterClient or *redis.Ring), its
// spans under the operations' (commands' arguments are not recorded: they
// hold keys and values).
func InstrumentRedis(conn *runtime.Conn, tp trace.TracerProvider) error {
	rdb, ok := conn.Redis().(redis.UniversalClient)
	if !ok {
		return errors.New("telemetry: the Conn's Redis client is not a go-redis client; instrument it yourself")
	}
	return redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(tp), redisotel.WithDBStatement(false))
}

// Register exports conn's counters through mp as observable counters,
// collected from Conn.Stats when the meter provider's reader asks. Stop
// them with the returned Registration's Unregister.
func Register(conn *runtime.Conn, mp metric.MeterProvider) (metric.Registration, error) {
	m := mp.Meter(Scope)
	var errs []error
	counter := func(name, desc, unit string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return c
	}
	calls := counter("persistgen.operation.calls", "Repository operations started.", "{operation}")
	opErrors := counter("persistgen.operation.errors", "Operations that returned an error other than not found.", "{operation}")
	mongoRT := counter("persistgen.operation.mongodb.round_trips", "MongoDB commands sent by operations.", "{command}")
	redisRT := counter("persistgen.operation.redis.round_trips", "Redis round trips made by operations (a pipeline counts once).", "{round_trip}")
	idHits := counter("persistgen.operation.cache_hits", "Keys an operation's cache answered: an identity that led to the document, or a value-cache hit (Redis or in process).", "{key}")
	idMisses := counter("persistgen.operation.cache_misses", "Keys an operation had to find in MongoDB by their key.", "{key}")
	failures := counter("persistgen.redis.failures", "Redis failures absorbed (the operation went on against MongoDB).", "{failure}")
	cHits := counter("persistgen.cache.hits", "Value-cache reads answered by Redis or by the process (local hits included).", "{read}")
	cLocal := counter("persistgen.cache.local_hits", "Value-cache reads answered by the in-process tier.", "{read}")
	cMisses := counter("persistgen.cache.misses", "Value-cache reads that went to MongoDB.", "{read}")
	cWaits := counter("persistgen.cache.lease_waits", "Value-cache reads that waited for another reader's fill.", "{read}")
	cInval := counter("persistgen.cache.invalidations", "Value-cache keys deleted after writes.", "{key}")
	cRejected := counter("persistgen.cache.fills_rejected", "Value-cache fills refused because a write came between lease and fill.", "{fill}")
	sHits := counter("persistgen.series.hits", "Series windows answered from the process's memory, with no round trip.", "{window}")
	sMisses := counter("persistgen.series.misses", "Series windows that asked MongoDB (for what the tier did not hold).", "{window}")
	sEvictions := counter("persistgen.series.evictions", "Series tier blocks dropped to stay within Config.SeriesCacheBytes.", "{block}")
	gauge := func(name, desc, unit string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
		errs = append(errs, err)
		return g
	}
	sBytes := gauge("persistgen.series.bytes", "Bytes the series tier holds now, as counted against its bound.", "By")
	sBlocks := gauge("persistgen.series.blocks", "Blocks of 1,024 positions the series tier holds now.", "{block}")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		st := conn.Stats()
		for name, s := range st.Ops {
			if s.Calls == 0 && s.Errors == 0 {
				continue // an operation never called: no series
			}
			domain, op, _ := strings.Cut(name, ".")
			set := metric.WithAttributes(AttrDomain.String(domain), AttrOperation.String(op))
			obs.ObserveInt64(calls, s.Calls, set)
			obs.ObserveInt64(opErrors, s.Errors, set)
			obs.ObserveInt64(mongoRT, s.Mongo, set)
			obs.ObserveInt64(redisRT, s.Redis, set)
			obs.ObserveInt64(idHits, s.CacheHits, set)
			obs.ObserveInt64(idMisses, s.CacheMisses, set)
			obs.ObserveInt64(failures, s.RedisFailures, set)
		}
		for mode, c := range st.Cache {
			set := metric.WithAttributes(AttrCacheMode.String(mode))
			obs.ObserveInt64(cHits, c.Hits+c.LocalHits, set)
			obs.ObserveInt64(cLocal, c.LocalHits, set)
			obs.ObserveInt64(cMisses, c.Misses, set)
			obs.ObserveInt64(cWaits, c.LeaseWaits, set)
			obs.ObserveInt64(cInval, c.Invalidations, set)
			obs.ObserveInt64(cRejected, c.FillsRejected, set)
		}
		obs.ObserveInt64(sHits, st.Series.Hits)
		obs.ObserveInt64(sMisses, st.Series.Misses)
		obs.ObserveInt64(sEvictions, st.Series.Evictions)
		obs.ObserveInt64(sBytes, st.Series.Bytes)
		obs.ObserveInt64(sBlocks, int64(st.Series.Blocks))
		return nil
	}, calls, opErrors, mongoRT, redisRT, idHits, idMisses, failures, cHits, cLocal, cMisses, cWaits, cInval, cRejected, sHits, sMisses, sEvictions, sBytes, sBlocks)
}
