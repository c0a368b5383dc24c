package runtime

// Batch reads: the filter of many keys, and the key of a document read.

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/schema"
)

func TestAnyOf(t *testing.T) {
	c := mustCompile(t, &Schema{Domain: "candle", Collection: "c", RedisPrefix: "p",
		Key: []KeyField{{Name: "symbol"}, {Name: "interval"}, {Name: "timestamp"}}})
	one := mustCompile(t, &Schema{Domain: "log", Collection: "c", RedisPrefix: "p", Key: []KeyField{{Name: "id"}}})
	for _, tc := range []struct {
		name string
		c    *compiled
		keys [][]any
		want bson.D
	}{
		{"shared prefix", c, [][]any{{"BTC", "1m", 1.0}, {"BTC", "1m", 2.0}, {"BTC", "1m", 3.0}},
			bson.D{{Key: "symbol", Value: "BTC"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: bson.D{{Key: "$in", Value: bson.A{1.0, 2.0, 3.0}}}}}},
		{"one key", c, [][]any{{"BTC", "1m", 1.0}},
			bson.D{{Key: "symbol", Value: "BTC"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: bson.D{{Key: "$in", Value: bson.A{1.0}}}}}},
		{"last key differs in a leading field", c, [][]any{{"BTC", "1m", 1.0}, {"BTC", "1m", 2.0}, {"ETH", "1m", 1.0}},
			bson.D{{Key: "$or", Value: bson.A{
				bson.D{{Key: "symbol", Value: "BTC"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: 1.0}},
				bson.D{{Key: "symbol", Value: "BTC"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: 2.0}},
				bson.D{{Key: "symbol", Value: "ETH"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: 1.0}},
			}}}},
		{"second field differs", c, [][]any{{"BTC", "1m", 1.0}, {"BTC", "5m", 1.0}},
			bson.D{{Key: "$or", Value: bson.A{
				bson.D{{Key: "symbol", Value: "BTC"}, {Key: "interval", Value: "1m"}, {Key: "timestamp", Value: 1.0}},
				bson.D{{Key: "symbol", Value: "BTC"}, {Key: "interval", Value: "5m"}, {Key: "timestamp", Value: 1.0}},
			}}}},
		{"single-field key", one, [][]any{{"a"}, {"b"}},
			bson.D{{Key: "id", Value: bson.D{{Key: "$in", Value: bson.A{"a", "b"}}}}}},
	} {
		if diff := cmp.Diff(tc.want, tc.c.anyOf(tc.keys)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestDocKeyValues(t *testing.T) {
	s := &Schema{Domain: "d", Collection: "c", RedisPrefix: "p",
		Key: []KeyField{{Name: "s"}, {Name: "b"}, {Name: "i32"}, {Name: "i64"}, {Name: "negz"}, {Name: "f"}}}
	r := pureRepo[purePayload](t, s, pureConn(Config{}, nil))
	raw := pureDoc(t, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "f", Value: 2.5}, {Key: "s", Value: "x"}, {Key: "b", Value: true},
		{Key: "i32", Value: int32(7)}, {Key: "i64", Value: int64(1) << 60}, {Key: "negz", Value: math.Copysign(0, -1)}})
	got := r.docKeyValues(raw)
	want := []any{"x", true, int64(7), int64(1) << 60, 0.0, 2.5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("docKeyValues (-want +got):\n%s", diff)
	}
	if math.Signbit(got[4].(float64)) {
		t.Fatal("-0 kept its sign")
	}
	// A document matches the key that was asked for, int or double.
	vals, err := r.s.Values([]any{"x", true, 7.0, float64(int64(1) << 60), 0, 2.5})
	if err != nil {
		t.Fatal(err)
	}
	if schema.Canon(vals) != schema.Canon(got) {
		t.Fatalf("Canon(%v) = %q, document's %q", vals, schema.Canon(vals), schema.Canon(got))
	}
}
