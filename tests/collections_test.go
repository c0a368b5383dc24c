package tests

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

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

// The marker is claimed by every mode, none too, and a check that Redis
// could not answer is made again at a later operation, not skipped for
// good. Found by a review of the fix above: an identity Conn whose first
// operations ran while Redis was cut, or a none-mode Conn, left the marker
// free, and a value-mode Conn arriving later served stale rows.
func TestTheMarkerIsClaimedByEveryModeOnceRedisAnswers(t *testing.T) {
	for _, first := range []runtime.CacheMode{runtime.CacheIdentity, runtime.CacheNone} {
		t.Run(string(first), func(t *testing.T) {
			t.Parallel()
			env := testenv.New(t)
			s := memorySchemaIn(first, 0)
			must(t, env.Conn.EnsureIndexes(ctxT(t), s))
			_, redisURL := testenv.URIs(t)
			proxy := testenv.NewProxy(t, hostOf(t, redisURL))
			cut := env.Open(t, func(c *runtime.Config) {
				c.RedisURL = "redis://" + proxy.Addr() + "/0"
				c.RedisRetryAfter, c.RedisTimeout = 50*time.Millisecond, 100*time.Millisecond
			})
			must(t, cut.Ready(ctxT(t)))
			r := newRepo[memKey, memData](t, cut, s)
			k := memKey{"s", "b", "1"}
			proxy.Cut()
			must(t, r.Put(ctxT(t), k, memData{Value: 1}, ms(1)))
			must(t, r.Put(ctxT(t), k, memData{Value: 2}, ms(2)))
			proxy.Restore()
			marker := schema.MarkerKey(env.Config.KeyPrefix, s.RedisPrefix, env.Conn.Database().Name(), s.Collection)
			waitFor(t, func() bool { // the breaker's retry time passes; a later operation claims it
				_, err := r.Get(ctxT(t), k)
				must(t, err)
				got, _ := env.Redis.Get(ctxT(t), marker).Result()
				return got == "identities"
			})
			vr := newRepo[memKey, memData](t, env.Open(t), memorySchemaIn(runtime.CacheValue, 0))
			if _, err := vr.Get(ctxT(t), k); !errors.Is(err, runtime.ErrInvalidArgument) {
				t.Fatalf("a value-mode Get after a %s Conn claimed the marker = %v; want it refused", first, err)
			}
		})
	}
}

// Before a first write, only the unique index decides: a conflicting
// secondary index is logged and writes go on; rows that already share a
// key (written before the unique index) make its build fail, and the
// write is refused with ErrIndexMissing saying how to find them. Found by
// a review of the fix above: any conflicting index refused every write,
// and duplicates gave the server's raw error on every write.
func TestOnlyTheUniqueIndexDecidesAFirstWrite(t *testing.T) {
	t.Parallel()
	s := memorySchema()
	env := testenv.New(t)
	coll := env.Conn.Database().Collection(s.Collection)
	_, err := coll.Indexes().CreateOne(ctxT(t), mongo.IndexModel{Keys: bson.D{{Key: "signalId", Value: 1}, {Key: "bucketName", Value: 1}, {Key: "removed", Value: 1}},
		Options: options.Index().SetName("signalId_1_bucketName_1_removed_1").SetSparse(true)})
	must(t, err)
	r := newRepo[memKey, memData](t, env.Conn, s)
	must(t, r.Put(ctxT(t), memKey{"s", "b", "1"}, memData{Value: 1}, ms(1)))

	dup := testenv.New(t)
	dcoll := dup.Conn.Database().Collection(s.Collection)
	for range 2 {
		_, err := dcoll.InsertOne(ctxT(t), bson.D{{Key: "signalId", Value: "s"}, {Key: "bucketName", Value: "b"}, {Key: "memoryId", Value: "twice"}, {Key: "removed", Value: false}})
		must(t, err)
	}
	dr := newRepo[memKey, memData](t, dup.Conn, s)
	err = dr.Put(ctxT(t), memKey{"s", "b", "other"}, memData{Value: 1}, ms(1))
	if !errors.Is(err, runtime.ErrIndexMissing) || !strings.Contains(err.Error(), "persistgen-ops audit") {
		t.Fatalf("a first write beside rows that share a key = %v; want ErrIndexMissing naming the audit", err)
	}
}
