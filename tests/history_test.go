package tests

// History (issue 22): every acknowledged write of a domain with history
// has exactly one version, numbered per key without gaps or duplicates in
// the order the server applied the writes; recorded times never go
// backwards per key; a known-at read returns the row a reader had then.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"pgregory.net/rapid"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

func historyMemorySchema() *runtime.Schema {
	s := memorySchema()
	s.History = &runtime.History{}
	return s
}

func historySignalSchema() *runtime.Schema {
	s := signalSchema()
	s.History = &runtime.History{Keep: 90 * 24 * time.Hour}
	return s
}

// fataler is what the history checks need of a *testing.T or *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// versionsOf reads k's versions, oldest first.
func versionsOf[K runtime.Key, P any](t fataler, ctx context.Context, r *runtime.Repo[K, P], k K) []runtime.Version[K, P] {
	t.Helper()
	vs, err := runtime.Collect(r.History(ctx, k, runtime.HistoryOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(vs)
	return vs
}

// checkDense fails unless vs (oldest first) are numbered first, first+1...
// with recorded times that never go backwards.
func checkDense[K runtime.Key, P any](t fataler, vs []runtime.Version[K, P], first int64) {
	t.Helper()
	for i, v := range vs {
		if v.Number != first+int64(i) {
			t.Fatalf("version %d of %d is numbered %d, want %d (numbers %v)", i, len(vs), v.Number, first+int64(i), numbers(vs))
		}
		if i > 0 && v.Recorded.Before(vs[i-1].Recorded) {
			t.Fatalf("version %d recorded at %s, before version %d (%s)", v.Number, v.Recorded, vs[i-1].Number, vs[i-1].Recorded)
		}
	}
}

func numbers[K runtime.Key, P any](vs []runtime.Version[K, P]) []int64 {
	out := make([]int64, len(vs))
	for i, v := range vs {
		out[i] = v.Number
	}
	return out
}

func TestHistoryRecordsEveryWriteAndReadsKnownAt(t *testing.T) {
	env := setup(t, historyMemorySchema())
	ctx := t.Context()
	r := newRepo[memKey, memData](t, env.Conn, historyMemorySchema())
	k := memKey{"s", "b", "m"}
	must(t, r.Put(ctx, k, memData{Value: 1}, ms(100)))
	must(t, r.Put(ctx, k, memData{Value: 2}, ms(200)))
	if ok, err := r.Remove(ctx, k); err != nil || !ok {
		t.Fatalf("Remove: %v %v", ok, err)
	}
	if ok, err := r.Remove(ctx, k); err != nil || ok {
		t.Fatalf("second Remove removed %v (%v): a no-op must make no version", ok, err)
	}
	must(t, r.Put(ctx, k, memData{Value: 4}, ms(400)))
	vs := versionsOf(t, ctx, r, k)
	checkDense(t, vs, 1)
	want := []struct {
		value   int
		removed bool
		when    int64
	}{{1, false, 100}, {2, false, 200}, {2, true, 200}, {4, false, 400}}
	if len(vs) != len(want) {
		t.Fatalf("%d versions %v, want %d", len(vs), numbers(vs), len(want))
	}
	row, ok := storedDoc(t, ctx, env, "memory-items", bson.D{{Key: "signalId", Value: "s"}})
	if !ok {
		t.Fatal("no row")
	}
	rowID, _ := row.Lookup("_id").ObjectIDOK()
	for i, w := range want {
		v := vs[i]
		if v.Payload.Value != w.value || v.Removed != w.removed || v.When.UnixMilli() != w.when || v.Key != k || v.ID != rowID {
			t.Errorf("version %d = %+v (removed %v, when %d, row %s), want %+v of row %s", v.Number, v.Payload, v.Removed, v.When.UnixMilli(), v.ID.Hex(), w, rowID.Hex())
		}
	}
	if n, _ := row.Lookup("_hv").AsInt64OK(); n != 4 {
		t.Errorf("the row holds version %d, want 4", n)
	}
	// A reader at each version's recorded time saw that version, unless a
	// later one was recorded in the same millisecond.
	for i, v := range vs {
		if i+1 < len(vs) && vs[i+1].Recorded.Equal(v.Recorded) {
			continue
		}
		got, err := r.GetAt(ctx, k, time.Time{}, v.Recorded)
		if v.Removed {
			wantNotFound(t, err)
			continue
		}
		must(t, err)
		if got.Payload.Value != v.Payload.Value {
			t.Errorf("GetAt(known at version %d) = %d, want %d", v.Number, got.Payload.Value, v.Payload.Value)
		}
		// Valid time: the row of then, only if its when is not later.
		_, err = r.GetAt(ctx, k, v.When.Add(-time.Millisecond), v.Recorded)
		wantNotFound(t, err)
		if _, err := r.GetAt(ctx, k, v.When, v.Recorded); err != nil {
			t.Errorf("GetAt(valid at its own when): %v", err)
		}
	}
	_, err := r.GetAt(ctx, k, time.Time{}, vs[0].Recorded.Add(-time.Millisecond))
	wantNotFound(t, err)
	// Bounded history: newest first, Limit and KnownAt.
	got, err := runtime.Collect(r.History(ctx, k, runtime.HistoryOptions{KnownAt: vs[1].Recorded, Limit: 1}))
	must(t, err)
	if len(got) != 1 || got[0].Number < 2 {
		t.Errorf("History(KnownAt v2, Limit 1) = %v", numbers(got))
	}
	// A domain without history refuses the reads, saying how to turn it on.
	plain := newRepo[memKey, memData](t, env.Open(t), memorySchema())
	if _, err := plain.GetAt(ctx, k, time.Time{}, time.Now()); !errors.Is(err, runtime.ErrInvalidArgument) {
		t.Errorf("GetAt without history: %v, want ErrInvalidArgument", err)
	}
}

func TestHistoryCostsOneRoundTripPerWrite(t *testing.T) {
	env := setup(t, historyMemorySchema())
	ctx := t.Context()
	r := newRepo[memKey, memData](t, env.Conn, historyMemorySchema())
	k := memKey{"s", "b", "rt"}
	must(t, r.Put(ctx, k, memData{Value: 0}, ms(1)))
	budget := func(name string, want int64, fn func(context.Context)) {
		t.Helper()
		tctx, tr := runtime.WithTrace(ctx)
		fn(tctx)
		if tr.Mongo() != want {
			t.Errorf("%s: %d MongoDB round trips %v, want %d", name, tr.Mongo(), tr.Commands(), want)
		}
	}
	budget("write with history (1 without)", 2, func(c context.Context) { must(t, r.Put(c, k, memData{Value: 1}, ms(2))) })
	budget("remove with history (1 without)", 2, func(c context.Context) { _, err := r.Remove(c, k); must(t, err) })
	budget("known-at read", 1, func(c context.Context) {
		_, err := r.GetAt(c, k, time.Time{}, time.Now().Add(time.Hour))
		wantNotFound(t, err)
	})
	budget("history of 3 versions", 1, func(c context.Context) {
		vs, err := runtime.Collect(r.History(c, k, runtime.HistoryOptions{Limit: 10}))
		must(t, err)
		if len(vs) != 3 {
			t.Errorf("%d versions", len(vs))
		}
	})
	budget("known-at list", 1, func(c context.Context) {
		_, err := runtime.Collect(r.List(c, runtime.ListOptions{Prefix: []any{"s"}, KnownAt: time.Now().Add(time.Hour)}))
		must(t, err)
	})
}

// TestHistoryRepairsWhatACrashLeaves makes the state a writer leaves when
// it dies between its row and its version (the row counted up, no version
// recorded) and checks that the next write records the missing version,
// and that RepairHistory records the version of a row no write followed,
// and of a row written before history began (version 0).
func TestHistoryRepairsWhatACrashLeaves(t *testing.T) {
	env := setup(t, historyMemorySchema())
	ctx := t.Context()
	r := newRepo[memKey, memData](t, env.Conn, historyMemorySchema())
	rows := env.Conn.Database().Collection("memory-items")
	crash := func(k memKey, value int) {
		t.Helper()
		// What a Put's first step does, alone.
		_, err := rows.UpdateOne(ctx, bson.D{{Key: "signalId", Value: k.SignalID}, {Key: "bucketName", Value: k.Bucket}, {Key: "memoryId", Value: k.MemoryID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "payload", Value: bson.D{{Key: "value", Value: value}}}, {Key: "updatedDate", Value: time.Now()}}},
				{Key: "$inc", Value: bson.D{{Key: "_hv", Value: int64(1)}}}, {Key: "$max", Value: bson.D{{Key: "_hr", Value: time.Now().UTC()}}}})
		must(t, err)
	}
	a, b := memKey{"s", "b", "a"}, memKey{"s", "b", "b"}
	for _, k := range []memKey{a, b} {
		must(t, r.Put(ctx, k, memData{Value: 1}, ms(1)))
		crash(k, 2)
	}
	if vs := versionsOf(t, ctx, r, a); len(vs) != 1 {
		t.Fatalf("before the repair: %v", numbers(vs))
	}
	must(t, r.Put(ctx, a, memData{Value: 3}, ms(3)))
	vs := versionsOf(t, ctx, r, a)
	checkDense(t, vs, 1)
	if len(vs) != 3 || vs[1].Payload.Value != 2 || vs[2].Payload.Value != 3 {
		t.Fatalf("after the next write: versions %v", numbers(vs))
	}
	// A row from before history began (as backtest-kit writes it), never
	// written since: version 0 when repaired, 1 for the next write.
	c := memKey{"s", "b", "c"}
	_, err := rows.InsertOne(ctx, bson.D{{Key: "signalId", Value: "s"}, {Key: "bucketName", Value: "b"}, {Key: "memoryId", Value: "c"},
		{Key: "payload", Value: bson.D{{Key: "value", Value: 7}}}, {Key: "when", Value: float64(5)}, {Key: "removed", Value: false},
		{Key: "createDate", Value: time.Now()}, {Key: "updatedDate", Value: time.Now()}})
	must(t, err)
	n, recorded, err := env.Conn.RepairHistory(ctx, historyMemorySchema())
	must(t, err)
	if n != 3 || recorded != 2 {
		t.Errorf("RepairHistory read %d rows, recorded %d versions; want 3 and 2 (b's lost one, c's first)", n, recorded)
	}
	vs = versionsOf(t, ctx, r, b)
	checkDense(t, vs, 1)
	if len(vs) != 2 || vs[1].Payload.Value != 2 {
		t.Errorf("b after the repair: %v", numbers(vs))
	}
	if _, again, err := env.Conn.RepairHistory(ctx, historyMemorySchema()); err != nil || again != 0 {
		t.Errorf("a second repair recorded %d (%v), want 0", again, err)
	}
	must(t, r.Put(ctx, c, memData{Value: 8}, ms(8)))
	vs = versionsOf(t, ctx, r, c)
	checkDense(t, vs, 0)
	if len(vs) != 2 || vs[0].Payload.Value != 7 || vs[1].Payload.Value != 8 {
		t.Errorf("c: %v", numbers(vs))
	}
}

// TestHistoryRecordedTimeNeverGoesBackwards runs writers whose clocks step
// backwards (by an hour, every other write): recorded times per key still
// never decrease, and known-at reads still find each version.
func TestHistoryRecordedTimeNeverGoesBackwards(t *testing.T) {
	var mu sync.Mutex
	tick := 0
	base := time.Now()
	stepping := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		tick++
		if tick%2 == 0 {
			return base.Add(-time.Hour).Add(time.Duration(tick) * time.Millisecond)
		}
		return base.Add(time.Duration(tick) * time.Millisecond)
	}
	env := setup(t, historyMemorySchema())
	ctx := t.Context()
	conns := []*runtime.Conn{env.Open(t, func(c *runtime.Config) { c.Now = stepping }), env.Open(t)}
	k := memKey{"s", "b", "clock"}
	for i := range 12 {
		r := newRepo[memKey, memData](t, conns[i%2], historyMemorySchema())
		must(t, r.Put(ctx, k, memData{Value: i}, ms(int64(i+1))))
	}
	r := newRepo[memKey, memData](t, env.Conn, historyMemorySchema())
	vs := versionsOf(t, ctx, r, k)
	checkDense(t, vs, 1)
	if len(vs) != 12 {
		t.Fatalf("%d versions", len(vs))
	}
	last := vs[len(vs)-1]
	got, err := r.GetAt(ctx, k, time.Time{}, last.Recorded)
	must(t, err)
	if got.Payload.Value != 11 {
		t.Errorf("GetAt(last recorded) = %d, want 11", got.Payload.Value)
	}
}

// TestHistoryBatchesAndInserts: PutMany and InsertMany record a version per
// item that changed a row, none for an item that kept one.
func TestHistoryBatchesAndInserts(t *testing.T) {
	env := setup(t, historyMemorySchema())
	ctx := t.Context()
	r := newRepo[memKey, memData](t, env.Conn, historyMemorySchema())
	items := func(value int, keys ...string) []runtime.Item[memKey, memData] {
		out := make([]runtime.Item[memKey, memData], len(keys))
		for i, k := range keys {
			out[i] = runtime.Item[memKey, memData]{Key: memKey{"s", "b", k}, Payload: memData{Value: value}, When: ms(int64(value))}
		}
		return out
	}
	n, err := r.InsertMany(ctx, items(1, "x", "y", "x"))
	must(t, err)
	if n != 2 {
		t.Fatalf("inserted %d", n)
	}
	if n, err := r.InsertMany(ctx, items(2, "x", "z")); err != nil || n != 1 {
		t.Fatalf("inserted %d (%v), want 1", n, err)
	}
	must(t, r.PutMany(ctx, items(3, "x", "y")))
	if ok, err := r.Insert(ctx, memKey{"s", "b", "y"}, memData{Value: 4}, ms(4)); err != nil || ok {
		t.Fatalf("Insert of a stored key: %v %v", ok, err)
	}
	for key, want := range map[string][]int{"x": {1, 3}, "y": {1, 3}, "z": {2}} {
		vs := versionsOf(t, ctx, r, memKey{"s", "b", key})
		checkDense(t, vs, 1)
		var got []int
		for _, v := range vs {
			got = append(got, v.Payload.Value)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: versions hold %v, want %v", key, got, want)
		}
	}
}

func TestHistoryIndexesArePlannedAndCreated(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := t.Context()
	s := historySignalSchema()
	steps, err := env.Conn.PlanIndexes(ctx, s)
	must(t, err)
	var hist []string
	for _, st := range steps {
		if st.Collection == "signal-items-history" {
			hist = append(hist, fmt.Sprintf("%s %s %s", st.Action, st.Name, st.What))
		}
	}
	want := []string{
		"create symbol_1_strategyName_1_exchangeName_1__hv_-1 {symbol: 1, strategyName: 1, exchangeName: 1, _hv: -1} unique",
		"create _hr_1 {_hr: 1} expiring after 7776000s",
	}
	if !slices.Equal(hist, want) {
		t.Fatalf("plan of the history collection:\n%v\nwant\n%v", hist, want)
	}
	must(t, env.Conn.EnsureIndexes(ctx, s))
	cur, err := env.Conn.Database().Collection("signal-items-history").Indexes().List(ctx)
	must(t, err)
	var ixs []bson.M
	must(t, cur.All(ctx, &ixs))
	ttl := false
	for _, ix := range ixs {
		if ix["name"] == "_hr_1" {
			n, _ := ix["expireAfterSeconds"].(int32)
			n64, _ := ix["expireAfterSeconds"].(int64)
			ttl = n == 7776000 || n64 == 7776000
		}
	}
	if !ttl {
		// Only a server that cannot build a TTL index may lack it.
		_, err := env.Conn.Database().Collection("ttl-probe").Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys: bson.D{{Key: "at", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(60)})
		if err == nil {
			t.Fatalf("the server builds TTL indexes, but EnsureIndexes made none on the history collection: %v", ixs)
		}
		t.Logf("no TTL index: the server refuses them (%v)", err)
	}
	steps, err = env.Conn.PlanIndexes(ctx, s)
	must(t, err)
	for _, st := range steps {
		switch {
		case st.Unique() && st.Action != runtime.PlanOK:
			t.Errorf("after EnsureIndexes: %+v", st)
		case !ttl && st.Name == "_hr_1" && st.Action == runtime.PlanCreate:
			// A server without TTL indexes (FerretDB v1, which refuses
			// expireAfterSeconds): the unique index alone, and a warning;
			// the plan still says what is missing.
		case st.Action != runtime.PlanOK:
			t.Errorf("after EnsureIndexes: %+v", st)
		}
	}
	// plan -apply's way builds the indexes too, the unique one at least
	// where the server refuses TTL indexes.
	other := historySignalSchema()
	other.Collection = "applied-items"
	plan, err := env.Conn.PlanIndexes(ctx, other)
	must(t, err)
	must(t, env.Conn.ApplyPlan(ctx, plan))
	plan, err = env.Conn.PlanIndexes(ctx, other)
	must(t, err)
	for _, st := range plan {
		if st.Unique() && st.Action != runtime.PlanOK {
			t.Errorf("after ApplyPlan: %+v", st)
		}
	}
	// Writes go on either way.
	r := newRepo[sigKey, sigRow](t, env.Conn, s)
	must(t, r.Put(ctx, sigKey{"BTC", "st", "ex"}, sigRow{ID: "1"}, time.Time{}))
	if vs := versionsOf(t, ctx, r, sigKey{"BTC", "st", "ex"}); len(vs) != 1 {
		t.Errorf("%d versions after one write", len(vs))
	}
}

// TestHistoryModel drives random writes of a few keys and checks, after
// each, every key's history, known-at read and known-at list against a
// model: the list of versions each key has had.
func TestHistoryModel(t *testing.T) {
	env := setup(t, historyMemorySchema())
	ctx := t.Context()
	r := newRepo[memKey, memData](t, env.Conn, historyMemorySchema())
	// PERSIST_TEST_MODEL_CHECKS bounds the sequences, as for the
	// repository's model test (the test script lowers it on the slow
	// embedded SQLite server): past it, a sequence does nothing.
	limit := 100
	if n, err := strconv.Atoi(os.Getenv("PERSIST_TEST_MODEL_CHECKS")); err == nil && n > 0 {
		limit = n
	}
	round := 0
	rapid.Check(t, func(rt *rapid.T) {
		round++
		if round > limit {
			return
		}
		bucket := fmt.Sprintf("b%d", round)
		type version struct {
			value   int
			when    int64
			removed bool
		}
		model := map[string][]version{}
		keys := []string{"a", "b", "c"}
		steps := rapid.IntRange(1, 12).Draw(rt, "steps")
		for i := range steps {
			key := rapid.SampledFrom(keys).Draw(rt, "key")
			k := memKey{"s", bucket, key}
			vs := model[key]
			live := len(vs) > 0 && !vs[len(vs)-1].removed
			switch rapid.IntRange(0, 3).Draw(rt, "op") {
			case 0, 1:
				w := rapid.Int64Range(1, 50).Draw(rt, "when")
				if err := r.Put(ctx, k, memData{Value: i}, ms(w)); err != nil {
					rt.Fatal(err)
				}
				model[key] = append(vs, version{i, w, false})
			case 2:
				ok, err := r.Remove(ctx, k)
				if err != nil || ok != live {
					rt.Fatalf("Remove: %v %v, want %v", ok, err, live)
				}
				if live {
					last := vs[len(vs)-1]
					model[key] = append(vs, version{last.value, last.when, true})
				}
			case 3:
				ok, err := r.Insert(ctx, k, memData{Value: i}, ms(7))
				if err != nil || ok != (len(vs) == 0) {
					rt.Fatalf("Insert: %v %v", ok, err)
				}
				if ok {
					model[key] = append(vs, version{i, 7, false})
				}
			}
		}
		var all []runtime.Version[memKey, memData]
		stored := map[string][]runtime.Version[memKey, memData]{}
		for _, key := range keys {
			k := memKey{"s", bucket, key}
			got := versionsOf(rt, ctx, r, k)
			stored[key] = got
			want := model[key]
			if len(got) != len(want) {
				rt.Fatalf("%s: %d versions, model %d", key, len(got), len(want))
			}
			checkDense(rt, got, 1)
			for i, v := range got {
				if m := want[i]; v.Payload.Value != m.value || v.When.UnixMilli() != m.when || v.Removed != m.removed {
					rt.Fatalf("%s version %d: %+v when %d removed %v; model %+v", key, v.Number, v.Payload, v.When.UnixMilli(), v.Removed, m)
				}
			}
			all = append(all, got...)
		}
		// Known at each recorded time: GetAt per key and the list agree
		// with the model's last version recorded by then.
		for _, at := range all {
			var listed []string
			for _, key := range keys {
				var cur *version
				for j := range model[key] {
					if !stored[key][j].Recorded.After(at.Recorded) {
						cur = &model[key][j]
					}
				}
				got, err := r.GetAt(ctx, memKey{"s", bucket, key}, time.Time{}, at.Recorded)
				switch {
				case cur == nil || cur.removed:
					if !errors.Is(err, runtime.ErrNotFound) {
						rt.Fatalf("GetAt(%s, %s) = %+v, %v; model: none", key, at.Recorded, got.Payload, err)
					}
				case err != nil || got.Payload.Value != cur.value:
					rt.Fatalf("GetAt(%s, %s) = %+v, %v; model %+v", key, at.Recorded, got.Payload, err, *cur)
				default:
					listed = append(listed, key)
				}
			}
			rows, err := runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"s", bucket}, KnownAt: at.Recorded}))
			if err != nil {
				rt.Fatal(err)
			}
			var keysListed []string
			for _, row := range rows {
				keysListed = append(keysListed, row.Key.MemoryID)
			}
			if !slices.Equal(keysListed, listed) {
				rt.Fatalf("known-at list at %s: %v, want %v", at.Recorded, keysListed, listed)
			}
		}
	})
}

// singleWriter: the server applies concurrent updates of one document as
// if neither saw the other (FerretDB v1; scripts/test.sh says so with
// PERSIST_TEST_FAULT_WRITERS=one), so each key gets one writer. History
// refuses to order such writes (a write whose number another took fails
// with ErrHistoryPending); there is nothing more to check.
func singleWriter() bool { return os.Getenv("PERSIST_TEST_FAULT_WRITERS") == "one" }

// op is one call of a concurrent history: its interval on one monotonic
// clock, the value it wrote or read, and whether it returned nil.
type histOp struct {
	write      bool
	value      int
	start, end time.Duration
	ok         bool
}

// TestHistoryOrderIsALinearization runs writers and readers of one key on
// three Conns at once and checks the order the versions claim against
// what the callers saw: versions are numbered 1..n without gaps or
// duplicates, one per write; a write that returned before another began
// has the smaller number; a read never returns a value older than a write
// that returned before it began, nor one written after it returned; and a
// known-at read at each version's recorded time returns the last version
// recorded by then. Porcupine checks the same history against a model of
// the key's version.
func TestHistoryOrderIsALinearization(t *testing.T) {
	env := setup(t, historyMemorySchema())
	ctx := t.Context()
	conns := []*runtime.Conn{env.Conn, env.Open(t), env.Open(t)}
	k := memKey{"s", "b", "lin"}
	epoch := time.Now()
	var mu sync.Mutex
	var ops []histOp
	var wg sync.WaitGroup
	const workers, each = 6, 25
	for w := range workers {
		r := newRepo[memKey, memData](t, conns[w%len(conns)], historyMemorySchema())
		wg.Go(func() {
			for i := range each {
				value := w*1000 + i + 1
				if i%3 == 2 || singleWriter() && w > 0 { // a read
					start := time.Since(epoch)
					rec, err := r.Get(ctx, k)
					op := histOp{value: rec.Payload.Value, start: start, end: time.Since(epoch), ok: err == nil}
					mu.Lock()
					ops = append(ops, op)
					mu.Unlock()
					continue
				}
				start := time.Since(epoch)
				err := r.Put(ctx, k, memData{Value: value}, ms(int64(value)))
				op := histOp{write: true, value: value, start: start, end: time.Since(epoch), ok: err == nil}
				if err != nil {
					t.Errorf("Put: %v", err)
				}
				mu.Lock()
				ops = append(ops, op)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r := newRepo[memKey, memData](t, env.Conn, historyMemorySchema())
	vs := versionsOf(t, ctx, r, k)
	checkDense(t, vs, 1)
	number := map[int]int64{}
	for _, v := range vs {
		if _, dup := number[v.Payload.Value]; dup {
			t.Fatalf("value %d has two versions", v.Payload.Value)
		}
		number[v.Payload.Value] = v.Number
	}
	writes := 0
	for _, a := range ops {
		if !a.write {
			continue
		}
		writes++
		if _, ok := number[a.value]; !ok {
			t.Fatalf("the acknowledged write of %d has no version", a.value)
		}
	}
	if len(vs) != writes {
		t.Fatalf("%d versions for %d writes", len(vs), writes)
	}
	for _, a := range ops {
		if !a.write {
			continue
		}
		for _, b := range ops {
			if b.write && a.end < b.start && number[a.value] >= number[b.value] {
				t.Fatalf("write %d returned before write %d began, yet is version %d, not before %d", a.value, b.value, number[a.value], number[b.value])
			}
			if !b.write && b.ok && a.end < b.start && number[b.value] < number[a.value] {
				t.Fatalf("a read that began after write %d (version %d) returned returned %d (version %d): stale", a.value, number[a.value], b.value, number[b.value])
			}
			if !b.write && b.ok && b.value == a.value && a.start > b.end {
				t.Fatalf("a read returned %d before its write began", a.value)
			}
		}
	}
	// The same history, checked by porcupine against a model whose state
	// is the key's version: a write takes the next number, a read returns
	// the current one's value. A linearization must exist in which every
	// write's number is the one the history gave it.
	var pops []porcupine.Operation
	for _, o := range ops {
		if !o.ok {
			continue
		}
		n := number[o.value] // a read of no row: 0
		pops = append(pops, porcupine.Operation{Input: o.write, Call: int64(o.start), Output: n, Return: int64(o.end)})
	}
	model := porcupine.Model{
		Init: func() any { return int64(0) },
		Step: func(state, input, output any) (bool, any) {
			s, write, n := state.(int64), input.(bool), output.(int64)
			if write {
				return n == s+1, n
			}
			return n == s, s
		},
	}
	if !porcupine.CheckOperations(model, pops) {
		t.Fatalf("porcupine: no linearization of the %d operations gives each write the version the history gave it", len(pops))
	}
	for i, v := range vs {
		last := i
		for last+1 < len(vs) && !vs[last+1].Recorded.After(v.Recorded) {
			last++
		}
		got, err := r.GetAt(ctx, k, time.Time{}, v.Recorded)
		must(t, err)
		if got.Payload.Value != vs[last].Payload.Value {
			t.Fatalf("known at version %d's time: %d, want version %d's %d", v.Number, got.Payload.Value, vs[last].Number, vs[last].Payload.Value)
		}
	}
}

// TestHistoryUnderFaults writes one key from several goroutines through a
// proxy that cuts connections at the row's write (findAndModify) and at
// the versions' (update), with callers that give up at random. Then one
// clean write and RepairHistory. Every acknowledged write has exactly one
// version, every version comes from a write that was sent, none twice,
// and the numbers have no gaps.
func TestHistoryUnderFaults(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	proxy := testenv.NewMongoProxy(t, host)
	env := testenv.New(t, func(c *runtime.Config) { c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1) })
	ctx := t.Context()
	must(t, env.Conn.EnsureIndexes(ctx, historyMemorySchema()))
	keys := []memKey{{"s", "b", "f1"}, {"s", "b", "f2"}}
	var mu sync.Mutex
	acked := map[int]bool{}
	sent := map[int]bool{}
	pending := 0
	var wg sync.WaitGroup
	for w := range 4 {
		r := newRepo[memKey, memData](t, env.Open(t), historyMemorySchema())
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 22))
			for i := range 40 {
				value := w*1000 + i + 1
				switch rng.IntN(6) {
				case 0:
					proxy.FailOn("findAndModify", rng.IntN(3))
				case 1:
					proxy.FailOn("update", rng.IntN(3))
				}
				cctx, cancel := context.WithCancel(ctx)
				if rng.IntN(4) == 0 {
					time.AfterFunc(time.Duration(rng.IntN(3000))*time.Microsecond, cancel)
				}
				mu.Lock()
				sent[value] = true
				mu.Unlock()
				k := keys[rng.IntN(len(keys))]
				if singleWriter() {
					k = memKey{"s", "b", fmt.Sprintf("f%d", w)}
				}
				var err error
				if rng.IntN(5) == 0 {
					var n int
					n, err = r.InsertMany(cctx, []runtime.Item[memKey, memData]{{Key: memKey{"s", "b", fmt.Sprintf("i%d", value)}, Payload: memData{Value: value}, When: ms(1)}})
					_ = n
				} else {
					err = r.Put(cctx, k, memData{Value: value}, ms(int64(value)))
				}
				cancel()
				mu.Lock()
				if err == nil {
					acked[value] = true
				} else if errors.Is(err, runtime.ErrHistoryPending) {
					pending++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	cleanConn := env.Open(t, func(c *runtime.Config) { c.MongoURI = mongoURI })
	clean := newRepo[memKey, memData](t, cleanConn, historyMemorySchema())
	if singleWriter() {
		keys = []memKey{{"s", "b", "f0"}, {"s", "b", "f1"}, {"s", "b", "f2"}, {"s", "b", "f3"}}
	}
	for _, k := range keys {
		must(t, clean.Put(ctx, k, memData{Value: -1}, ms(1)))
	}
	_, _, err := cleanConn.RepairHistory(ctx, historyMemorySchema())
	must(t, err)
	hist := env.Conn.Database().Collection("memory-items-history")
	cur, err := hist.Find(ctx, bson.D{})
	must(t, err)
	var docs []struct {
		Key     string  `bson:"memoryId"`
		Number  int64   `bson:"_hv"`
		Payload memData `bson:"payload"`
	}
	must(t, cur.All(ctx, &docs))
	seen := map[int]int{}
	perKey := map[string][]int64{}
	for _, d := range docs {
		seen[d.Payload.Value]++
		perKey[d.Key] = append(perKey[d.Key], d.Number)
		if d.Payload.Value != -1 && !sent[d.Payload.Value] {
			t.Errorf("version %d of %s holds %d, which no write sent", d.Number, d.Key, d.Payload.Value)
		}
	}
	for value := range acked {
		if seen[value] != 1 {
			t.Errorf("acknowledged write %d has %d versions, want 1", value, seen[value])
		}
	}
	for value, n := range seen {
		if n > 1 && value != -1 {
			t.Errorf("write %d has %d versions", value, n)
		}
	}
	for key, ns := range perKey {
		slices.Sort(ns)
		for i, n := range ns {
			if n != int64(i+1) {
				t.Fatalf("%s: version numbers %v have a gap or a duplicate", key, ns)
			}
		}
	}
	t.Logf("%d writes acknowledged, %d pending, %d versions", len(acked), pending, len(docs))
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged: the faults left nothing to check")
	}
}

// TestHistoryRemovalSetsThePayloadsFlag: where the payload carries its own
// removed flag, a removal's version has it set, as the row does.
func TestHistoryRemovalSetsThePayloadsFlag(t *testing.T) {
	s := historyMemorySchema()
	s.PayloadRemoved = true
	env := setup(t, s)
	ctx := t.Context()
	r := newRepo[memKey, memData](t, env.Conn, s)
	k := memKey{"s", "b", "flag"}
	must(t, r.Put(ctx, k, memData{Value: 1, Note: "n"}, ms(1)))
	if ok, err := r.Remove(ctx, k); err != nil || !ok {
		t.Fatalf("Remove: %v %v", ok, err)
	}
	row, _ := storedDoc(t, ctx, env, "memory-items", bson.D{{Key: "memoryId", Value: "flag"}})
	v2, ok := storedDoc(t, ctx, env, "memory-items-history", bson.D{{Key: "memoryId", Value: "flag"}, {Key: "_hv", Value: int64(2)}})
	if !ok {
		t.Fatal("no version 2")
	}
	for name, doc := range map[string]bson.Raw{"row": row, "version 2": v2} {
		if f, _ := doc.Lookup("payload", "removed").BooleanOK(); !f || doc.Lookup("payload", "note").StringValue() != "n" {
			t.Errorf("%s: payload %s, want its removed flag set and the rest kept", name, doc.Lookup("payload"))
		}
	}
	if got, want := v2.Lookup("updatedDate").Time(), row.Lookup("updatedDate").Time(); !got.Equal(want) {
		t.Errorf("version 2's updatedDate %s, the row's %s", got, want)
	}
}

// Found by the review of history (issue 22); each failed before its fix.

// A write whose own version number another write's content holds fails
// with ErrHistoryPending, also where the server reports every upsert of
// a bulk at index 0 (FerretDB v1), which made the runtime take the
// predecessor's insert for its own.
func TestHistoryAWriteWhoseNumberIsTakenFails(t *testing.T) {
	env := setup(t, historyMemorySchema())
	ctx := t.Context()
	r := newRepo[memKey, memData](t, env.Conn, historyMemorySchema())
	k := memKey{"s", "b", "taken"}
	must(t, r.Put(ctx, k, memData{Value: 1}, ms(1)))
	hist := env.Conn.Database().Collection("memory-items-history")
	// Version 1 never recorded (its writer died), and version 2 taken by
	// another write's content.
	_, err := hist.DeleteOne(ctx, bson.D{{Key: "memoryId", Value: "taken"}, {Key: "_hv", Value: int64(1)}})
	must(t, err)
	_, err = hist.InsertOne(ctx, bson.D{{Key: "signalId", Value: "s"}, {Key: "bucketName", Value: "b"}, {Key: "memoryId", Value: "taken"},
		{Key: "payload", Value: bson.D{{Key: "value", Value: 999}}}, {Key: "when", Value: float64(2)}, {Key: "_hv", Value: int64(2)}, {Key: "_hr", Value: time.Now().UTC()}})
	must(t, err)
	err = r.Put(ctx, k, memData{Value: 2}, ms(2))
	if !errors.Is(err, runtime.ErrHistoryPending) || !strings.Contains(err.Error(), "already records another write") {
		t.Fatalf("Put whose version number another write holds: %v, want ErrHistoryPending saying so", err)
	}
	vs := versionsOf(t, ctx, r, k)
	if len(vs) != 2 || vs[0].Payload.Value != 1 {
		t.Errorf("the version before was not recorded beside it: %v", numbers(vs))
	}
}

// A row another program wrote (no removed field, a clock an hour ahead):
// its removal is a removal in the history too, and recorded times never go
// backwards after it.
func TestHistoryOfARowAnotherProgramWrote(t *testing.T) {
	env := setup(t, historyMemorySchema())
	ctx := t.Context()
	r := newRepo[memKey, memData](t, env.Conn, historyMemorySchema())
	rows := env.Conn.Database().Collection("memory-items")
	ahead := time.Now().Add(time.Hour)
	for _, id := range []string{"gone", "ahead"} {
		_, err := rows.InsertOne(ctx, bson.D{{Key: "signalId", Value: "s"}, {Key: "bucketName", Value: "b"}, {Key: "memoryId", Value: id},
			{Key: "payload", Value: bson.D{{Key: "value", Value: 7}}}, {Key: "when", Value: float64(5)}, {Key: "createDate", Value: ahead}, {Key: "updatedDate", Value: ahead}})
		must(t, err)
	}
	gone := memKey{"s", "b", "gone"}
	if ok, err := r.Remove(ctx, gone); err != nil || !ok {
		t.Fatalf("Remove: %v %v", ok, err)
	}
	if _, err := r.GetAt(ctx, gone, time.Time{}, time.Now().Add(2*time.Hour)); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("GetAt after the removal: %v, want ErrNotFound", err)
	}
	listed, err := runtime.Collect(r.List(ctx, runtime.ListOptions{Prefix: []any{"s", "b", "gone"}, KnownAt: time.Now().Add(2 * time.Hour)}))
	must(t, err)
	if len(listed) != 0 {
		t.Errorf("a known-at list shows the removed row: %+v", listed)
	}
	a := memKey{"s", "b", "ahead"}
	for i := range 2 {
		must(t, r.Put(ctx, a, memData{Value: i}, ms(6)))
	}
	vs := versionsOf(t, ctx, r, a)
	checkDense(t, vs, 0)
	if vs[0].Recorded.After(time.Now().Add(time.Minute)) {
		t.Errorf("the other program's row is recorded at its clock, %s, ahead of the write that found it", vs[0].Recorded)
	}
}

// A payload stored at the top level: a write replaces the fields it sets
// and keeps the others ($set), and its version is the row as it became.
func TestHistoryOfATopLevelPayload(t *testing.T) {
	s := docSchema()
	s.History = &runtime.History{}
	env := setup(t, s)
	ctx := t.Context()
	r := newRepo[docKey, bson.M](t, env.Conn, s)
	k := docKey{"d"}
	must(t, r.Put(ctx, k, bson.M{"a": int32(1), "note": "old"}, time.Time{}))
	must(t, r.Put(ctx, k, bson.M{"a": int32(2)}, time.Time{}))
	now, err := r.Get(ctx, k)
	must(t, err)
	then, err := r.GetAt(ctx, k, time.Time{}, time.Now().Add(time.Hour))
	must(t, err)
	for _, f := range []string{"a", "note"} {
		if fmt.Sprint(now.Payload[f]) != fmt.Sprint(then.Payload[f]) {
			t.Errorf("field %s: the row holds %v, its version %v", f, now.Payload[f], then.Payload[f])
		}
	}
}

// A known-at list orders and bounds fractional numbers as the server does.
func TestHistoryKnownAtListOfFractionalKeys(t *testing.T) {
	s := &runtime.Schema{Domain: "num", Collection: "num-items", RedisPrefix: "num_cache", Payload: "payload",
		Key: []runtime.KeyField{{Name: "name", Type: runtime.TypeString}, {Name: "num", Type: runtime.TypeFloat64}}, History: &runtime.History{}}
	env := setup(t, s)
	ctx := t.Context()
	r := newRepo[numKeyOf, int](t, env.Conn, s)
	for _, n := range []float64{1.7, 1.2, 1.5} {
		must(t, r.Put(ctx, numKeyOf{"n", n}, int(n*10), time.Time{}))
	}
	at := time.Now().Add(time.Hour)
	for _, o := range []runtime.ListOptions{
		{Prefix: []any{"n"}, Range: &runtime.Range{Field: "num", From: 1.5, To: 1.8}},
		{Prefix: []any{"n"}, Range: &runtime.Range{Field: "num", From: 1.3, To: 2.0}},
		{Prefix: []any{"n"}, Sort: []runtime.SortField{{Field: "num"}}},
		{Prefix: []any{"n"}, Sort: []runtime.SortField{{Field: "num", Desc: true}}, Limit: 1},
	} {
		live, err := runtime.Collect(r.List(ctx, o))
		must(t, err)
		o.KnownAt = at
		known, err := runtime.Collect(r.List(ctx, o))
		must(t, err)
		var a, b []float64
		for _, x := range live {
			a = append(a, x.Key.Num)
		}
		for _, x := range known {
			b = append(b, x.Key.Num)
		}
		if !slices.Equal(a, b) {
			t.Errorf("%+v: live %v, known-at %v", o.Range, a, b)
		}
	}
}

type numKeyOf struct {
	Name string  `bson:"name"`
	Num  float64 `bson:"num"`
}

func (k numKeyOf) KeyValues() []any { return []any{k.Name, k.Num} }

// Found by the second review of history (issue 22); each failed before its
// fix.

// A write whose caller gave up before it was sent is not sent, with
// history as without.
func TestHistoryAWriteGivenUpBeforeItIsSentIsNotSent(t *testing.T) {
	env := setup(t, historyMemorySchema())
	r := newRepo[memKey, memData](t, env.Open(t), historyMemorySchema())
	k := memKey{"s", "b", "gaveup"}
	_, err := r.Get(t.Context(), k) // the Conn is ready, the collection not yet prepared for writes
	wantNotFound(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.Put(ctx, k, memData{Value: 1}, ms(1)); err == nil {
		t.Error("Put with a cancelled context returned nil")
	}
	if ok, err := r.Insert(ctx, k, memData{Value: 1}, ms(1)); err == nil || ok {
		t.Errorf("Insert with a cancelled context: %v %v", ok, err)
	}
	if _, ok := storedDoc(t, t.Context(), env, "memory-items", bson.D{{Key: "memoryId", Value: "gaveup"}}); ok {
		t.Error("a write whose caller gave up before it was sent was stored")
	}
}

// One Conn never has a Repo with history and one without on a collection.
func TestHistoryAndNoHistoryNeverShareACollectionOnAConn(t *testing.T) {
	env := setup(t, historyMemorySchema())
	newRepo[memKey, memData](t, env.Conn, historyMemorySchema())
	if _, err := runtime.NewRepo[memKey, memData](env.Conn, memorySchema()); !errors.Is(err, runtime.ErrInvalidArgument) || !strings.Contains(err.Error(), "keeps history") {
		t.Errorf("a Repo without history beside one with it: %v, want ErrInvalidArgument", err)
	}
}

// A version past keep is gone on purpose: audit does not report it, and
// the next write does not record it again; a recent missing one is found.
func TestHistoryAuditLeavesExpiredVersionsAlone(t *testing.T) {
	s := historyMemorySchema()
	s.History.Keep = time.Hour
	env := setup(t, s)
	ctx := t.Context()
	r := newRepo[memKey, memData](t, env.Conn, s)
	rows, hist := env.Conn.Database().Collection("memory-items"), env.Conn.Database().Collection("memory-items-history")
	for _, id := range []string{"old", "new"} {
		must(t, r.Put(ctx, memKey{"s", "b", id}, memData{Value: 1}, ms(1)))
		_, err := hist.DeleteMany(ctx, bson.D{{Key: "memoryId", Value: id}})
		must(t, err)
	}
	_, err := rows.UpdateOne(ctx, bson.D{{Key: "memoryId", Value: "old"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "_hr", Value: time.Now().Add(-2 * time.Hour).UTC()}}}})
	must(t, err)
	n, missing, err := env.Conn.MissingVersions(ctx, s)
	must(t, err)
	if n != 2 || missing != 1 {
		t.Errorf("MissingVersions: %d rows, %d missing; want 2 and 1 (the recent one)", n, missing)
	}
	must(t, r.Put(ctx, memKey{"s", "b", "old"}, memData{Value: 2}, ms(2)))
	if vs := versionsOf(t, ctx, r, memKey{"s", "b", "old"}); len(vs) != 1 || vs[0].Number != 2 {
		t.Errorf("after the next write: versions %v, want only 2 (1 is past keep)", numbers(vs))
	}
}

// A known-at list bounds a row without when (another program's) as the
// live list does: a missing field matches no bound.
func TestHistoryKnownAtListOfARowWithoutWhen(t *testing.T) {
	env := setup(t, historyMemorySchema())
	ctx := t.Context()
	r := newRepo[memKey, memData](t, env.Conn, historyMemorySchema())
	_, err := env.Conn.Database().Collection("memory-items").InsertOne(ctx, bson.D{{Key: "signalId", Value: "s"}, {Key: "bucketName", Value: "nowhen"}, {Key: "memoryId", Value: "x"},
		{Key: "payload", Value: bson.D{{Key: "value", Value: 1}}}, {Key: "updatedDate", Value: time.Now().Add(-time.Minute)}})
	must(t, err)
	must(t, r.Put(ctx, memKey{"s", "nowhen", "y"}, memData{Value: 2}, ms(10)))
	_, _, err = env.Conn.RepairHistory(ctx, historyMemorySchema())
	must(t, err)
	for _, o := range []runtime.ListOptions{
		{Prefix: []any{"s", "nowhen"}, AsOf: ms(20)},
		{Prefix: []any{"s", "nowhen"}, Range: &runtime.Range{Field: "when", To: int64(20)}},
	} {
		live, err := runtime.Collect(r.List(ctx, o))
		must(t, err)
		o.KnownAt = time.Now().Add(time.Hour)
		known, err := runtime.Collect(r.List(ctx, o))
		must(t, err)
		if len(live) != len(known) {
			t.Errorf("AsOf %v, Range %+v: live lists %d rows, known-at %d", o.AsOf, o.Range, len(live), len(known))
		}
	}
}
