package tests

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// The model-based test: random sequences of every repository operation,
// run on the real servers through two Conns (as two processes would be),
// each result compared with an in-memory reference model. rapid shrinks a
// failing sequence to a minimal one. The key space is small and hostile: a
// float key part that is 0 or -0, names with ':' and '%', and whens that are
// sub-millisecond, far but valid, and beyond what can be stored.

type modelKey struct {
	Run  string  `bson:"run"`
	Name string  `bson:"name"`
	Num  float64 `bson:"num"`
}

func (k modelKey) KeyValues() []any { return []any{k.Run, k.Name, k.Num} }

type modelRow struct {
	V int `bson:"v"`
}

func modelSchema() *runtime.Schema {
	return &runtime.Schema{
		Domain: "model", Collection: "model-items", RedisPrefix: "model_cache",
		Key:     []runtime.KeyField{{Name: "run", Type: runtime.TypeString}, {Name: "name", Type: runtime.TypeString, Optional: true}, {Name: "num", Type: runtime.TypeFloat64}},
		HasWhen: true, HasRemoved: true, Payload: "payload",
	}
}

// state is the model: what every key holds.
type state struct {
	v       int
	whenMs  int64 // the stored when: rounded up to the millisecond
	removed bool
}

var (
	modelNames = []string{"a", "b:c", "b%3Ac", "%", ""}
	modelNums  = []float64{0, math.Copysign(0, -1), 1.5, 60000}
	modelWhens = []time.Time{
		time.UnixMilli(1000),
		time.UnixMilli(1000).Add(300 * time.Microsecond),
		time.UnixMilli(1001),
		time.UnixMilli(5),
		time.Date(250_000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(300_000, 1, 1, 0, 0, 0, 0, time.UTC), // beyond a JavaScript Date: refused
	}
)

func canon(k modelKey) string { return fmt.Sprintf("%s|%s|%v", k.Run, k.Name, k.Num+0) }

func validWhen(t time.Time) bool { return !t.After(time.UnixMilli(8_640_000_000_000_000)) }

func storedMs(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}

func TestRepositoryAgainstAModel(t *testing.T) {
	t.Parallel()
	// PERSIST_TEST_MODEL_CHECKS sets how many sequences are tried when
	// -rapid.checks is not given (the test script lowers it on the slow
	// embedded SQLite server).
	if n := os.Getenv("PERSIST_TEST_MODEL_CHECKS"); n != "" && !flagGiven("rapid.checks") {
		if err := flag.Set("rapid.checks", n); err != nil {
			t.Fatalf("PERSIST_TEST_MODEL_CHECKS=%s: %v", n, err)
		}
	}
	env := testenv.New(t)
	// Longer than ctxT's bound: on the embedded SQLite server, which scans
	// whole collections, a hundred sequences take minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	must(t, env.Conn.EnsureIndexes(ctx, modelSchema()))
	repos := []*runtime.Repo[modelKey, modelRow]{
		newRepo[modelKey, modelRow](t, env.Conn, modelSchema()),
		newRepo[modelKey, modelRow](t, env.Open(t), modelSchema()),
	}
	rapid.Check(t, func(rt *rapid.T) {
		run := testenv.ID() // each sequence has keys of its own
		model := map[string]*state{}
		genKey := rapid.Custom(func(rt *rapid.T) modelKey {
			return modelKey{run, rapid.SampledFrom(modelNames).Draw(rt, "name"), rapid.SampledFrom(modelNums).Draw(rt, "num")}
		})
		genWhen := rapid.SampledFrom(modelWhens)
		pick := func(rt *rapid.T) *runtime.Repo[modelKey, modelRow] {
			return repos[rapid.IntRange(0, 1).Draw(rt, "conn")]
		}
		visible := func(k modelKey) (*state, bool) {
			s, ok := model[canon(k)]
			return s, ok && !s.removed
		}
		rt.Repeat(map[string]func(*rapid.T){
			"Put": func(rt *rapid.T) {
				k, v, w := genKey.Draw(rt, "key"), rapid.IntRange(0, 1000).Draw(rt, "v"), genWhen.Draw(rt, "when")
				err := pick(rt).Put(ctx, k, modelRow{v}, w)
				if !validWhen(w) {
					if !errors.Is(err, runtime.ErrInvalidArgument) {
						rt.Fatalf("Put with when %v: %v; want ErrInvalidArgument", w, err)
					}
					return
				}
				if err != nil {
					rt.Fatalf("Put(%v): %v", k, err)
				}
				model[canon(k)] = &state{v: v, whenMs: storedMs(w)}
			},
			"Insert": func(rt *rapid.T) {
				k, v, w := genKey.Draw(rt, "key"), rapid.IntRange(0, 1000).Draw(rt, "v"), genWhen.Draw(rt, "when")
				if !validWhen(w) {
					return
				}
				inserted, err := pick(rt).Insert(ctx, k, modelRow{v}, w)
				if err != nil {
					rt.Fatalf("Insert(%v): %v", k, err)
				}
				_, exists := model[canon(k)]
				if inserted == exists {
					rt.Fatalf("Insert(%v) = %v; the model says the key exists: %v", k, inserted, exists)
				}
				if !exists {
					model[canon(k)] = &state{v: v, whenMs: storedMs(w)}
				}
			},
			"Remove": func(rt *rapid.T) {
				k := genKey.Draw(rt, "key")
				removed, err := pick(rt).Remove(ctx, k)
				if err != nil {
					rt.Fatalf("Remove(%v): %v", k, err)
				}
				s, vis := visible(k)
				if removed != vis {
					rt.Fatalf("Remove(%v) = %v, want %v", k, removed, vis)
				}
				if vis {
					s.removed = true
				}
			},
			"Exists": func(rt *rapid.T) {
				k := genKey.Draw(rt, "key")
				got, err := pick(rt).Exists(ctx, k)
				if err != nil {
					rt.Fatalf("Exists(%v): %v", k, err)
				}
				if _, want := model[canon(k)]; got != want {
					rt.Fatalf("Exists(%v) = %v, want %v", k, got, want)
				}
			},
			"Get": func(rt *rapid.T) {
				k := genKey.Draw(rt, "key")
				got, err := pick(rt).Get(ctx, k)
				s, vis := visible(k)
				switch {
				case !vis && !errors.Is(err, runtime.ErrNotFound):
					rt.Fatalf("Get(%v) = %+v, %v; want not found", k, got.Payload, err)
				case vis && (err != nil || got.Payload.V != s.v || got.When.UnixMilli() != s.whenMs):
					rt.Fatalf("Get(%v) = %+v at %v, %v; want %d at %d ms", k, got.Payload, got.When, err, s.v, s.whenMs)
				}
			},
			"GetAsOf": func(rt *rapid.T) {
				k, at := genKey.Draw(rt, "key"), genWhen.Draw(rt, "at")
				got, err := pick(rt).GetAsOf(ctx, k, at)
				s, vis := visible(k)
				// Visible as of at: written at or before at, never after.
				want := vis && (!validWhen(at) || s.whenMs <= at.UnixMilli())
				switch {
				case !want && !errors.Is(err, runtime.ErrNotFound):
					rt.Fatalf("GetAsOf(%v, %v) = %+v, %v; want not found (row %+v)", k, at, got.Payload, err, s)
				case want && (err != nil || got.Payload.V != s.v):
					rt.Fatalf("GetAsOf(%v, %v) = %+v, %v; want %d", k, at, got.Payload, err, s.v)
				}
			},
			"List": func(rt *rapid.T) {
				name := rapid.SampledFrom(modelNames).Draw(rt, "name")
				withRemoved := rapid.Bool().Draw(rt, "removed")
				rows, err := runtime.Collect(pick(rt).List(ctx, runtime.ListOptions{Prefix: []any{run, name}, IncludeRemoved: withRemoved}))
				if err != nil {
					rt.Fatalf("List(%q): %v", name, err)
				}
				var got, want []string
				for _, r := range rows {
					got = append(got, fmt.Sprintf("%v=%d", r.Key.Num+0, r.Payload.V))
				}
				for _, num := range modelNums {
					k := modelKey{run, name, num}
					if s, ok := model[canon(k)]; ok && (!s.removed || withRemoved) && !slices.Contains(want, fmt.Sprintf("%v=%d", num+0, s.v)) {
						want = append(want, fmt.Sprintf("%v=%d", num+0, s.v))
					}
				}
				sort.Strings(got)
				sort.Strings(want)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					rt.Fatalf("List(%q, removed %v) = %v, want %v", name, withRemoved, got, want)
				}
			},
			"GetMany": func(rt *rapid.T) {
				keys := rapid.SliceOfN(genKey, 1, 6).Draw(rt, "keys")
				got, err := pick(rt).GetMany(ctx, keys)
				if err != nil {
					rt.Fatalf("GetMany: %v", err)
				}
				for i, k := range keys {
					s, vis := visible(k)
					switch {
					case !vis && got[i] != nil:
						rt.Fatalf("GetMany[%d] (%v) = %+v, want nothing", i, k, got[i].Payload)
					case vis && (got[i] == nil || got[i].Payload.V != s.v):
						rt.Fatalf("GetMany[%d] (%v) = %v, want %d", i, k, got[i], s.v)
					}
				}
			},
			"PutMany": func(rt *rapid.T) {
				n := rapid.IntRange(1, 6).Draw(rt, "n")
				items := make([]runtime.Item[modelKey, modelRow], n)
				for i := range items {
					items[i] = runtime.Item[modelKey, modelRow]{Key: genKey.Draw(rt, "key"), Payload: modelRow{rapid.IntRange(0, 1000).Draw(rt, "v")}, When: genWhen.Draw(rt, "when")}
				}
				err := pick(rt).PutMany(ctx, items)
				for _, it := range items {
					if !validWhen(it.When) {
						if !errors.Is(err, runtime.ErrInvalidArgument) {
							rt.Fatalf("PutMany with when %v: %v; want ErrInvalidArgument and nothing stored", it.When, err)
						}
						return
					}
				}
				if err != nil {
					rt.Fatalf("PutMany: %v", err)
				}
				for _, it := range items { // the last of a key wins
					model[canon(it.Key)] = &state{v: it.Payload.V, whenMs: storedMs(it.When)}
				}
			},
			"InsertMany": func(rt *rapid.T) {
				n := rapid.IntRange(1, 6).Draw(rt, "n")
				items := make([]runtime.Item[modelKey, modelRow], n)
				for i := range items {
					w := genWhen.Draw(rt, "when")
					if !validWhen(w) {
						w = modelWhens[0]
					}
					items[i] = runtime.Item[modelKey, modelRow]{Key: genKey.Draw(rt, "key"), Payload: modelRow{rapid.IntRange(0, 1000).Draw(rt, "v")}, When: w}
				}
				inserted, err := pick(rt).InsertMany(ctx, items)
				if err != nil {
					rt.Fatalf("InsertMany: %v", err)
				}
				want := 0
				for _, it := range items { // the first of a key wins; existing rows are kept
					if _, ok := model[canon(it.Key)]; !ok {
						model[canon(it.Key)] = &state{v: it.Payload.V, whenMs: storedMs(it.When)}
						want++
					}
				}
				if inserted != want {
					rt.Fatalf("InsertMany inserted %d, want %d", inserted, want)
				}
			},
		})
	})
}

func flagGiven(name string) bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
