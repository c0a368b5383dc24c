package tests

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/runtime"
	"github.com/persistgen/persistgen/schema"
)

func TestRedisKeysAreSpelledAsUpstreamSpellsThem(t *testing.T) {
	env := setup(t)
	ctx := ctxT(t)
	s := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	must(t, s.Put(ctx, sigKey{"BTCUSDT", "macd", "binance"}, &sigRow{ID: "1"}, time.Time{}))
	rc := newRepo[recentKey, map[string]any](t, env.Conn, recentSchema())
	must(t, rc.Put(ctx, recentKey{"BTCUSDT", "macd", "binance", "", false}, map[string]any{"id": "1"}, ms(1)))
	must(t, rc.Put(ctx, recentKey{"BTCUSDT", "macd", "binance", "f1", true}, map[string]any{"id": "2"}, ms(1)))
	c := newRepo[candleKey, candle](t, env.Conn, candleSchema())
	_, err := c.Insert(ctx, candleKey{"binance", "BTCUSDT", "1m", 1700000040000}, candle{Timestamp: 1700000040000}, time.Time{})
	must(t, err)

	want := []string{
		"candle_cache:binance:BTCUSDT:1m:1700000040000",
		"recent_cache:backtest:binance:macd:f1:BTCUSDT",
		"recent_cache:live:binance:macd::BTCUSDT",
		"signal_cache:binance:macd:BTCUSDT",
	}
	got := env.Keys(ctx, t)
	// Besides upstream's keys, one marker per collection (persistgen's
	// own: which cache family uses the collection; upstream never reads it).
	db := env.Conn.Database().Name()
	for _, s := range []*runtime.Schema{candleSchema(), recentSchema(), signalSchema()} {
		want = append(want, schema.MarkerKey("", s.RedisPrefix, db, s.Collection))
	}
	want = sorted(want)
	if diff := cmp.Diff(want, sorted(got)); diff != "" {
		t.Fatalf("Redis keys (-want +got):\n%s", diff)
	}
	// The value is the document's _id as 24 hex digits.
	id := env.Redis.Get(ctx, env.Config.KeyPrefix+"signal_cache:binance:macd:BTCUSDT").Val()
	raw, err := s.Collection().FindOne(ctx, bson.D{}).Raw()
	must(t, err)
	if oid, _ := raw.Lookup("_id").ObjectIDOK(); oid.Hex() != id {
		t.Fatalf("identity %q, document _id %s", id, oid.Hex())
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestKeysWithColonsAndPercentNeverCollide(t *testing.T) {
	env := setup(t, signalSchema())
	ctx := ctxT(t)
	r := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	// Joined naively with ':' these all read "a:b:c:d" or "a:b%3Ac:d".
	keys := []sigKey{
		{"d", "b:c", "a"},
		{"c:d", "b", "a"},
		{"d", "c", "a:b"},
		{"d", "b%3Ac", "a"},
		{"d", "b%c", "a"},
		{"üñî:çødé", "策略", "ex:1"},
		{"sp ace", "new\nline", "tab\tx"},
	}
	for i, k := range keys {
		must(t, r.Put(ctx, k, &sigRow{ID: itoa(i)}, time.Time{}))
	}
	seen := map[string]bool{}
	for i, k := range keys {
		rk, err := r.RedisKey(k)
		must(t, err)
		if seen[rk] {
			t.Fatalf("Redis key %q used twice", rk)
		}
		seen[rk] = true
		got, err := r.Get(ctx, k)
		must(t, err)
		if got.Payload.ID != itoa(i) || got.Key != k {
			t.Fatalf("key %q read %+v", k, got)
		}
	}
	identities := 0
	for _, k := range env.Keys(ctx, t) {
		if !strings.HasPrefix(k, "pgm:{") { // the collection's marker
			identities++
		}
	}
	if identities != len(keys) {
		t.Fatalf("%d Redis identity keys for %d distinct keys", identities, len(keys))
	}
	rk, _ := r.RedisKey(sigKey{"d", "b:c", "a"})
	if !strings.HasSuffix(rk, "signal_cache:a:b%3Ac:d") {
		t.Fatalf("escaped key = %q", rk)
	}
}

func TestEmptyKeyPartIsRejectedWithTheFieldName(t *testing.T) {
	env := setup(t)
	ctx := ctxT(t)
	r := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	for _, tc := range []struct {
		key   sigKey
		field string
	}{
		{sigKey{"", "s", "e"}, `"symbol"`},
		{sigKey{"x", "", "e"}, `"strategyName"`},
		{sigKey{"x", "s", ""}, `"exchangeName"`},
	} {
		err := r.Put(ctx, tc.key, &sigRow{}, time.Time{})
		if !errors.Is(err, runtime.ErrInvalidKey) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("Put(%+v) = %v; want ErrInvalidKey naming %s", tc.key, err, tc.field)
		}
		if _, err := r.Get(ctx, tc.key); !errors.Is(err, runtime.ErrInvalidKey) {
			t.Errorf("Get(%+v) = %v", tc.key, err)
		}
		if _, err := r.GetMany(ctx, []sigKey{{"ok", "ok", "ok"}, tc.key}); !errors.Is(err, runtime.ErrInvalidKey) || !strings.Contains(err.Error(), "item 1") {
			t.Errorf("GetMany with %+v = %v; want ErrInvalidKey naming item 1", tc.key, err)
		}
	}
	bad := sigKey{"\xff\xfe", "s", "e"}
	if err := r.Put(ctx, bad, &sigRow{}, time.Time{}); !errors.Is(err, runtime.ErrInvalidKey) || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("invalid UTF-8: %v", err)
	}
	// An optional part (frameName in live mode) may be empty.
	rc := newRepo[recentKey, map[string]any](t, env.Conn, recentSchema())
	must(t, rc.Put(ctx, recentKey{"S", "st", "ex", "", false}, map[string]any{"a": 1}, ms(1)))
	if n, _ := r.Collection().CountDocuments(ctx, bson.D{}); n != 0 {
		t.Fatalf("rejected writes stored %d documents", n)
	}
}

func TestOversizedPayloadIsRejectedAndStoresNothing(t *testing.T) {
	env := setup(t, memorySchema())
	ctx := ctxT(t)
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	k := memKey{"s", "b", "big"}
	must(t, r.Put(ctx, k, memData{Value: 1}, ms(1)))
	err := r.Put(ctx, k, memData{Value: 2, Note: strings.Repeat("x", 17<<20)}, ms(2))
	if !errors.Is(err, runtime.ErrInvalidArgument) || !strings.Contains(err.Error(), "16 MiB") {
		t.Fatalf("oversized payload: %v", err)
	}
	got, err := r.Get(ctx, k)
	must(t, err)
	if got.Payload.Value != 1 {
		t.Fatalf("previous value lost: %+v", got.Payload)
	}
}

func TestFieldsAnotherEngineWroteSurviveAGoWrite(t *testing.T) {
	env := setup(t, signalSchema())
	ctx := ctxT(t)
	r := newRepo[sigKey, *sigRow](t, env.Conn, signalSchema())
	_, err := r.Collection().InsertOne(ctx, bson.D{
		{Key: "_id", Value: bson.NewObjectID()},
		{Key: "symbol", Value: "BTCUSDT"}, {Key: "strategyName", Value: "s"}, {Key: "exchangeName", Value: "ex"},
		{Key: "payload", Value: bson.D{{Key: "id", Value: "ts-1"}, {Key: "position", Value: "short"}, {Key: "priceOpen", Value: 10.5},
			{Key: "_peak", Value: bson.D{{Key: "price", Value: 11.0}}}, {Key: "note", Value: "from TypeScript"}}},
		{Key: "createDate", Value: time.UnixMilli(1_700_000_000_000)},
		{Key: "updatedDate", Value: time.UnixMilli(1_700_000_000_000)},
		{Key: "__v", Value: int32(0)},
	})
	must(t, err)
	k := sigKey{"BTCUSDT", "s", "ex"}
	got, err := r.Get(ctx, k)
	must(t, err)
	if got.Payload.ID != "ts-1" || got.Payload.Extra["note"] != "from TypeScript" {
		t.Fatalf("read %+v", got.Payload)
	}
	p := got.Payload
	p.PriceOpen = 12
	must(t, r.Put(ctx, k, p, time.Time{}))
	raw, err := r.Collection().FindOne(ctx, bson.D{}).Raw()
	must(t, err)
	if v := raw.Lookup("payload", "note").StringValue(); v != "from TypeScript" {
		t.Fatalf("payload.note lost: %v", raw)
	}
	if v := raw.Lookup("payload", "_peak", "price").Double(); v != 11 {
		t.Fatalf("payload._peak lost: %v", raw)
	}
	if v := raw.Lookup("payload", "priceOpen").Double(); v != 12 {
		t.Fatalf("priceOpen not written: %v", raw)
	}
	if _, err := raw.LookupErr("__v"); err != nil {
		t.Fatalf("top-level __v lost: %v", raw)
	}
	if c := raw.Lookup("createDate").Time(); !c.Equal(time.UnixMilli(1_700_000_000_000)) {
		t.Fatalf("createDate changed to %v", c)
	}
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 4: a key part -0.0 was found by Get and not by GetMany (which
// matched by the key's text). -0 and 0 are one key, everywhere.
func TestNegativeZeroIsTheSameKeyAsZero(t *testing.T) {
	env := setup(t, candleSchema())
	ctx := ctxT(t)
	r := newRepo[candleKey, candle](t, env.Conn, candleSchema())
	negZero := math.Copysign(0, -1)
	must(t, r.Put(ctx, candleKey{"ex", "S", "1m", negZero}, candle{Close: 7}, time.Time{}))
	for _, ts := range []float64{negZero, 0} {
		got, err := r.Get(ctx, candleKey{"ex", "S", "1m", ts})
		if err != nil || got.Payload.Close != 7 {
			t.Fatalf("Get(%v) = %+v, %v", ts, got.Payload, err)
		}
	}
	many, err := r.GetMany(ctx, []candleKey{{"ex", "S", "1m", negZero}, {"ex", "S", "1m", 0}})
	must(t, err)
	if many[0] == nil || many[1] == nil {
		t.Fatalf("GetMany of -0 and 0 = %v", many)
	}
	a, _ := r.RedisKey(candleKey{"ex", "S", "1m", negZero})
	b, _ := r.RedisKey(candleKey{"ex", "S", "1m", 0})
	if a != b {
		t.Fatalf("Redis keys differ: %q, %q", a, b)
	}
}

// anyKey has a single untyped key field (KeyField.Type ""), which accepts
// any key type.
type anyKey struct{ V any }

func (k anyKey) KeyValues() []any { return []any{k.V} }

func anySchema() *runtime.Schema {
	return &runtime.Schema{Domain: "any", Collection: "any-items", RedisPrefix: "any_cache", Key: []runtime.KeyField{{Name: "v"}}, Payload: "payload"}
}

// Found by the second review (of the batch outcomes and the guarantees);
// it failed before its fix.
// The string "1" and the number 1 are two keys to the server, though they
// are spelled alike in Redis: batches and batch reads keep them apart.
func TestUntypedKeysOfDifferentTypesStayApartInBatches(t *testing.T) {
	env := setup(t, anySchema())
	ctx := ctxT(t)
	r := newRepo[anyKey, string](t, env.Conn, anySchema())
	must(t, r.PutMany(ctx, []runtime.Item[anyKey, string]{{Key: anyKey{"1"}, Payload: "string"}, {Key: anyKey{1}, Payload: "number"}}))
	for k, want := range map[any]string{"1": "string", int64(1): "number"} {
		got, err := r.Get(ctx, anyKey{k})
		if err != nil || got.Payload != want {
			t.Fatalf("Get(%#v) = %q, %v; want %q", k, got.Payload, err, want)
		}
	}
	n, err := r.InsertMany(ctx, []runtime.Item[anyKey, string]{{Key: anyKey{"true"}, Payload: "s"}, {Key: anyKey{true}, Payload: "b"}})
	if err != nil || n != 2 {
		t.Fatalf("InsertMany of \"true\" and true = %d, %v; want both inserted", n, err)
	}
	must(t, r.Put(ctx, anyKey{"2"}, "string two", time.Time{}))
	got, err := r.GetMany(ctx, []anyKey{{2}, {"2"}})
	must(t, err)
	if got[0] != nil || got[1] == nil || got[1].Payload != "string two" {
		t.Fatalf("GetMany(number 2, string 2) = %v, %v; want nothing, then the string's row", got[0], got[1])
	}
	// 1 and 1.0 are one key to the server, and to batches.
	n, err = r.InsertMany(ctx, []runtime.Item[anyKey, string]{{Key: anyKey{1.0}, Payload: "double"}})
	if err != nil || n != 0 {
		t.Fatalf("InsertMany of 1.0 over 1 = %d, %v; want it kept", n, err)
	}
}
