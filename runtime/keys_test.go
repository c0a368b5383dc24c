package runtime

// Keys without a Repo: compiled keys, their Redis spelling and the
// decoders of key fields.

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestKeyDecoders(t *testing.T) {
	raw := bson.Raw(pureDoc(t, bson.D{{Key: "s", Value: "x"}, {Key: "b", Value: true}, {Key: "d", Value: 2.5},
		{Key: "di", Value: -3.0}, {Key: "i32", Value: int32(7)}, {Key: "i64", Value: int64(1) << 60}, {Key: "n", Value: nil}}))
	if got, err := KeyString(raw, "s"); err != nil || got != "x" {
		t.Errorf("KeyString = %q, %v", got, err)
	}
	if got, err := KeyBool(raw, "b"); err != nil || !got {
		t.Errorf("KeyBool = %v, %v", got, err)
	}
	for _, tc := range []struct {
		field string
		want  float64
	}{{"d", 2.5}, {"di", -3}, {"i32", 7}, {"i64", float64(int64(1) << 60)}} {
		if got, err := KeyFloat64(raw, tc.field); err != nil || got != tc.want {
			t.Errorf("KeyFloat64(%s) = %v, %v; want %v", tc.field, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		field string
		want  int64
	}{{"di", -3}, {"i32", 7}, {"i64", 1 << 60}} {
		if got, err := KeyInt64(raw, tc.field); err != nil || got != tc.want {
			t.Errorf("KeyInt64(%s) = %v, %v; want %v", tc.field, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"string of a bool", func() error { _, err := KeyString(raw, "b"); return err }(), `key field "b" is a BSON boolean, not a string`},
		{"string of null", func() error { _, err := KeyString(raw, "n"); return err }(), `key field "n" is a BSON null, not a string`},
		{"missing string", func() error { _, err := KeyString(raw, "nope"); return err }(), `key field "nope": `},
		{"bool of a string", func() error { _, err := KeyBool(raw, "s"); return err }(), `key field "s" is a BSON string, not a bool`},
		{"missing bool", func() error { _, err := KeyBool(raw, "nope"); return err }(), `key field "nope": `},
		{"float of a string", func() error { _, err := KeyFloat64(raw, "s"); return err }(), `key field "s" is a BSON string, not a number`},
		{"missing float", func() error { _, err := KeyFloat64(raw, "nope"); return err }(), `key field "nope": `},
		{"int of a fraction", func() error { _, err := KeyInt64(raw, "d"); return err }(), `key field "d" is a BSON double, not a whole number`},
		{"int of a bool", func() error { _, err := KeyInt64(raw, "b"); return err }(), `key field "b" is a BSON boolean, not a whole number`},
		{"missing int", func() error { _, err := KeyInt64(raw, "nope"); return err }(), `key field "nope": `},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestKeys(t *testing.T) {
	s := pureCandles()
	ks, err := CompileKeys(s)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Schema() != s {
		t.Fatal("Schema() is not the compiled schema")
	}
	if _, err := CompileKeys(&Schema{Domain: "x"}); !errors.Is(err, ErrSchema) {
		t.Fatalf("CompileKeys(invalid) = %v", err)
	}
	if _, err := CompileKeys(nil); !errors.Is(err, ErrSchema) {
		t.Fatalf("CompileKeys(nil) = %v", err)
	}
	func() {
		defer func() {
			err, _ := recover().(error)
			if !errors.Is(err, ErrSchema) {
				t.Fatalf("MustCompileKeys(invalid) panicked with %v", err)
			}
		}()
		MustCompileKeys(&Schema{Domain: "x"})
	}()
	if MustCompileKeys(s).Schema() != s {
		t.Fatal("MustCompileKeys")
	}

	good := pureKey{"a:b", false, 5}
	if err := ks.Validate(good); err != nil {
		t.Fatal(err)
	}
	vals, err := ks.Values(good)
	if diff := cmp.Diff([]any{"a:b", false, 5.0}, vals); err != nil || diff != "" {
		t.Fatalf("Values: %v (-want +got):\n%s", err, diff)
	}
	if rk, err := ks.RedisKey("ns:", good); err != nil || rk != "ns:candle_cache:a%3Ab:false:5" {
		t.Fatalf("RedisKey = %q, %v", rk, err)
	}
	f, err := ks.Filter(good)
	if diff := cmp.Diff(bson.D{{Key: "symbol", Value: "a:b"}, {Key: "backtest", Value: false}, {Key: "timestamp", Value: 5.0}}, f); err != nil || diff != "" {
		t.Fatalf("Filter: %v (-want +got):\n%s", err, diff)
	}

	bad := pureKey{"", false, 5}
	for _, tc := range []struct {
		op  string
		err error
	}{
		{"Validate", ks.Validate(bad)},
		{"RedisKey", func() error { _, err := ks.RedisKey("", bad); return err }()},
		{"Filter", func() error { _, err := ks.Filter(bad); return err }()},
	} {
		var oe *OpError
		if !errors.As(tc.err, &oe) || oe.Op != tc.op || oe.Domain != "candle" || !errors.Is(tc.err, ErrInvalidKey) ||
			!strings.Contains(tc.err.Error(), `key field "symbol" is empty`) {
			t.Errorf("%s: %v", tc.op, tc.err)
		}
	}
}
