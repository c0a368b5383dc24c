package tests

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
	"github.com/persistgen/persistgen/schema"
)

// Two cache modes whose families differ (value or local against identity
// or none) cannot share a collection: one keeps rows in Redis the other's
// writes never invalidate. On one Conn the second Repo is refused at
// construction; across Conns (processes) the collection's marker in Redis
// refuses the second family at its first operation, naming the marker.
// Modes of one family mix. Found by a review (issue 21): an identity Repo
// and a value Repo on one collection were built without complaint, and
// 2,684 of 6,618 reads were stale.
func TestModesOfTwoFamiliesCannotShareACollection(t *testing.T) {
	env := setup(t)
	ident, value, local := memorySchemaIn(runtime.CacheIdentity, 0), memorySchemaIn(runtime.CacheValue, 0), localSchema(0, 0)
	none := memorySchemaIn(runtime.CacheNone, 0)
	if _, err := runtime.NewRepo[memKey, memData](env.Conn, value); err != nil {
		t.Fatal(err)
	}
	if _, err := runtime.NewRepo[memKey, memData](env.Conn, local); err != nil {
		t.Fatalf("a local Repo beside a value one: %v", err)
	}
	for _, s := range []*runtime.Schema{ident, none} {
		_, err := runtime.NewRepo[memKey, memData](env.Conn, s)
		if !errors.Is(err, runtime.ErrInvalidArgument) || !strings.Contains(err.Error(), "same cache mode") {
			t.Fatalf("a %s Repo beside a value one on one Conn: %v; want ErrInvalidArgument saying what to do", s.Mode(), err)
		}
	}

	// Across Conns: the first operation claims the marker.
	must(t, env.Conn.EnsureIndexes(ctxT(t), value))
	vr := newRepo[memKey, memData](t, env.Conn, value)
	k := memKey{"s", "b", "1"}
	must(t, vr.Put(ctxT(t), k, memData{Value: 1}, ms(1)))
	marker := schema.MarkerKey(env.Config.KeyPrefix, value.RedisPrefix, env.Conn.Database().Name(), value.Collection)
	if got, err := env.Redis.Get(ctxT(t), marker).Result(); err != nil || got != "rows" {
		t.Fatalf("marker %s = %q, %v; want rows", marker, got, err)
	}
	other := env.Open(t)
	ir := newRepo[memKey, memData](t, other, ident)
	_, err := ir.Get(ctxT(t), k)
	if !errors.Is(err, runtime.ErrInvalidArgument) || !strings.Contains(err.Error(), marker) {
		t.Fatalf("an identity Get on a collection marked for rows = %v; want ErrInvalidArgument naming %s", err, marker)
	}
	if err := ir.Put(ctxT(t), k, memData{Value: 2}, ms(2)); !errors.Is(err, runtime.ErrInvalidArgument) {
		t.Fatalf("an identity Put there = %v; want it refused", err)
	}
	if rec, err := vr.Get(ctxT(t), k); err != nil || rec.Payload.Value != 1 {
		t.Fatalf("the refused write changed the row: %+v, %v", rec.Payload, err)
	}
	// Another Conn of the same family goes on.
	lr := newRepo[memKey, memData](t, env.Open(t), local)
	if rec, err := lr.Get(ctxT(t), k); err != nil || rec.Payload.Value != 1 {
		t.Fatalf("a local Get beside value writers = %+v, %v", rec.Payload, err)
	}
}

// Without EnsureIndexes, the first write to a collection creates its
// indexes (create-only) before it is sent: racing upserts of one new key
// leave one row. With DisableAutoIndexes, a write to a collection without
// its unique index is refused, before anything is written, with an error
// that says what to run. Found by a review (issue 21): in 16 of 20
// rounds, 16 concurrent Puts of one new key left duplicate rows and every
// Put returned nil.
func TestNoWriteReachesACollectionWithoutItsUniqueIndex(t *testing.T) {
	t.Parallel()
	s := signalSchema()
	env := testenv.New(t) // no EnsureIndexes
	r := newRepo[sigKey, *sigRow](t, env.Conn, s)
	k := sigKey{"s", "x", "new"}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- r.Put(ctxT(t), k, &sigRow{ID: string(rune('a' + i))}, time.Time{})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	coll := env.Conn.Database().Collection(s.Collection)
	if n, err := coll.CountDocuments(ctxT(t), bson.D{}); err != nil || n != 1 {
		t.Fatalf("16 racing Puts of one new key left %d rows (%v); want 1", n, err)
	}
	steps, err := env.Conn.PlanIndexes(ctxT(t), s)
	must(t, err)
	for _, st := range steps {
		if st.Action != runtime.PlanOK {
			t.Fatalf("after the first write, index %s is %s (%s)", st.Name, st.Action, st.Detail)
		}
	}

	off := testenv.New(t, func(c *runtime.Config) { c.DisableAutoIndexes = true })
	ro := newRepo[sigKey, *sigRow](t, off.Conn, s)
	err = ro.Put(ctxT(t), k, &sigRow{ID: "1"}, time.Time{})
	if !errors.Is(err, runtime.ErrIndexMissing) || !strings.Contains(err.Error(), "persistgen-ops plan -apply") {
		t.Fatalf("a Put without the unique index, auto-indexes off = %v; want ErrIndexMissing saying what to run", err)
	}
	if n, _ := off.Conn.Database().Collection(s.Collection).CountDocuments(ctxT(t), bson.D{}); n != 0 {
		t.Fatalf("the refused Put wrote %d rows", n)
	}
	// Reads are not refused; once the index exists, writes go on.
	if _, err := ro.Get(ctxT(t), k); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Get without the index = %v; want ErrNotFound", err)
	}
	must(t, off.Open(t).EnsureIndexes(ctxT(t), s))
	must(t, ro.Put(ctxT(t), k, &sigRow{ID: "1"}, time.Time{}))
}
