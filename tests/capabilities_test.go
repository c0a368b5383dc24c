package tests

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// The probed capabilities are checked against what the server does when
// asked directly, each the way the runtime depends on it, and nothing is
// left in the probe collection. When the test script knows which server it
// started, it also names the capabilities that server must have
// (PERSIST_TEST_EXPECT_CAPABILITIES), so a probe that fails on both sides
// the same way is caught too.
func TestCapabilitiesTellTheTruth(t *testing.T) {
	t.Parallel()
	env := testenv.New(t)
	ctx := ctxT(t)
	must(t, env.Conn.Ready(ctx))
	caps := env.Conn.Capabilities()
	t.Logf("%s: %+v", env.Conn.Server().Product, caps)
	db := env.Conn.Database()
	coll := db.Collection("direct")

	_, err := coll.InsertOne(ctx, bson.D{{Key: "pairs", Value: bson.A{bson.A{"k", bson.D{{Key: "v", Value: 1}}}}}})
	if (err == nil) != caps.NestedArrays {
		t.Errorf("NestedArrays = %v, but a nested array insert returned %v", caps.NestedArrays, err)
	}
	_, err = coll.InsertOne(ctx, bson.D{{Key: "inf", Value: math.Inf(-1)}})
	if (err == nil) != caps.Infinity {
		t.Errorf("Infinity = %v, but a -Inf insert returned %v", caps.Infinity, err)
	}
	if caps.NaN { // a server without it may drop the connection on a NaN
		_, err = coll.InsertOne(ctx, bson.D{{Key: "nan", Value: math.NaN()}})
		must(t, err)
	}
	_, err = coll.InsertOne(ctx, bson.D{{Key: "nul", Value: "a\x00b"}})
	if (err == nil) != caps.NulInStrings {
		t.Errorf("NulInStrings = %v, but inserting a NUL byte returned %v", caps.NulInStrings, err)
	}

	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "p"}, {Key: "a", Value: 1}, {Key: "b", Value: 2}})
	must(t, err)
	raw, err := coll.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: "p"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "a", Value: 3}}}},
		options.FindOneAndUpdate().SetProjection(bson.D{{Key: "_id", Value: 1}})).Raw()
	projected := err == nil && raw.Lookup("b").Type == 0
	if projected != caps.FindAndModifyProjection {
		t.Errorf("FindAndModifyProjection = %v, but findAndModify with a projection gave %v, %v", caps.FindAndModifyProjection, raw, err)
	}

	// An unordered bulk of updates with a failing one in the middle: exact
	// results name it by its index, go on past it and number upserts by
	// operation.
	bulk := db.Collection("bulk")
	_, err = bulk.InsertOne(ctx, bson.D{{Key: "_id", Value: 0}, {Key: "s", Value: "text"}})
	must(t, err)
	up := func(id int) mongo.WriteModel {
		return mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}).SetUpsert(true)
	}
	res, err := bulk.BulkWrite(ctx, []mongo.WriteModel{
		up(1), up(2),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: 0}}).SetUpdate(bson.D{{Key: "$inc", Value: bson.D{{Key: "s", Value: 1}}}}),
		up(3), up(0),
	}, options.BulkWrite().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) {
		t.Fatalf("a bulk write with a failing $inc returned %v", err)
	}
	stored, err := bulk.CountDocuments(ctx, bson.D{{Key: "x", Value: 1}})
	must(t, err)
	exact := len(bwe.WriteErrors) == 1 && bwe.WriteErrors[0].Index == 2 && stored == 4 &&
		res != nil && len(res.UpsertedIDs) == 3 && fmt.Sprint(res.UpsertedIDs[0], res.UpsertedIDs[1], res.UpsertedIDs[3]) == "1 2 3"
	if exact != caps.BulkResults {
		t.Errorf("BulkResults = %v, but the server reported %+v, %v and stored %d of 4", caps.BulkResults, res, bwe.WriteErrors, stored)
	}

	var hello struct {
		MaxWriteBatchSize int `bson:"maxWriteBatchSize"`
	}
	must(t, db.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello))
	wantMax := 10
	if caps.BulkResults {
		wantMax = hello.MaxWriteBatchSize
	}
	if caps.MaxBulk != wantMax || env.Conn.WriteChunk() != wantMax {
		t.Errorf("MaxBulk %d, WriteChunk %d; want %d (maxWriteBatchSize %d, exact bulk results %v)", caps.MaxBulk, env.Conn.WriteChunk(), wantMax, hello.MaxWriteBatchSize, caps.BulkResults)
	}

	if n, err := db.Collection(runtime.ProbeCollection).CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Errorf("the probe left %d documents (%v)", n, err)
	}

	if want, ok := os.LookupEnv("PERSIST_TEST_EXPECT_CAPABILITIES"); ok {
		have := []string{}
		for name, on := range map[string]bool{"nested_arrays": caps.NestedArrays, "infinity": caps.Infinity, "nan": caps.NaN, "nul_in_strings": caps.NulInStrings, "rare_types": caps.RareTypes,
			"findandmodify_projection": caps.FindAndModifyProjection, "bulk_results": caps.BulkResults} {
			if on {
				have = append(have, name)
			}
		}
		if got := strings.Join(sorted(have), ","); got != want {
			t.Errorf("%s was probed as %q; the test script expects %q", env.Conn.Server().Product, got, want)
		}
	}
}

// Capabilities given in the Config are used as they are, and nothing is
// probed (a deployment that grants no write on the probe collection).
func TestGivenCapabilitiesAreUsedAndNotProbed(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, func(c *runtime.Config) {
		c.Capabilities = &runtime.Capabilities{FindAndModifyProjection: false, BulkResults: false, MaxBulk: 7}
	})
	ctx := ctxT(t)
	must(t, env.Conn.Ready(ctx))
	if got := env.Conn.Capabilities(); got != (runtime.Capabilities{MaxBulk: 7}) || env.Conn.WriteChunk() != 7 {
		t.Fatalf("capabilities %+v, write chunk %d; want what the Config gave", got, env.Conn.WriteChunk())
	}
	names, err := env.Conn.Database().ListCollectionNames(ctx, bson.D{{Key: "name", Value: runtime.ProbeCollection}})
	must(t, err)
	if len(names) != 0 {
		t.Fatalf("a Conn with given capabilities probed anyway: %v", names)
	}
	// Tuples follow the given capabilities: documents, since nested arrays
	// were not granted.
	if !env.Conn.TuplesAsDocuments() {
		t.Fatal("tuples are written as arrays although nested arrays were not granted")
	}
	// Writes work with the given limits: 15 items in 3 bulk writes of 7.
	must(t, env.Conn.EnsureIndexes(ctx, memorySchema()))
	r := newRepo[memKey, memData](t, env.Conn, memorySchema())
	items := make([]runtime.Item[memKey, memData], 15)
	for i := range items {
		items[i] = runtime.Item[memKey, memData]{Key: memKey{"s", "b", itoa(i)}, Payload: memData{Value: i}, When: ms(1)}
	}
	tctx, tr := runtime.WithTrace(ctx)
	must(t, r.PutMany(tctx, items))
	if tr.Mongo() != 3 {
		t.Fatalf("PutMany of 15 with MaxBulk 7: %v; want 3 bulk writes", tr.Commands())
	}
}

// A probe cut off by the network is not taken as the server's answer: the
// guard probes again, and the Conn ends up with what the server can do.
func TestAProbeCutByTheNetworkIsRetriedNotGuessed(t *testing.T) {
	t.Parallel()
	mongoURI, _ := testenv.URIs(t)
	host := hostOf(t, mongoURI)
	ref := testenv.New(t)
	ctx := ctxT(t)
	must(t, ref.Conn.Ready(ctx))
	for _, cmd := range []string{"insert", "findAndModify", "update"} {
		t.Run(cmd, func(t *testing.T) {
			proxy := testenv.NewMongoProxy(t, host)
			proxy.FailOn(cmd, 0)
			c := ref.Open(t, func(c *runtime.Config) { c.MongoURI = strings.Replace(mongoURI, host, proxy.Addr(), 1) })
			must(t, c.Ready(ctx))
			if proxy.Seen(cmd) < 2 {
				t.Fatalf("the probe's %s was cut and never sent again (%d seen)", cmd, proxy.Seen(cmd))
			}
			if got, want := c.Capabilities(), ref.Conn.Capabilities(); got != want {
				t.Fatalf("after a cut probe: %+v; a clean probe found %+v", got, want)
			}
		})
	}
}
