package telemetry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
	"github.com/persistgen/persistgen/telemetry"
)

type otelSetup struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
}

func newOtel() *otelSetup {
	o := &otelSetup{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	o.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(o.spans))
	o.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(o.reader))
	return o
}

// open opens a Conn with telemetry on: the Observer, go-redis's tracing
// and the counters.
func (o *otelSetup) open(t testing.TB) *runtime.Conn {
	t.Helper()
	obs, err := telemetry.NewObserver(o.tp, o.mp)
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.New(t, func(c *runtime.Config) { c.Observer = obs })
	if err := telemetry.InstrumentRedis(env.Conn, o.tp); err != nil {
		t.Fatal(err)
	}
	reg, err := telemetry.Register(env.Conn, o.mp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Unregister() })
	if err := repo.EnsureIndexes(context.Background(), env.Conn); err != nil {
		t.Fatal(err)
	}
	return env.Conn
}

// Spans nest: each operation's span holds the MongoDB commands and the
// Redis commands it sent; not found is an answer, not an error; the
// counters and the latency histogram carry the domain and the operation.
func TestSpansNestAndMetricsCount(t *testing.T) {
	o := newOtel()
	conn := o.open(t)
	ctx := context.Background()
	signals, err := repo.NewSignalRepo(conn)
	if err != nil {
		t.Fatal(err)
	}
	k := repo.SignalKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}
	if err := signals.Put(ctx, k, &repo.SignalRow{ID: "s1"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := signals.Get(ctx, k); err != nil || !ok {
		t.Fatalf("Get: %v %v", ok, err)
	}
	_, err = signals.Runtime().Get(ctx, repo.SignalKey{Symbol: "NONE", StrategyName: "macd", ExchangeName: "binance"})
	if !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v", err)
	}

	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range o.spans.Ended() {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	put := byName["persistgen signal.Put"]
	if len(put) != 1 {
		t.Fatalf("spans: %v", names(o.spans.Ended()))
	}
	var mongoKids, redisKids int
	for _, s := range o.spans.Ended() {
		if s.Parent().SpanID() != put[0].SpanContext().SpanID() {
			continue
		}
		for _, a := range s.Attributes() {
			if a.Key == "db.system.name" && a.Value.AsString() == "mongodb" {
				mongoKids++
			}
			if a.Key == "db.system.name" && a.Value.AsString() == "redis" || a.Key == "db.system" && a.Value.AsString() == "redis" {
				redisKids++
			}
		}
	}
	if mongoKids != 1 || redisKids != 1 {
		t.Fatalf("Put's span has %d MongoDB and %d Redis child spans; want 1 and 1 (its round trips): %v", mongoKids, redisKids, names(o.spans.Ended()))
	}
	gets := byName["persistgen signal.Get"]
	if len(gets) != 2 {
		t.Fatalf("Get spans: %d", len(gets))
	}
	missing := gets[1]
	if missing.Status().Code != 0 || !hasAttr(missing, "persistgen.not_found") {
		t.Fatalf("the not-found Get's span: status %v, attributes %v", missing.Status(), missing.Attributes())
	}

	var rm metricdata.ResourceMetrics
	if err := o.reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	calls, durations := map[string]int64{}, map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if m.Name != "persistgen.operation.calls" {
					continue
				}
				for _, p := range d.DataPoints {
					dom, _ := p.Attributes.Value(telemetry.AttrDomain)
					op, _ := p.Attributes.Value(telemetry.AttrOperation)
					calls[dom.AsString()+"."+op.AsString()] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					dom, _ := p.Attributes.Value(telemetry.AttrDomain)
					op, _ := p.Attributes.Value(telemetry.AttrOperation)
					durations[dom.AsString()+"."+op.AsString()] = p.Count
				}
			}
		}
	}
	if calls["signal.Get"] != 2 || calls["signal.Put"] != 1 || durations["signal.Get"] != 2 || durations["signal.Put"] != 1 {
		t.Fatalf("calls %v, latencies recorded %v", calls, durations)
	}
}

// The series tier's counters and gauges are exported as the Conn counts
// them: two windows (hits, since the Put told the tier what it inserted,
// or a miss and a hit), one block held.
func TestSeriesTierIsExported(t *testing.T) {
	o := newOtel()
	conn := o.open(t)
	ctx := context.Background()
	candles, err := repo.NewCandleRepo(conn)
	if err != nil {
		t.Fatal(err)
	}
	const t0 = 1_600_000_020_000 / 60_000 * 60_000
	if _, err := candles.Put(ctx, "binance", "BTCUSDT", "1m", []repo.Candle{{Timestamp: t0, Close: 1}, {Timestamp: t0 + 60_000, Close: 2}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, ok, err := candles.Window(ctx, "binance", "BTCUSDT", "1m", t0, 2); err != nil || !ok || got[1].Close != 2 {
			t.Fatalf("Window: %v %v %v", got, ok, err)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := o.reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					got[m.Name] += p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					got[m.Name] += p.Value
				}
			}
		}
	}
	st := conn.Stats().Series
	if got["persistgen.series.hits"] != st.Hits || got["persistgen.series.misses"] != st.Misses || st.Hits+st.Misses != 2 || st.Hits == 0 ||
		got["persistgen.series.blocks"] != 1 || got["persistgen.series.bytes"] != st.Bytes || st.Bytes <= 0 || got["persistgen.series.evictions"] != 0 {
		t.Fatalf("exported %v; the Conn's stats %+v", got, st)
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

func hasAttr(s sdktrace.ReadOnlySpan, key string) bool {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return true
		}
	}
	return false
}

// Telemetry off against on, in the same run: a local-mode warm read (no
// round trip, where the overhead shows most) and an identity-mode Put (two
// round trips).
func BenchmarkTelemetry(b *testing.B) {
	ctx := context.Background()
	for _, mode := range []string{"off", "on"} {
		var conn *runtime.Conn
		if mode == "on" {
			o := newOtel()
			o.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(tracetest.NewNoopExporter())))
			conn = o.open(b)
		} else {
			env := testenv.New(b)
			if err := repo.EnsureIndexes(ctx, env.Conn); err != nil {
				b.Fatal(err)
			}
			conn = env.Conn
		}
		s := repo.SignalSchema()
		s.Cache, s.CacheTTL, s.LocalTTL = runtime.CacheLocal, time.Minute, 2*time.Second
		s.Collection += "-local" // a collection takes one cache family per Conn
		local, err := runtime.NewRepo[repo.SignalKey, *repo.SignalRow](conn, s)
		if err != nil {
			b.Fatal(err)
		}
		ident, err := repo.NewSignalRepo(conn)
		if err != nil {
			b.Fatal(err)
		}
		k := repo.SignalKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}
		if err := local.Put(ctx, k, &repo.SignalRow{ID: "s1"}, time.Time{}); err != nil {
			b.Fatal(err)
		}
		b.Run("LocalGet/"+mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := local.Get(ctx, k); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Put/"+mode, func(b *testing.B) {
			b.ReportAllocs()
			row := &repo.SignalRow{ID: "s2"}
			k2 := repo.SignalKey{Symbol: "ETHUSDT", StrategyName: "macd", ExchangeName: "binance"}
			for b.Loop() {
				if err := ident.Put(ctx, k2, row); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// sloppy is an Observer with every slip an implementation can make: no
// context, no end function, a panic in the driver's goroutine.
type sloppy struct{}

func (sloppy) StartOperation(context.Context, string, string) (context.Context, func(error)) {
	return nil, nil //nolint:staticcheck // the slip under test
}

func (sloppy) StartCommand(_ context.Context, _, command string) func(error) {
	if command == "find" {
		panic("observer bug")
	}
	return nil
}

// An Observer's slips never break an operation nor the process.
func TestASloppyObserverBreaksNothing(t *testing.T) {
	env := testenv.New(t, func(c *runtime.Config) { c.Observer = sloppy{} })
	ctx := context.Background()
	if err := repo.EnsureIndexes(ctx, env.Conn); err != nil {
		t.Fatal(err)
	}
	signals, err := repo.NewSignalRepo(env.Conn)
	if err != nil {
		t.Fatal(err)
	}
	k := repo.SignalKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}
	if err := signals.Put(ctx, k, &repo.SignalRow{ID: "s1"}); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := signals.Get(ctx, k); err != nil || !ok || got.ID != "s1" {
		t.Fatalf("Get = %+v %v %v", got, ok, err)
	}
	for _, err := range signals.Runtime().List(ctx, runtime.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
	}
}
