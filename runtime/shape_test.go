package runtime

// Shape: which payload fields a stored document lacks or holds null, and
// their restoring on write-back.

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestShapeOf(t *testing.T) {
	doc := pureDoc(t, bson.D{{Key: "a", Value: 1}, {Key: "b", Value: nil}, {Key: "c", Value: "x"}, {Key: "d", Value: nil}})
	got := ShapeOf(doc, []string{"a", "x", "b", "y"}, []string{"b", "c", "z", "d"})
	want := Shape{Absent: []string{"x", "y"}, Null: []string{"b", "d"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ShapeOf (-want +got):\n%s", diff)
	}
	if got.IsZero() {
		t.Fatal("IsZero of a shape with fields")
	}
	full := ShapeOf(doc, []string{"a", "b"}, []string{"c"})
	if !full.IsZero() || full.Absent != nil || full.Null != nil {
		t.Fatalf("ShapeOf of a full document = %+v", full)
	}
	if !(Shape{}).IsZero() || (Shape{Null: []string{"a"}}).IsZero() || (Shape{Absent: []string{"a"}}).IsZero() {
		t.Fatal("IsZero")
	}
}

func TestShapeRestore(t *testing.T) {
	shape := Shape{
		Absent: []string{"zb", "zd", "zi32", "zi64", "zs", "znull", "zundef", "set", "emptyDoc", "emptyArr"},
		Null:   []string{"ns", "nset", "nmissing"},
	}
	doc := pureDoc(t, bson.D{
		{Key: "zb", Value: false}, {Key: "keep", Value: 0}, {Key: "zd", Value: 0.0}, {Key: "zi32", Value: int32(0)},
		{Key: "zi64", Value: int64(0)}, {Key: "zs", Value: ""}, {Key: "znull", Value: nil}, {Key: "zundef", Value: bson.Undefined{}},
		{Key: "set", Value: "v"}, {Key: "emptyDoc", Value: bson.D{}}, {Key: "emptyArr", Value: bson.A{}},
		{Key: "ns", Value: ""}, {Key: "nset", Value: 3.5},
	})
	got, err := shape.Restore(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := pureDoc(t, bson.D{
		{Key: "keep", Value: 0}, {Key: "set", Value: "v"}, {Key: "emptyDoc", Value: bson.D{}}, {Key: "emptyArr", Value: bson.A{}},
		{Key: "ns", Value: nil}, {Key: "nset", Value: 3.5}, {Key: "nmissing", Value: nil},
	})
	if !bytes.Equal(got, want) {
		t.Fatalf("Restore:\n got %s\nwant %s", bson.Raw(got), bson.Raw(want))
	}
	if same, err := (Shape{}).Restore(doc); err != nil || !bytes.Equal(same, doc) {
		t.Fatalf("the zero shape changed the document: %v", err)
	}
	if _, err := shape.Restore([]byte{1, 2, 3}); err == nil {
		t.Fatal("Restore accepted a malformed document")
	}
}

// What ShapeOf records of a stored document, Restore gives back to the
// re-encoded value.
func TestShapeRoundTrip(t *testing.T) {
	type p struct {
		Name string `bson:"name"`
		N    int32  `bson:"n"`
		V    string `bson:"v"`
	}
	stored := pureDoc(t, bson.D{{Key: "name", Value: "a"}, {Key: "v", Value: nil}})
	shape := ShapeOf(stored, []string{"name", "n", "v"}, []string{"v"})
	var x p
	if err := bson.Unmarshal(stored, &x); err != nil {
		t.Fatal(err)
	}
	enc := pureDoc(t, bson.D{{Key: "name", Value: x.Name}, {Key: "n", Value: x.N}, {Key: "v", Value: x.V}})
	got, err := shape.Restore(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, stored) {
		t.Fatalf("round trip: got %s, want %s", bson.Raw(got), bson.Raw(stored))
	}
}

// ShapeOf's single pass agrees with a lookup per name, duplicate names and
// nulls included, on random documents.
func TestShapeOfAgreesWithLookups(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "ab", ""}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		d := bson.D{}
		for range rng.IntN(8) {
			var v any = rng.IntN(3)
			if rng.IntN(3) == 0 {
				v = nil
			}
			d = append(d, bson.E{Key: names[rng.IntN(len(names))], Value: v})
		}
		doc := pureDoc(t, d)
		pick := func() []string {
			var out []string
			for _, n := range names {
				if rng.IntN(2) == 0 {
					out = append(out, n)
				}
			}
			return out
		}
		known, nullable := pick(), pick()
		if diff := cmp.Diff(shapeByLookup(doc, known, nullable), ShapeOf(doc, known, nullable)); diff != "" {
			t.Fatalf("%v, known %q, nullable %q (-lookups +ShapeOf):\n%s", d, known, nullable, diff)
		}
	}
}
