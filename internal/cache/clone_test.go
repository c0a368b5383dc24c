package cache

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

type cloneInner struct {
	N  int
	S  []string
	At time.Time
}

type clonePayload struct {
	Name  string
	P     *cloneInner
	L     []cloneInner
	M     map[string][]int
	Any   any
	Arr   [2]*int
	Raw   bson.Raw
	ID    bson.ObjectID
	Extra bson.D
	Shape shape
}

// record stands for a repository's record type (runtime.Record), which
// this package cannot import.
type record[K, P any] struct {
	ID      bson.ObjectID
	Key     K
	Payload P
	When    time.Time
	Removed bool
}

// shape stands for runtime.Shape, which generated payloads carry.
type shape struct {
	Absent []string
	Null   []string
}

// A clone equals its original and shares nothing mutable with it: every
// change to the clone, at any depth, leaves the original as it was.
func TestCloneIsDeep(t *testing.T) {
	build := func() record[plainKey, *clonePayload] {
		n := 7
		return record[plainKey, *clonePayload]{Payload: &clonePayload{
			Name: "x", P: &cloneInner{N: 1, S: []string{"a"}, At: time.Unix(5, 0)}, L: []cloneInner{{N: 2, S: []string{"b"}}},
			M: map[string][]int{"k": {1, 2}}, Any: bson.D{{Key: "d", Value: bson.A{int32(1), bson.D{{Key: "e", Value: "f"}}}}},
			Arr: [2]*int{&n, nil}, Raw: bson.Raw{5, 0, 0, 0, 0}, ID: bson.ObjectID{1, 2, 3},
			Extra: bson.D{{Key: "u", Value: []any{"v"}}}, Shape: shape{Absent: []string{"z"}},
		}, When: time.Unix(9, 0)}
	}
	orig, keep := build(), build() // keep shares nothing with orig
	if !Clonable(reflect.TypeOf(orig)) {
		t.Fatal("a record of exported fields, slices, maps, pointers and bson values should be clonable")
	}
	c := cloneOf(orig)
	if diff := cmp.Diff(orig, c); diff != "" {
		t.Fatalf("clone differs (-orig +clone):\n%s", diff)
	}
	p := c.Payload
	p.Name = "changed"
	p.P.N, p.P.S[0] = 9, "changed"
	p.L[0].S[0] = "changed"
	p.M["k"][0] = 9
	p.Any.(bson.D)[0].Value.(bson.A)[1].(bson.D)[0].Value = "changed"
	*p.Arr[0] = 9
	p.Raw[4] = 9
	p.Extra[0].Value.([]any)[0] = "changed"
	p.Shape.Absent[0] = "changed"
	if diff := cmp.Diff(keep, orig); diff != "" {
		t.Fatalf("changing the clone changed the original (-before +after):\n%s", diff)
	}
}

type withHidden struct {
	A      int
	hidden []int
}

var _ = withHidden{hidden: nil} // the field exists to be unexported

func TestClonableRefusesWhatItCannotCopy(t *testing.T) {
	for _, v := range []any{withHidden{}, struct{ C chan int }{}, struct{ F func() }{}, map[string]withHidden{}} {
		if Clonable(reflect.TypeOf(v)) {
			t.Errorf("%T reported clonable", v)
		}
	}
	type self struct{ Next *self }
	if !Clonable(reflect.TypeFor[self]()) {
		t.Error("a recursive type of exported fields should be clonable")
	}
}

type plainKey struct{ A string }

type node struct {
	V    int
	Next *node
	Kids []node
}

// A recursive type's plan refers to itself; the copy is deep at every level.
func TestCloneOfARecursiveType(t *testing.T) {
	orig := node{V: 1, Next: &node{V: 2, Next: &node{V: 3}}, Kids: []node{{V: 4, Next: &node{V: 5}}}}
	c := cloneOf(orig)
	if diff := cmp.Diff(orig, c); diff != "" {
		t.Fatalf("clone differs:\n%s", diff)
	}
	c.Next.Next.V, c.Kids[0].Next.V = 30, 50
	if orig.Next.Next.V != 3 || orig.Kids[0].Next.V != 5 {
		t.Fatalf("changing the clone changed the original: %+v", orig)
	}
}
