package runtime

// Tuples: their array and document forms.

import (
	"bytes"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestTuple(t *testing.T) {
	typ, data, err := MarshalTuple("k", int64(5))
	if err != nil {
		t.Fatal(err)
	}
	want := pureRaw(t, bson.A{"k", int64(5)})
	if bson.Type(typ) != bson.TypeArray || !bytes.Equal(data, want.Value) {
		t.Fatalf("MarshalTuple = %v %s", bson.Type(typ), bson.RawArray(data))
	}
	names := []string{"key", "value"}
	var k string
	var v int64
	if err := UnmarshalTuple(typ, data, names, &k, &v); err != nil || k != "k" || v != 5 {
		t.Fatalf("array form: %q %d %v", k, v, err)
	}

	obj := pureRaw(t, bson.D{{Key: "value", Value: int64(6)}, {Key: "key", Value: "o"}})
	k, v = "", 0
	if err := UnmarshalTuple(byte(obj.Type), obj.Value, names, &k, &v); err != nil || k != "o" || v != 6 {
		t.Fatalf("document form: %q %d %v", k, v, err)
	}
	part := pureRaw(t, bson.D{{Key: "key", Value: "p"}})
	k, v = "", 99
	if err := UnmarshalTuple(byte(part.Type), part.Value, names, &k, &v); err != nil || k != "p" || v != 99 {
		t.Fatalf("document without value: %q %d %v", k, v, err)
	}
	for _, nt := range []bson.Type{bson.TypeNull, bson.TypeUndefined} {
		k, v = "keep", 1
		if err := UnmarshalTuple(byte(nt), nil, names, &k, &v); err != nil || k != "keep" || v != 1 {
			t.Fatalf("%v: %q %d %v", nt, k, v, err)
		}
	}

	three := pureRaw(t, bson.A{"a", 1, 2})
	mistyped := pureRaw(t, bson.A{"a", "b"})
	badField := pureRaw(t, bson.D{{Key: "value", Value: "x"}})
	str := pureRaw(t, "x")
	for _, tc := range []struct {
		name string
		rv   bson.RawValue
		want string
	}{
		{"length", three, "tuple: 3 elements stored, 2 expected"},
		{"element type", mistyped, "tuple element 1 (value)"},
		{"field type", badField, "tuple field value"},
		{"not a tuple", str, "tuple: cannot decode BSON string; want an array or a document"},
	} {
		err := UnmarshalTuple(byte(tc.rv.Type), tc.rv.Value, names, &k, &v)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}
}
