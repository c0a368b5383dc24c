package schema

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// validSchema is a consistent description that each case below breaks once.
func validSchema() *Schema {
	return &Schema{
		Domain: "signal", Collection: "signal-items", RedisPrefix: "signal_cache",
		Key:        []KeyField{{Name: "symbol", Type: TypeString}, {Name: "backtest", Type: TypeBool}},
		RedisOrder: []string{"backtest", "symbol"},
		HasWhen:    true,
		HasRemoved: true,
		Payload:    "payload",
		Indexes:    []Index{{Name: "symbol_1_when_-1", Keys: []IndexKey{{Field: "symbol"}, {Field: "when", Desc: true}}}},
	}
}

// negZero is -0: the constant -0.0 is +0 in Go.
var negZero = math.Copysign(0, -1)

func TestValidateAcceptsConsistentSchemas(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Schema)
	}{
		{"as is", func(*Schema) {}},
		{"untyped key field", func(s *Schema) { s.Key[0].Type = "" }},
		{"index order in Redis", func(s *Schema) { s.RedisOrder = nil }},
		{"payload removed flag", func(s *Schema) { s.PayloadRemoved = true }},
		{"top-level payload", func(s *Schema) { s.Payload = "" }},
		{"every key type", func(s *Schema) {
			s.Key = []KeyField{{Name: "a", Type: TypeString}, {Name: "b", Type: TypeBool}, {Name: "c", Type: TypeInt64}, {Name: "d", Type: TypeFloat64}}
			s.RedisOrder = nil
		}},
	} {
		s := validSchema()
		tc.mod(s)
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	type tcase struct {
		name string
		mod  func(*Schema)
		want string
	}
	cases := []tcase{
		{"no domain", func(s *Schema) { s.Domain = "" }, "a schema has no Domain name"},
		{"no collection", func(s *Schema) { s.Collection = "" }, `domain "signal": no Collection`},
		{"empty prefix", func(s *Schema) { s.RedisPrefix = "" }, `RedisPrefix "" must be non-empty and contain no ':'`},
		{"prefix with colon", func(s *Schema) { s.RedisPrefix = "a:b" }, `RedisPrefix "a:b" must be non-empty`},
		{"no key", func(s *Schema) { s.Key, s.RedisOrder = nil, nil }, "no Key fields"},
		{"empty key name", func(s *Schema) { s.Key[0].Name = "" }, `key field name "" is not a plain BSON field name`},
		{"dollar key name", func(s *Schema) { s.Key[0].Name = "$x" }, `key field name "$x" is not a plain`},
		{"dotted key name", func(s *Schema) { s.Key[0].Name = "a.b" }, `key field name "a.b" is not a plain`},
		{"duplicate key", func(s *Schema) { s.Key[1].Name = "symbol" }, `key field "symbol" listed twice`},
		{"bad key type", func(s *Schema) { s.Key[0].Type = "int" }, `key field "symbol" has type "int"; use string, bool, int64 or float64`},
		{"payload removed without removed", func(s *Schema) { s.PayloadRemoved, s.HasRemoved = true, false }, "PayloadRemoved needs HasRemoved and a Payload field"},
		{"payload removed without payload", func(s *Schema) { s.PayloadRemoved, s.Payload = true, "" }, "PayloadRemoved needs HasRemoved and a Payload field"},
		{"payload is a key field", func(s *Schema) { s.Payload = "backtest" }, `payload field "backtest" collides with a key or reserved field`},
		{"redis order too short", func(s *Schema) { s.RedisOrder = []string{"symbol"} }, "RedisOrder has 1 fields, the key has 2"},
		{"redis order too long", func(s *Schema) { s.RedisOrder = []string{"symbol", "backtest", "symbol"} }, "RedisOrder has 3 fields, the key has 2"},
		{"redis order empty", func(s *Schema) { s.RedisOrder = []string{} }, "RedisOrder has 0 fields"},
		{"redis order unknown", func(s *Schema) { s.RedisOrder = []string{"symbol", "nope"} }, `RedisOrder field "nope" is not a key field or is listed twice`},
		{"redis order duplicate", func(s *Schema) { s.RedisOrder = []string{"symbol", "symbol"} }, `RedisOrder field "symbol" is not a key field or is listed twice`},
		{"index without name", func(s *Schema) { s.Indexes[0].Name = "" }, "an extra index needs a Name and Keys"},
		{"index without keys", func(s *Schema) { s.Indexes[0].Keys = nil }, "an extra index needs a Name and Keys"},
	}
	for _, r := range reserved() {
		cases = append(cases,
			tcase{"reserved key " + r, func(s *Schema) { s.Key[0].Name = r; s.RedisOrder = nil }, `key field "` + r + `" is a reserved field name`},
			tcase{"reserved payload " + r, func(s *Schema) { s.Payload = r }, `payload field "` + r + `" collides`})
	}
	for _, tc := range cases {
		s := validSchema()
		tc.mod(s)
		err := s.Validate()
		if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrSchema containing %q", tc.name, err, tc.want)
		}
		if _, cerr := Compile(s); !errors.Is(cerr, ErrSchema) {
			t.Errorf("%s: Compile = %v; want ErrSchema", tc.name, cerr)
		}
	}
}

func TestValidateErrorText(t *testing.T) {
	s := validSchema()
	s.Collection = ""
	if got, want := s.Validate().Error(), `invalid schema: domain "signal": no Collection`; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

func TestReserved(t *testing.T) {
	want := []string{"_id", "createDate", "updatedDate", "when", "removed", "_hv", "_hr", "_hrow"}
	if diff := cmp.Diff(want, reserved()); diff != "" {
		t.Fatalf("reserved (-want +got):\n%s", diff)
	}
	for _, n := range want {
		if !IsReserved(n) {
			t.Errorf("IsReserved(%q) = false", n)
		}
	}
	for _, n := range []string{"", "payload", "id", "When", "_ID"} {
		if IsReserved(n) {
			t.Errorf("IsReserved(%q) = true", n)
		}
	}
}

func TestAllIndexes(t *testing.T) {
	extra := Index{Name: "symbol_1_when_-1", Keys: []IndexKey{{Field: "symbol"}, {Field: "when", Desc: true}}}
	asc := func(f string) Index { return Index{Name: f + "_1", Keys: []IndexKey{{Field: f}}} }
	for _, tc := range []struct {
		name string
		s    *Schema
		want []Index
	}{
		{"compound key, when, removed, extra", validSchema(), []Index{
			{Name: "symbol_1_backtest_1", Keys: []IndexKey{{Field: "symbol"}, {Field: "backtest"}}, Unique: true},
			asc("symbol"), asc("backtest"), asc("when"), asc("removed"), extra,
		}},
		{"single-field key gets no per-field index", &Schema{Key: []KeyField{{Name: "entryId"}}}, []Index{
			{Name: "entryId_1", Keys: []IndexKey{{Field: "entryId"}}, Unique: true},
		}},
		{"single-field key with when only", &Schema{Key: []KeyField{{Name: "entryId"}}, HasWhen: true}, []Index{
			{Name: "entryId_1", Keys: []IndexKey{{Field: "entryId"}}, Unique: true}, asc("when"),
		}},
		{"removed without when", &Schema{Key: []KeyField{{Name: "a"}, {Name: "b"}}, HasRemoved: true}, []Index{
			{Name: "a_1_b_1", Keys: []IndexKey{{Field: "a"}, {Field: "b"}}, Unique: true}, asc("a"), asc("b"), asc("removed"),
		}},
	} {
		if diff := cmp.Diff(tc.want, tc.s.AllIndexes()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestIndexName(t *testing.T) {
	for _, tc := range []struct {
		keys []IndexKey
		want string
	}{
		{nil, ""},
		{[]IndexKey{{Field: "a"}}, "a_1"},
		{[]IndexKey{{Field: "a", Desc: true}}, "a_-1"},
		{[]IndexKey{{Field: "backtest"}, {Field: "createDate", Desc: true}, {Field: "_id"}}, "backtest_1_createDate_-1__id_1"},
	} {
		if got := IndexName(tc.keys); got != tc.want {
			t.Errorf("IndexName(%v) = %q, want %q", tc.keys, got, tc.want)
		}
	}
}

func TestCompileNil(t *testing.T) {
	c, err := Compile(nil)
	if c != nil || !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "no schema given") {
		t.Fatalf("Compile(nil) = %v, %v", c, err)
	}
}

func TestErrorf(t *testing.T) {
	err := Errorf(ErrInvalidKey, "part %d", 3)
	if err.Error() != "invalid key: part 3" || !errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrSchema) {
		t.Fatalf("Errorf = %v", err)
	}
}

// partsCompiled has one field of each type, an untyped one and an optional one.
func partsCompiled(t *testing.T) *Compiled {
	t.Helper()
	c, err := Compile(&Schema{Domain: "d", Collection: "c", RedisPrefix: "p", Key: []KeyField{
		{Name: "s", Type: TypeString}, {Name: "b", Type: TypeBool}, {Name: "i", Type: TypeInt64},
		{Name: "f", Type: TypeFloat64}, {Name: "any"}, {Name: "opt", Type: TypeString, Optional: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	fS = iota
	fB
	fI
	fF
	fAny
	fOpt
)

func TestPartNormalises(t *testing.T) {
	c := partsCompiled(t)
	for _, tc := range []struct {
		name  string
		field int
		in    any
		want  any
	}{
		{"string", fS, "x", "x"},
		{"bool", fB, false, false},
		{"int for int64", fI, 5, int64(5)},
		{"int32 for int64", fI, int32(-5), int64(-5)},
		{"int64", fI, int64(1) << 60, int64(1) << 60},
		{"integral float for int64", fI, 7.0, int64(7)},
		{"negative integral float for int64", fI, -3.0, int64(-3)},
		{"2^53 float for int64", fI, float64(1 << 53), int64(1 << 53)},
		{"-2^53 float for int64", fI, -float64(1 << 53), int64(-(1 << 53))},
		{"-0 for int64", fI, negZero, int64(0)},
		{"int for float64", fF, 5, 5.0},
		{"int64 for float64", fF, int64(-9), -9.0},
		{"int32 for float64", fF, int32(2), 2.0},
		{"float64", fF, 0.5, 0.5},
		{"untyped int", fAny, 3, int64(3)},
		{"untyped float stays float", fAny, 3.0, 3.0},
		{"untyped string", fAny, "s", "s"},
		{"optional empty", fOpt, "", ""},
	} {
		got, err := c.Part(tc.field, tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		// cmp tells int64(5) from float64(5).
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestPartNegativeZeroBecomesZero(t *testing.T) {
	c := partsCompiled(t)
	for _, f := range []int{fF, fAny} {
		got, err := c.Part(f, negZero)
		if err != nil {
			t.Fatal(err)
		}
		x, ok := got.(float64)
		if !ok || x != 0 || math.Signbit(x) {
			t.Errorf("field %d: -0 normalised to %#v (signbit %v)", f, got, math.Signbit(x))
		}
	}
	got, err := Normalise(negZero)
	if err != nil || math.Signbit(got.(float64)) {
		t.Errorf("Normalise(-0) = %v, %v", got, err)
	}
}

func TestPartRejects(t *testing.T) {
	c := partsCompiled(t)
	for _, tc := range []struct {
		name  string
		field int
		in    any
		want  string
	}{
		{"non-integral float for int64", fI, 1.5, `key field "i" is an int64; 1.5 is not a whole number`},
		{"float above 2^53 for int64", fI, float64(1<<53 + 2), "beyond ±2^53"},
		{"float below -2^53 for int64", fI, -float64(1<<53 + 2), "beyond ±2^53"},
		{"huge float for int64", fI, 1e300, "beyond ±2^53"},
		{"int64 above 2^53 for float64", fF, int64(1<<53 + 1), "exactly only within ±2^53"},
		{"empty required string", fS, "", `key field "s" is empty`},
		{"empty untyped", fAny, "", `key field "any" is empty`},
		{"string for int64", fI, "5", `key field "i" is a int64, not a string (5)`},
		{"int for string", fS, 1, `key field "s" is a string, not a int64`},
		{"int for bool", fB, 1, `key field "b" is a bool, not a int64`},
		{"bool for float64", fF, true, `key field "f" is a float64, not a bool`},
		{"string for float64", fF, "1.5", `is a float64, not a string`},
		{"NaN", fF, math.NaN(), "NaN is not a storable number"},
		{"+Inf", fF, math.Inf(1), "+Inf is not a storable number"},
		{"-Inf", fAny, math.Inf(-1), "-Inf is not a storable number"},
		{"nil", fAny, nil, `key field "any": missing (nil)`},
		{"uint", fAny, uint(1), "unsupported type uint"},
		{"float32", fF, float32(1), "unsupported type float32"},
		{"bytes", fAny, []byte("x"), "unsupported type []uint8"},
		{"invalid UTF-8", fS, "a\xffb", `key field "s": not valid UTF-8`},
		{"invalid UTF-8 optional", fOpt, "\xc3", "not valid UTF-8"},
	} {
		got, err := c.Part(tc.field, tc.in)
		if got != nil || !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, %v; want ErrInvalidKey containing %q", tc.name, got, err, tc.want)
		}
	}
}

func TestBound(t *testing.T) {
	c := partsCompiled(t)
	for _, f := range []int{fS, fAny, fOpt} {
		if got, err := c.Bound(f, ""); err != nil || got != "" {
			t.Errorf("Bound(%d, \"\") = %v, %v; an empty bound is valid", f, got, err)
		}
	}
	if got, err := c.Bound(fF, 4); err != nil || got != 4.0 {
		t.Errorf("Bound(float field, 4) = %#v, %v", got, err)
	}
	if got, err := c.Bound(fI, 4.0); err != nil || got != int64(4) {
		t.Errorf("Bound(int64 field, 4.0) = %#v, %v", got, err)
	}
	for _, tc := range []struct {
		field int
		in    any
	}{{fS, 1}, {fI, 2.5}, {fF, math.NaN()}, {fAny, nil}, {fS, "\xff"}} {
		if _, err := c.Bound(tc.field, tc.in); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Bound(%d, %#v) = %v; want ErrInvalidKey", tc.field, tc.in, err)
		}
	}
}

func TestValues(t *testing.T) {
	c := partsCompiled(t)
	in := []any{"x", true, 3.0, 4, int32(5), ""}
	got, err := c.Values(in)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{"x", true, int64(3), 4.0, int64(5), ""}, got); diff != "" {
		t.Errorf("Values (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"x", true, 3.0, 4, int32(5), ""}, in); diff != "" {
		t.Errorf("Values changed its argument (-want +got):\n%s", diff)
	}
	_, err = c.Values([]any{"x", true})
	if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), "2 key parts given, d has 6 (s, b, i, f, any, opt)") {
		t.Errorf("short key: %v", err)
	}
	_, err = c.Values([]any{"x", true, 1, 1.0, 1, "", "extra"})
	if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), "7 key parts given") {
		t.Errorf("long key: %v", err)
	}
	_, err = c.Values([]any{"x", true, 1.5, 1.0, 1, ""})
	if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), `key field "i"`) {
		t.Errorf("bad part: %v", err)
	}
}

func TestTypeOf(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want KeyType
	}{{"", TypeString}, {true, TypeBool}, {int64(1), TypeInt64}, {1.0, TypeFloat64}, {1, ""}, {nil, ""}} {
		if got := typeOf(tc.v); got != tc.want {
			t.Errorf("typeOf(%#v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestKeyIndex(t *testing.T) {
	c := partsCompiled(t)
	for i, n := range []string{"s", "b", "i", "f", "any", "opt"} {
		if got := c.KeyIndex(n); got != i {
			t.Errorf("KeyIndex(%q) = %d, want %d", n, got, i)
		}
	}
	for _, n := range []string{"", "S", "payload", "when"} {
		if got := c.KeyIndex(n); got != -1 {
			t.Errorf("KeyIndex(%q) = %d, want -1", n, got)
		}
	}
	if got := c.KeyNames(); got != "s, b, i, f, any, opt" {
		t.Errorf("KeyNames = %q", got)
	}
}

func TestRedisKey(t *testing.T) {
	three := &Schema{Domain: "d", Collection: "c", RedisPrefix: "p",
		Key: []KeyField{{Name: "a"}, {Name: "b"}, {Name: "c"}}}
	ordered := *three
	ordered.RedisOrder = []string{"c", "a", "b"}
	words := &Schema{Domain: "d", Collection: "c", RedisPrefix: "p",
		Key: []KeyField{{Name: "mode", TrueWord: "backtest", FalseWord: "live"}, {Name: "half", TrueWord: "yes"}, {Name: "plain"}}}
	num := &Schema{Domain: "d", Collection: "c", RedisPrefix: "candle_cache", Key: []KeyField{{Name: "x"}}}
	for _, tc := range []struct {
		name string
		s    *Schema
		ns   string
		vals []any
		want string
	}{
		{"index order", three, "", []any{"A", "B", "C"}, "p:A:B:C"},
		{"redis order", &ordered, "", []any{"A", "B", "C"}, "p:C:A:B"},
		{"namespace", &ordered, "ns:", []any{"A", "B", "C"}, "ns:p:C:A:B"},
		{"namespace is concatenated", three, "x", []any{"A", "B", "C"}, "xp:A:B:C"},
		{"empty parts", three, "", []any{"", "B", ""}, "p::B:"},
		{"words true", words, "", []any{true, true, true}, "p:backtest:yes:true"},
		{"words false", words, "", []any{false, false, false}, "p:live:false:false"},
		{"escaping", three, "", []any{"a:b", "50%", "%3A"}, "p:a%3Ab:50%25:%253A"},
		{"mixed types", three, "", []any{int64(-7), 1.5, true}, "p:-7:1.5:true"},
		{"max int64", num, "", []any{int64(math.MaxInt64)}, "candle_cache:9223372036854775807"},
		{"integral float", num, "", []any{100.0}, "candle_cache:100"},
		{"zero", num, "", []any{0.0}, "candle_cache:0"},
		{"half", num, "", []any{0.5}, "candle_cache:0.5"},
		{"negative fraction", num, "", []any{-0.25}, "candle_cache:-0.25"},
		{"millis", num, "", []any{1700000040000.0}, "candle_cache:1700000040000"},
		{"below 1e21 in full", num, "", []any{1e20}, "candle_cache:100000000000000000000"},
		{"largest float below 1e21", num, "", []any{math.Nextafter(1e21, 0)}, "candle_cache:999999999999999900000"},
		{"1e21 in exponent form", num, "", []any{1e21}, "candle_cache:1e+21"},
		{"-1e21 in exponent form", num, "", []any{-1e21}, "candle_cache:-1e+21"},
		{"1.5e21", num, "", []any{1.5e21}, "candle_cache:1.5e+21"},
		{"small fraction", num, "", []any{0.001}, "candle_cache:0.001"},
	} {
		c, err := Compile(tc.s)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.RedisKey(tc.ns, tc.vals); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// RedisKey promises upstream's (JavaScript's) spelling of every key without
// ':' or '%'; JavaScript prints non-integral numbers from 1e-7 to 1e21 in
// plain decimal and exponents without zero padding.
func TestRedisKeyNonIntegralFloatsAsJavaScript(t *testing.T) {
	c, err := Compile(&Schema{Domain: "d", Collection: "c", RedisPrefix: "p", Key: []KeyField{{Name: "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{1234567.5, "p:1234567.5"},
		{0.00001, "p:0.00001"},
		{0.000001, "p:0.000001"},
		{1.5e-7, "p:1.5e-7"},
		{1.5e21, "p:1.5e+21"},
	} {
		if got := c.RedisKey("", []any{tc.v}); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestCanon(t *testing.T) {
	big := int64(1<<53 + 1) // float64(big) rounds to 2^53
	for _, tc := range []struct {
		name string
		a, b []any
		same bool
	}{
		{"string 1 and number 1", []any{"1"}, []any{int64(1)}, false},
		{"string 1 and float 1", []any{"1"}, []any{1.0}, false},
		{"string true and bool", []any{"true"}, []any{true}, false},
		{"bool and 1", []any{true}, []any{int64(1)}, false},
		{"true and false", []any{true}, []any{false}, false},
		{"int64 1 and float 1", []any{int64(1)}, []any{1.0}, true},
		{"-0 and 0", []any{negZero}, []any{0.0}, true},
		{"-0 and int64 0", []any{negZero}, []any{int64(0)}, true},
		{"1 and 1.5", []any{int64(1)}, []any{1.5}, false},
		{"2^53 int and float", []any{int64(1 << 53)}, []any{float64(1 << 53)}, true},
		{"2^53+2 int and float", []any{int64(1<<53 + 2)}, []any{float64(1<<53 + 2)}, true},
		{"2^53+1 int and its float rounding", []any{big}, []any{float64(big)}, false},
		{"2^53+1 and 2^53 ints", []any{big}, []any{int64(1 << 53)}, false},
		{"max int64 and 2^63 float", []any{int64(math.MaxInt64)}, []any{float64(math.MaxInt64)}, false},
		{"separator inside strings", []any{"a|", "b"}, []any{"a", "|b"}, false},
		{"length inside strings", []any{"s1:a"}, []any{"s1:", "a"}, false},
		{"order", []any{"a", "b"}, []any{"b", "a"}, false},
		{"empty string and no part", []any{""}, []any{}, false},
		{"equal strings", []any{"a:b", true}, []any{"a:b", true}, true},
	} {
		ca, cb := Canon(tc.a), Canon(tc.b)
		if (ca == cb) != tc.same {
			t.Errorf("%s: Canon(%#v) = %q, Canon(%#v) = %q; same = %v, want %v", tc.name, tc.a, ca, tc.b, cb, ca == cb, tc.same)
		}
	}
}

// The server compares int64 -2^63 and the double -2^63 as one number.
func TestCanonMinInt64(t *testing.T) {
	if a, b := Canon([]any{int64(math.MinInt64)}), Canon([]any{float64(math.MinInt64)}); a != b {
		t.Fatalf("%q != %q", a, b)
	}
}

func TestKeyString(t *testing.T) {
	for _, tc := range []struct {
		vals []any
		want string
	}{
		{nil, ""},
		{[]any{"a"}, "a"},
		{[]any{"a:b", "50%", true, false, int64(-3), 1.5, 100.0, 1e21, ""}, "a:b/50%/true/false/-3/1.5/100/1e+21/"},
	} {
		if got := KeyString(tc.vals); got != tc.want {
			t.Errorf("KeyString(%#v) = %q, want %q", tc.vals, got, tc.want)
		}
	}
}

func TestEscapeKeyPart(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"BTCUSDT", "BTCUSDT"},
		{"BTC-USDT_perp.2024 ünï", "BTC-USDT_perp.2024 ünï"},
		{":", "%3A"},
		{"%", "%25"},
		{"%3A", "%253A"},
		{"a:b:c", "a%3Ab%3Ac"},
		{"ü:é%", "ü%3Aé%25"},
		{"%%::", "%25%25%3A%3A"},
	} {
		var b strings.Builder
		b.WriteString("pre|")
		EscapeKeyPart(&b, tc.in)
		if got := b.String(); got != "pre|"+tc.want {
			t.Errorf("EscapeKeyPart(%q) wrote %q, want %q", tc.in, got, "pre|"+tc.want)
		}
	}
}

func TestIntervals(t *testing.T) {
	want := map[string]time.Duration{
		"1m": time.Minute, "3m": 3 * time.Minute, "5m": 5 * time.Minute, "15m": 15 * time.Minute,
		"30m": 30 * time.Minute, "1h": time.Hour, "2h": 2 * time.Hour, "4h": 4 * time.Hour,
		"6h": 6 * time.Hour, "8h": 8 * time.Hour, "1d": 24 * time.Hour,
	}
	names := Intervals()
	if len(names) != len(want) {
		t.Fatalf("Intervals() = %v, want %d names", names, len(want))
	}
	var prev time.Duration
	for _, n := range names {
		step, ok := IntervalStep(n)
		if !ok || step != want[n] {
			t.Errorf("IntervalStep(%q) = %v, %v; want %v, true", n, step, ok, want[n])
		}
		if step <= prev {
			t.Errorf("%q (%v) is not longer than the interval before it (%v)", n, step, prev)
		}
		prev = step
	}
	for _, n := range []string{"", "1M", "2m", "1w", "60s", " 1m", "1m ", "24h", "1D"} {
		if step, ok := IntervalStep(n); ok || step != 0 {
			t.Errorf("IntervalStep(%q) = %v, %v; want 0, false", n, step, ok)
		}
	}
}

// The shard key rules MongoDB imposes on a collection with a unique
// compound key: ranged, and a prefix of the key in order.
func TestShardCheck(t *testing.T) {
	keys := []string{"exchangeName", "symbol", "interval", "timestamp"}
	for _, tc := range []struct {
		k    ShardKey
		want string // a part of the reason, "" for accepted
	}{
		{ShardKey{Fields: []string{"exchangeName"}}, ""},
		{ShardKey{Fields: []string{"exchangeName", "symbol", "interval"}}, ""},
		{ShardKey{Fields: keys}, ""},
		{ShardKey{}, "needs fields"},
		{ShardKey{Fields: []string{"symbol"}}, "prefix of the key"},
		{ShardKey{Fields: []string{"exchangeName", "interval"}}, "field 2 is interval, not symbol"},
		{ShardKey{Fields: []string{"exchangeName"}, Hashed: true}, "ranged"},
		{ShardKey{Fields: append(slices.Clone(keys), "x")}, "more fields than the key"},
	} {
		got := ShardCheck(tc.k, keys)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("ShardCheck(%+v) = %q; want %q", tc.k, got, tc.want)
		}
	}
	s := &Schema{Domain: "d", Collection: "c", RedisPrefix: "p", Key: []KeyField{{Name: "a", Type: TypeString}, {Name: "b", Type: TypeString}},
		Shard: &ShardKey{Fields: []string{"b"}}}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "prefix") {
		t.Fatalf("Validate = %v; want the prefix rule", err)
	}
}

// jsNumber spells every float64 as JavaScript's String(x) does, NaN and
// the infinities included (a prefix holding one reached it through an
// error message and panicked).
func TestJSNumber(t *testing.T) {
	for _, c := range []struct {
		x    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1.5, "1.5"}, {1e21, "1e+21"}, {1.5e-7, "1.5e-7"},
		{123456789, "123456789"}, {math.NaN(), "NaN"}, {math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"},
	} {
		if got := jsNumber(c.x); got != c.want {
			t.Errorf("jsNumber(%v) = %q, want %q", c.x, got, c.want)
		}
	}
}

func TestHistoryValidationAndIndexes(t *testing.T) {
	for _, c := range []struct {
		keep time.Duration
		ok   bool
	}{{0, true}, {90 * 24 * time.Hour, true}, {MinHistoryKeep, true}, {time.Minute, false}, {-time.Hour, false}, {time.Hour + time.Millisecond, false}} {
		s := validSchema()
		s.History = &History{Keep: c.keep}
		if err := s.Validate(); (err == nil) != c.ok {
			t.Errorf("Keep %s: %v, want ok=%v", c.keep, err, c.ok)
		}
	}
	s := validSchema()
	if s.HistoryCollection() != "" || s.HistoryIndexes() != nil {
		t.Fatal("a domain without history has a history collection")
	}
	s.History = &History{Keep: 48 * time.Hour}
	ix := s.HistoryIndexes()
	if s.HistoryCollection() != s.Collection+"-history" || len(ix) != 2 || !ix[0].Unique || ix[0].Keys[len(ix[0].Keys)-1] != (IndexKey{Field: FieldVersion, Desc: true}) || ix[1].ExpireAfter != 48*time.Hour {
		t.Errorf("history of %s: %s %+v", s.Collection, s.HistoryCollection(), ix)
	}
}
