package tests

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// The runtime tests use hand-written schemas shaped like four of backtest-kit's
// domains: a three-string key with a nullable payload (signal), a bucket with
// when and soft delete (memory), an immutable series with a top-level payload
// and a numeric key part (candle), and a key with a bool spelled as a word
// and an optional part (recent).

type sigKey struct {
	Symbol   string `bson:"symbol"`
	Strategy string `bson:"strategyName"`
	Exchange string `bson:"exchangeName"`
}

func (k sigKey) KeyValues() []any { return []any{k.Symbol, k.Strategy, k.Exchange} }

type sigRow struct {
	ID        string  `bson:"id"`
	Position  string  `bson:"position"`
	PriceOpen float64 `bson:"priceOpen"`
	// Extra keeps fields another engine wrote that this type does not name.
	Extra map[string]any `bson:",inline"`
}

func signalSchema() *runtime.Schema {
	return &runtime.Schema{
		Domain: "signal", Collection: "signal-items",
		Key:         []runtime.KeyField{{Name: "symbol"}, {Name: "strategyName"}, {Name: "exchangeName"}},
		RedisPrefix: "signal_cache", RedisOrder: []string{"exchangeName", "strategyName", "symbol"},
		Payload: "payload",
	}
}

type memKey struct {
	SignalID string `bson:"signalId"`
	Bucket   string `bson:"bucketName"`
	MemoryID string `bson:"memoryId"`
}

func (k memKey) KeyValues() []any { return []any{k.SignalID, k.Bucket, k.MemoryID} }

type memData struct {
	Value int    `bson:"value"`
	Note  string `bson:"note,omitempty"`
}

func memorySchema() *runtime.Schema {
	return &runtime.Schema{
		Domain: "memory", Collection: "memory-items",
		Key:         []runtime.KeyField{{Name: "signalId"}, {Name: "bucketName"}, {Name: "memoryId"}},
		RedisPrefix: "memory_cache", HasWhen: true, HasRemoved: true, Payload: "payload",
		Indexes: []runtime.Index{{Name: "signalId_1_bucketName_1_removed_1", Keys: []runtime.IndexKey{{Field: "signalId"}, {Field: "bucketName"}, {Field: "removed"}}}},
	}
}

type candleKey struct {
	Exchange  string  `bson:"exchangeName"`
	Symbol    string  `bson:"symbol"`
	Interval  string  `bson:"interval"`
	Timestamp float64 `bson:"timestamp"`
}

func (k candleKey) KeyValues() []any { return []any{k.Exchange, k.Symbol, k.Interval, k.Timestamp} }

type candle struct {
	Timestamp float64 `bson:"timestamp"`
	Open      float64 `bson:"open"`
	High      float64 `bson:"high"`
	Low       float64 `bson:"low"`
	Close     float64 `bson:"close"`
	Volume    float64 `bson:"volume"`
}

func candleSchema() *runtime.Schema {
	return &runtime.Schema{
		Domain: "candle", Collection: "candle-items",
		Key:         []runtime.KeyField{{Name: "exchangeName"}, {Name: "symbol"}, {Name: "interval"}, {Name: "timestamp"}},
		RedisPrefix: "candle_cache",
	}
}

type recentKey struct {
	Symbol    string `bson:"symbol"`
	Strategy  string `bson:"strategyName"`
	Exchange  string `bson:"exchangeName"`
	FrameName string `bson:"frameName"`
	Backtest  bool   `bson:"backtest"`
}

func (k recentKey) KeyValues() []any {
	return []any{k.Symbol, k.Strategy, k.Exchange, k.FrameName, k.Backtest}
}

func recentSchema() *runtime.Schema {
	return &runtime.Schema{
		Domain: "recent", Collection: "recent-items",
		Key: []runtime.KeyField{{Name: "symbol"}, {Name: "strategyName"}, {Name: "exchangeName"},
			{Name: "frameName", Optional: true}, {Name: "backtest", TrueWord: "backtest", FalseWord: "live"}},
		RedisPrefix: "recent_cache",
		RedisOrder:  []string{"backtest", "exchangeName", "strategyName", "frameName", "symbol"},
		HasWhen:     true, Payload: "payload",
	}
}

// docKey is the key of a schema whose payload is stored at the top level
// (like candles), with a map payload, so that a test can make the server
// refuse one item: $set of "a.b" where a holds a number fails everywhere.
type docKey struct {
	Name string `bson:"name"`
}

func (k docKey) KeyValues() []any { return []any{k.Name} }

func docSchema() *runtime.Schema {
	return &runtime.Schema{Domain: "doc", Collection: "doc-items", Key: []runtime.KeyField{{Name: "name", Type: runtime.TypeString}}, RedisPrefix: "doc_cache"}
}

func newRepo[K runtime.Key, P any](t testing.TB, c *runtime.Conn, s *runtime.Schema) *runtime.Repo[K, P] {
	t.Helper()
	r, err := runtime.NewRepo[K, P](c, s)
	if err != nil {
		t.Fatalf("NewRepo(%s): %v", s.Domain, err)
	}
	return r
}

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantNotFound(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
}

func ms(n int64) time.Time { return time.UnixMilli(n).UTC() }

// setup opens a fresh environment and ensures the schemas' indexes.
func setup(t *testing.T, schemas ...*runtime.Schema) *testenv.Env {
	t.Helper()
	t.Parallel()
	env := testenv.New(t)
	must(t, env.Conn.EnsureIndexes(ctxT(t), schemas...))
	return env
}
