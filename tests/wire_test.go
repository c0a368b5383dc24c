package tests

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

// wireSpec is what one domain looks like in MongoDB and Redis, as backtest-kit
// stores it (docs/both-engines.md).
type wireSpec struct {
	domain     string
	collection string
	fields     map[string]bson.Type // top-level fields other than _id, createDate, updatedDate
	indexes    []string             // "name keys [unique]"
	redisKey   string
	write      func(ctx context.Context, r *repo.Repos) error
}

func wireSpecs() []wireSpec {
	const (
		str  = bson.TypeString
		dbl  = bson.TypeDouble
		boo  = bson.TypeBoolean
		doc  = bson.TypeEmbeddedDocument
		arr  = bson.TypeArray
		null = bson.TypeNull
		// A domain with history: the row's version and recorded time.
		i64  = bson.TypeInt64
		date = bson.TypeDateTime
	)
	when := ms(1_700_000_000_000)
	sk := repo.SignalKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}
	pk := repo.PartialKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance", SignalID: "sig-1"}
	strategyIdx := []string{"symbol_1_strategyName_1_exchangeName_1 symbol,strategyName,exchangeName unique", "symbol_1 symbol", "strategyName_1 strategyName", "exchangeName_1 exchangeName"}
	signalIdx := []string{"symbol_1_strategyName_1_exchangeName_1_signalId_1 symbol,strategyName,exchangeName,signalId unique", "symbol_1 symbol", "strategyName_1 strategyName", "exchangeName_1 exchangeName", "signalId_1 signalId", "when_1 when"}
	return []wireSpec{
		{"candle", "candle-items", map[string]bson.Type{"exchangeName": str, "symbol": str, "interval": str, "timestamp": dbl, "open": dbl, "high": dbl, "low": dbl, "close": dbl, "volume": dbl},
			[]string{"exchangeName_1_symbol_1_interval_1_timestamp_1 exchangeName,symbol,interval,timestamp unique", "exchangeName_1 exchangeName", "symbol_1 symbol", "interval_1 interval", "timestamp_1 timestamp"},
			"candle_cache:binance:BTCUSDT:1m:1600000000000",
			func(ctx context.Context, r *repo.Repos) error {
				_, err := r.Candle.Put(ctx, "binance", "BTCUSDT", "1m", []repo.Candle{{Timestamp: 1_600_000_000_000, Open: 1, High: 2, Low: 0.5, Close: 1.5, Volume: 3}})
				return err
			}},
		{"signal", "signal-items", map[string]bson.Type{"symbol": str, "strategyName": str, "exchangeName": str, "payload": doc}, strategyIdx,
			"signal_cache:binance:macd:BTCUSDT",
			func(ctx context.Context, r *repo.Repos) error {
				return r.Signal.Put(ctx, sk, &repo.SignalRow{ID: "sig-1"})
			}},
		{"schedule", "schedule-items", map[string]bson.Type{"symbol": str, "strategyName": str, "exchangeName": str, "payload": null}, strategyIdx,
			"schedule_cache:binance:macd:BTCUSDT",
			func(ctx context.Context, r *repo.Repos) error { return r.Schedule.Put(ctx, repo.ScheduleKey(sk), nil) }},
		{"strategy", "strategy-items", map[string]bson.Type{"symbol": str, "strategyName": str, "exchangeName": str, "payload": doc, "_hv": i64, "_hr": date}, strategyIdx,
			"strategy_cache:binance:macd:BTCUSDT",
			func(ctx context.Context, r *repo.Repos) error {
				return r.Strategy.Put(ctx, repo.StrategyKey(sk), &repo.StrategyState{CommitQueue: []any{}})
			}},
		{"risk", "risk-items", map[string]bson.Type{"riskName": str, "exchangeName": str, "positions": arr, "when": dbl, "_hv": i64, "_hr": date},
			[]string{"riskName_1_exchangeName_1 riskName,exchangeName unique", "riskName_1 riskName", "exchangeName_1 exchangeName", "when_1 when"},
			"risk_cache:binance:max3",
			func(ctx context.Context, r *repo.Repos) error {
				return r.Risk.Put(ctx, repo.RiskKey{RiskName: "max3", ExchangeName: "binance"}, []repo.RiskEntry{}, when)
			}},
		{"partial", "partial-items", map[string]bson.Type{"symbol": str, "strategyName": str, "exchangeName": str, "signalId": str, "payload": doc, "when": dbl}, signalIdx,
			"partial_cache:binance:macd:BTCUSDT:sig-1",
			func(ctx context.Context, r *repo.Repos) error {
				return r.Partial.Put(ctx, pk, map[string]repo.PartialState{"sig-1": {ProfitLevels: []float64{10}, LossLevels: []float64{}}}, when)
			}},
		{"breakeven", "breakeven-items", map[string]bson.Type{"symbol": str, "strategyName": str, "exchangeName": str, "signalId": str, "payload": doc, "when": dbl}, signalIdx,
			"breakeven_cache:binance:macd:BTCUSDT:sig-1",
			func(ctx context.Context, r *repo.Repos) error {
				return r.Breakeven.Put(ctx, repo.BreakevenKey(pk), map[string]repo.BreakevenState{"sig-1": {Reached: true}}, when)
			}},
		{"storage", "storage-items", map[string]bson.Type{"backtest": boo, "signalId": str, "payload": doc},
			[]string{"backtest_1_signalId_1 backtest,signalId unique", "backtest_1 backtest", "signalId_1 signalId"},
			"storage_cache:backtest:sig-1",
			func(ctx context.Context, r *repo.Repos) error {
				return r.Storage.PutAll(ctx, true, []repo.StorageRow{{ID: "sig-1", Status: "opened"}})
			}},
		{"notification", "notification-items", map[string]bson.Type{"backtest": boo, "notificationId": str, "payload": doc},
			[]string{"backtest_1_notificationId_1 backtest,notificationId unique", "backtest_1 backtest", "notificationId_1 notificationId", "backtest_1_createDate_-1 backtest,-createDate"},
			"notification_cache:live:n-1",
			func(ctx context.Context, r *repo.Repos) error {
				return r.Notification.PutAll(ctx, false, []repo.Notification{{ID: "n-1", Type: "signal.opened"}})
			}},
		{"log", "log-items", map[string]bson.Type{"entryId": str, "payload": doc},
			[]string{"entryId_1 entryId unique", "createDate_-1 -createDate"},
			"log_cache:l-1",
			func(ctx context.Context, r *repo.Repos) error {
				_, err := r.Log.Append(ctx, []repo.LogEntry{{ID: "l-1", Type: "info"}})
				return err
			}},
		{"measure", "measure-items", map[string]bson.Type{"bucket": str, "entryKey": str, "payload": doc, "removed": boo},
			[]string{"bucket_1_entryKey_1 bucket,entryKey unique", "bucket_1 bucket", "entryKey_1 entryKey", "removed_1 removed", "bucket_1_removed_1 bucket,removed"},
			"measure_cache:fib:10",
			func(ctx context.Context, r *repo.Repos) error {
				return r.Measure.Put(ctx, repo.MeasureKey{Bucket: "fib", EntryKey: "10"}, repo.MeasureEntry{ID: "10", Data: 55.0})
			}},
		{"interval", "interval-items", map[string]bson.Type{"bucket": str, "entryKey": str, "payload": doc, "removed": boo, "when": dbl, "_hv": i64, "_hr": date},
			[]string{"bucket_1_entryKey_1 bucket,entryKey unique", "bucket_1 bucket", "entryKey_1 entryKey", "when_1 when", "removed_1 removed", "bucket_1_removed_1 bucket,removed"},
			"interval_cache:atr:BTCUSDT",
			func(ctx context.Context, r *repo.Repos) error {
				return r.Interval.Put(ctx, repo.IntervalKey{Bucket: "atr", EntryKey: "BTCUSDT"}, repo.IntervalEntry{ID: "x", When: when}, when)
			}},
		{"memory", "memory-items", map[string]bson.Type{"signalId": str, "bucketName": str, "memoryId": str, "payload": doc, "removed": boo, "when": dbl},
			[]string{"signalId_1_bucketName_1_memoryId_1 signalId,bucketName,memoryId unique", "signalId_1 signalId", "bucketName_1 bucketName", "memoryId_1 memoryId", "when_1 when", "removed_1 removed", "signalId_1_bucketName_1_removed_1 signalId,bucketName,removed"},
			"memory_cache:sig-1:notes:m1",
			func(ctx context.Context, r *repo.Repos) error {
				return r.Memory.Put(ctx, repo.MemoryKey{SignalID: "sig-1", BucketName: "notes", MemoryID: "m1"}, repo.MemoryEntry{Index: "i"}, when)
			}},
		{"recent", "recent-items", map[string]bson.Type{"symbol": str, "strategyName": str, "exchangeName": str, "frameName": str, "backtest": boo, "payload": doc, "when": dbl},
			[]string{"symbol_1_strategyName_1_exchangeName_1_frameName_1_backtest_1 symbol,strategyName,exchangeName,frameName,backtest unique", "symbol_1 symbol", "strategyName_1 strategyName", "exchangeName_1 exchangeName", "frameName_1 frameName", "backtest_1 backtest", "when_1 when"},
			"recent_cache:live:binance:macd::BTCUSDT",
			func(ctx context.Context, r *repo.Repos) error {
				return r.Recent.Put(ctx, repo.RecentKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}, &repo.RecentSignal{ID: "sig-1"}, when)
			}},
		{"state", "state-items", map[string]bson.Type{"signalId": str, "bucketName": str, "payload": doc, "when": dbl},
			[]string{"signalId_1_bucketName_1 signalId,bucketName unique", "signalId_1 signalId", "bucketName_1 bucketName", "when_1 when"},
			"state_cache:sig-1:b",
			func(ctx context.Context, r *repo.Repos) error {
				return r.State.Put(ctx, repo.StateKey{SignalID: "sig-1", BucketName: "b"}, &repo.StateEntry{ID: "sig-1_b"}, when)
			}},
		{"session", "session-items", map[string]bson.Type{"strategyName": str, "exchangeName": str, "frameName": str, "symbol": str, "backtest": boo, "payload": doc, "when": dbl},
			[]string{"strategyName_1_exchangeName_1_frameName_1_symbol_1_backtest_1 strategyName,exchangeName,frameName,symbol,backtest unique", "strategyName_1 strategyName", "exchangeName_1 exchangeName", "frameName_1 frameName", "symbol_1 symbol", "backtest_1 backtest", "when_1 when"},
			"session_cache:binance:macd:f1:BTCUSDT:backtest",
			func(ctx context.Context, r *repo.Repos) error {
				return r.Session.Put(ctx, repo.SessionKey{StrategyName: "macd", ExchangeName: "binance", FrameName: "f1", Symbol: "BTCUSDT", Backtest: true}, &repo.SessionEntry{ID: "s"}, when)
			}},
	}
}

func TestStoredFormOfEveryDomainMatchesTheSpec(t *testing.T) {
	env, r := openRepos(t)
	ctx := ctxT(t)
	specs := wireSpecs()
	if len(specs) != len(repo.Schemas()) {
		t.Fatalf("%d specs for %d domains", len(specs), len(repo.Schemas()))
	}
	for i, s := range specs {
		t.Run(s.domain, func(t *testing.T) {
			if got := repo.Schemas()[i]; got.Domain != s.domain || got.Collection != s.collection {
				t.Fatalf("schema %d is %s/%s, spec says %s/%s", i, got.Domain, got.Collection, s.domain, s.collection)
			}
			must(t, s.write(ctx, r))
			coll := env.Conn.Database().Collection(s.collection)
			raw, err := coll.FindOne(ctx, bson.D{}).Raw()
			must(t, err)
			fields := map[string]bson.Type{}
			elems, err := raw.Elements()
			must(t, err)
			for _, e := range elems {
				fields[e.Key()] = e.Value().Type
			}
			for name, typ := range map[string]bson.Type{"_id": bson.TypeObjectID, "createDate": bson.TypeDateTime, "updatedDate": bson.TypeDateTime} {
				if fields[name] != typ {
					t.Errorf("%s is %v, want %v", name, fields[name], typ)
				}
				delete(fields, name)
			}
			if diff := cmp.Diff(s.fields, fields); diff != "" {
				t.Errorf("fields and BSON types (-spec +stored):\n%s", diff)
			}

			cur, err := coll.Indexes().List(ctx)
			must(t, err)
			var got []string
			for cur.Next(ctx) {
				name := cur.Current.Lookup("name").StringValue()
				if name == "_id_" {
					continue
				}
				var keys []string
				ks, _ := cur.Current.Lookup("key").Document().Elements()
				for _, k := range ks {
					dir := k.Value()
					neg := (dir.Type == bson.TypeInt32 && dir.Int32() < 0) || (dir.Type == bson.TypeDouble && dir.Double() < 0) || (dir.Type == bson.TypeInt64 && dir.Int64() < 0)
					if neg {
						keys = append(keys, "-"+k.Key())
					} else {
						keys = append(keys, k.Key())
					}
				}
				desc := name + " " + strings.Join(keys, ",")
				if u, _ := cur.Current.Lookup("unique").BooleanOK(); u {
					desc += " unique"
				}
				got = append(got, desc)
			}
			must(t, cur.Err())
			want := append([]string(nil), s.indexes...)
			sort.Strings(want)
			sort.Strings(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("indexes (-spec +stored):\n%s", diff)
			}

			id := raw.Lookup("_id").ObjectID().Hex()
			if v, err := env.Redis.Get(ctx, env.Config.KeyPrefix+s.redisKey).Result(); err != nil || v != id {
				t.Errorf("Redis %s = %q (%v), want the _id %s", s.redisKey, v, err, id)
			}
		})
	}
}

// tsDoc builds a document the way the TypeScript adapter (Mongoose) writes
// it: ObjectId _id, numbers as doubles, Date createDate/updatedDate, __v.
func tsDoc(id bson.ObjectID, fields bson.D) bson.D {
	d := bson.D{{Key: "_id", Value: id}}
	d = append(d, fields...)
	created := time.UnixMilli(1_690_000_000_000).UTC()
	return append(d, bson.E{Key: "createDate", Value: created}, bson.E{Key: "updatedDate", Value: created}, bson.E{Key: "__v", Value: int32(0)})
}

// Documents and identities the TypeScript engine wrote are read by Go
// through the identity cache, written over without losing what Go does not
// know, and stay valid for the other engine.
func TestGoReadsAndWritesOverWhatTheTypeScriptEngineStored(t *testing.T) {
	env, r := openRepos(t)
	ctx := ctxT(t)
	db := env.Conn.Database()
	type seeded struct {
		coll, redisKey string
		id             bson.ObjectID
		doc            bson.D
	}
	seeds := []seeded{
		{"signal-items", "signal_cache:binance:macd:BTCUSDT", bson.NewObjectID(), bson.D{
			{Key: "symbol", Value: "BTCUSDT"}, {Key: "strategyName", Value: "macd"}, {Key: "exchangeName", Value: "binance"},
			{Key: "payload", Value: bson.D{{Key: "id", Value: "ts-sig"}, {Key: "position", Value: "short"}, {Key: "priceOpen", Value: 42000.5},
				{Key: "scheduledAt", Value: 1.69e12}, {Key: "_isScheduled", Value: false}, {Key: "_peak", Value: bson.D{{Key: "price", Value: 43000.0}}},
				{Key: "futureField", Value: "from a newer backtest-kit"}}},
		}},
		{"candle-items", "candle_cache:binance:BTCUSDT:1m:1690000000000", bson.NewObjectID(), bson.D{
			{Key: "exchangeName", Value: "binance"}, {Key: "symbol", Value: "BTCUSDT"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: 1.69e12},
			{Key: "open", Value: 1.0}, {Key: "high", Value: 2.0}, {Key: "low", Value: 0.5}, {Key: "close", Value: 1.5}, {Key: "volume", Value: 10.0},
		}},
		{"memory-items", "memory_cache:sig-1:notes:m1", bson.NewObjectID(), bson.D{
			{Key: "signalId", Value: "sig-1"}, {Key: "bucketName", Value: "notes"}, {Key: "memoryId", Value: "m1"},
			{Key: "payload", Value: bson.D{{Key: "priority", Value: 3.0}, {Key: "data", Value: bson.D{{Key: "k", Value: "v"}}}, {Key: "removed", Value: false}, {Key: "index", Value: "i"}, {Key: "when", Value: 1.69e12}}},
			{Key: "removed", Value: false}, {Key: "when", Value: 1.69e12},
		}},
		{"session-items", "session_cache:binance:macd::BTCUSDT:live", bson.NewObjectID(), bson.D{
			{Key: "strategyName", Value: "macd"}, {Key: "exchangeName", Value: "binance"}, {Key: "frameName", Value: ""}, {Key: "symbol", Value: "BTCUSDT"},
			{Key: "backtest", Value: false}, {Key: "payload", Value: bson.D{{Key: "id", Value: "s"}, {Key: "data", Value: 7.0}, {Key: "when", Value: 1.69e12}}},
			{Key: "when", Value: 1.69e12},
		}},
	}
	for _, s := range seeds {
		_, err := db.Collection(s.coll).InsertOne(ctx, tsDoc(s.id, s.doc))
		must(t, err)
		must(t, env.Redis.Set(ctx, env.Config.KeyPrefix+s.redisKey, s.id.Hex(), 0).Err())
	}

	// Reads: the other engine's identities are used (warm reads, 2 round trips).
	tctx, tr := runtime.WithTrace(ctx)
	sig, ok, err := r.Signal.Get(tctx, repo.SignalKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"})
	must(t, err)
	if !ok || sig.ID != "ts-sig" || sig.PriceOpen != 42000.5 || sig.Extra["futureField"] != "from a newer backtest-kit" || tr.Total() != 2 {
		t.Fatalf("signal read %v %+v in %v", ok, sig, tr.Commands())
	}
	c, ok, err := r.Candle.Get(ctx, repo.CandleKey{ExchangeName: "binance", Symbol: "BTCUSDT", Interval: "1m", Timestamp: 1.69e12})
	must(t, err)
	if !ok || c.Close != 1.5 {
		t.Fatalf("candle %v %+v", ok, c)
	}
	window, ok, err := r.Candle.Window(ctx, "binance", "BTCUSDT", "1m", 1_690_000_000_000, 1)
	must(t, err)
	if !ok || window[0] != c {
		t.Fatalf("window over a TypeScript candle: %v %+v", ok, window)
	}
	mk := repo.MemoryKey{SignalID: "sig-1", BucketName: "notes", MemoryID: "m1"}
	mem, ok, err := r.Memory.GetAsOf(ctx, mk, time.UnixMilli(1_690_000_000_000))
	must(t, err)
	if !ok || mem.Priority != 3 || mem.Index != "i" {
		t.Fatalf("memory as of its when: %v %+v", ok, mem)
	}
	sek := repo.SessionKey{StrategyName: "macd", ExchangeName: "binance", Symbol: "BTCUSDT"}
	ses, ok, err := r.Session.Get(ctx, sek)
	must(t, err)
	if !ok || ses.Data != 7.0 {
		t.Fatalf("session %v %+v", ok, ses)
	}

	// Writes over them keep _id, createDate, __v and unknown payload fields,
	// so the identities in Redis stay valid for the other engine.
	sig.PriceOpen = 41000
	must(t, r.Signal.Put(ctx, repo.SignalKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}, sig))
	mem.Priority = 4
	must(t, r.Memory.Put(ctx, mk, mem, time.UnixMilli(1_690_000_060_000)))
	must(t, r.Session.Put(ctx, sek, &repo.SessionEntry{ID: "s", Data: 8.0, When: 1.69e12}, time.UnixMilli(1_690_000_060_000)))
	for _, s := range seeds {
		raw, err := db.Collection(s.coll).FindOne(ctx, bson.D{}).Raw()
		must(t, err)
		if raw.Lookup("_id").ObjectID() != s.id {
			t.Errorf("%s: _id changed", s.coll)
		}
		if got := raw.Lookup("createDate").Time(); !got.Equal(time.UnixMilli(1_690_000_000_000)) {
			t.Errorf("%s: createDate changed to %v", s.coll, got)
		}
		if _, err := raw.LookupErr("__v"); err != nil {
			t.Errorf("%s: __v lost", s.coll)
		}
		if v := env.Redis.Get(ctx, env.Config.KeyPrefix+s.redisKey).Val(); v != s.id.Hex() {
			t.Errorf("%s: identity %q, want %s", s.coll, v, s.id.Hex())
		}
	}
	raw, err := db.Collection("signal-items").FindOne(ctx, bson.D{}).Raw()
	must(t, err)
	if raw.Lookup("payload", "futureField").StringValue() != "from a newer backtest-kit" || raw.Lookup("payload", "priceOpen").Double() != 41000 ||
		raw.Lookup("payload", "_peak", "price").Double() != 43000 {
		t.Errorf("signal payload after a Go write: %v", raw.Lookup("payload"))
	}
	raw, err = db.Collection("memory-items").FindOne(ctx, bson.D{}).Raw()
	must(t, err)
	if raw.Lookup("when").Type != bson.TypeDouble || raw.Lookup("when").Double() != 1_690_000_060_000 || raw.Lookup("payload", "priority").Double() != 4 {
		t.Errorf("memory after a Go write: when %v, payload %v", raw.Lookup("when"), raw.Lookup("payload"))
	}
}

// Found by the correctness review (issue 9); it failed before its fix.
// Finding 14: a Go write-back of a row the TypeScript engine wrote added
// fields that were absent (null for any, 0 for numbers), which changes
// what `x ?? fallback` means there. Absent fields stay absent; present
// nulls stay null; a field the program sets is written.
func TestAbsentFieldsStayAbsentWhenGoWritesARowBack(t *testing.T) {
	env, r := openRepos(t)
	ctx := ctxT(t)
	k := repo.StrategyKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}
	_, err := env.Conn.Database().Collection("strategy-items").InsertOne(ctx, bson.D{
		{Key: "symbol", Value: k.Symbol}, {Key: "strategyName", Value: k.StrategyName}, {Key: "exchangeName", Value: k.ExchangeName},
		{Key: "payload", Value: bson.D{{Key: "pendingSignalId", Value: nil}, {Key: "commitQueue", Value: bson.A{}}, {Key: "isPaused", Value: false}}}})
	must(t, err)
	got, ok, err := r.Strategy.Get(ctx, k)
	must(t, err)
	if !ok {
		t.Fatal("the TypeScript row is not found")
	}
	got.RetryOpenCount = 2 // the program sets one absent field
	must(t, r.Strategy.Put(ctx, k, got))
	raw, _ := storedDoc(t, ctx, env, "strategy-items", bson.D{{Key: "symbol", Value: k.Symbol}})
	payload := raw.Lookup("payload").Document()
	elems, err := payload.Elements()
	must(t, err)
	var names []string
	for _, e := range elems {
		names = append(names, e.Key())
	}
	if fmt.Sprint(names) != "[pendingSignalId commitQueue retryOpenCount isPaused]" {
		t.Fatalf("written back with fields %v; want the three the TypeScript engine wrote plus retryOpenCount", names)
	}
	if payload.Lookup("pendingSignalId").Type != bson.TypeNull {
		t.Fatalf("an explicit null became %v", payload.Lookup("pendingSignalId"))
	}
}

// Found by the second review (of the batch outcomes and the guarantees);
// it failed before its fix.
// Explicit nulls stay null through a Go read and write-back, in fields of
// every kind; absent fields stay absent; a field the program sets is
// written.
func TestExplicitNullsStayNullWhenGoWritesARowBack(t *testing.T) {
	env, r := openRepos(t)
	ctx := ctxT(t)
	k := repo.SignalKey{Symbol: "BTCUSDT", StrategyName: "macd", ExchangeName: "binance"}
	_, err := env.Conn.Database().Collection("signal-items").InsertOne(ctx, bson.D{
		{Key: "symbol", Value: k.Symbol}, {Key: "strategyName", Value: k.StrategyName}, {Key: "exchangeName", Value: k.ExchangeName},
		{Key: "payload", Value: bson.D{{Key: "id", Value: "s1"}, {Key: "priceOpen", Value: nil}, {Key: "frameName", Value: nil},
			{Key: "_isScheduled", Value: nil}, {Key: "note", Value: nil}, {Key: "position", Value: "long"}}}})
	must(t, err)
	got, ok, err := r.Signal.Get(ctx, k)
	must(t, err)
	if !ok {
		t.Fatal("not found")
	}
	got.Position = "short"
	must(t, r.Signal.Put(ctx, k, got))
	raw, _ := storedDoc(t, ctx, env, "signal-items", bson.D{{Key: "symbol", Value: k.Symbol}})
	p := raw.Lookup("payload").Document()
	for _, f := range []string{"priceOpen", "frameName", "_isScheduled", "note"} {
		if p.Lookup(f).Type != bson.TypeNull {
			t.Errorf("%s was null and is written back as %v", f, p.Lookup(f))
		}
	}
	if p.Lookup("position").StringValue() != "short" {
		t.Errorf("the field the program set: %v", p.Lookup("position"))
	}
	if _, err := p.LookupErr("priceTakeProfit"); err == nil {
		t.Errorf("an absent field was added: %v", p)
	}
}
