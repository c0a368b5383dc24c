package awkward

import (
	"errors"
	"reflect"
	"testing"

	"github.com/persistgen/persistgen/runtime"
)

// Parameters made from key fields named like generated locals or keywords
// are renamed, and keys still spell every part.
func TestAwkwardNamesKeepTheirParts(t *testing.T) {
	rk, err := FuncKey{Items: "a", Ctx: "b", Since: "c", ID: "d"}.RedisKey()
	if err != nil || rk != "func_cache:a:b:c:d" {
		t.Fatalf("RedisKey = %q, %v", rk, err)
	}
	rk, err = GoKey{Type: "t", Range: "r", Batch: "b"}.RedisKey()
	if err != nil || rk != "go_cache:t:r:b" {
		t.Fatalf("RedisKey = %q, %v", rk, err)
	}
	if err := (LimitKey{Limit: "x", It: "1m", At: 0}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (WholeKey{}).Validate(); !errors.Is(err, runtime.ErrInvalidKey) {
		t.Fatalf("empty key: %v", err)
	}
	// PutAll(r, ctx, items_, ctx_, since_, items []Entry) keeps every prefix part.
	if m := reflect.TypeOf((*FuncRepo).PutAll); m.NumIn() != 6 || m.In(5) != reflect.TypeOf([]Entry(nil)) {
		t.Fatalf("PutAll signature: %v", m)
	}
	if m := reflect.TypeOf((*WholeRepo).List); m.NumIn() != 2 {
		t.Fatalf("a one-field bucket lists the whole domain: %v", m)
	}
}
