package schema

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Compiled is a validated Schema with its lookups precomputed. It is never
// changed after Compile, so one value serves every goroutine.
type Compiled struct {
	*Schema
	redisOrder []int
	keyIndex   map[string]int
}

// Compile validates s and precomputes what key handling needs.
func Compile(s *Schema) (*Compiled, error) {
	if s == nil {
		return nil, Errorf(ErrSchema, "no schema given")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c := &Compiled{Schema: s, keyIndex: make(map[string]int, len(s.Key))}
	for i, k := range s.Key {
		c.keyIndex[k.Name] = i
	}
	if s.RedisOrder == nil {
		for i := range s.Key {
			c.redisOrder = append(c.redisOrder, i)
		}
	} else {
		for _, n := range s.RedisOrder {
			c.redisOrder = append(c.redisOrder, c.keyIndex[n])
		}
	}
	return c, nil
}

// KeyIndex returns the position of a key field, or -1.
func (c *Compiled) KeyIndex(name string) int {
	if i, ok := c.keyIndex[name]; ok {
		return i
	}
	return -1
}

// Values validates a key's values against the schema and normalises them to
// string, bool, int64 or float64 (ErrInvalidKey).
func (c *Compiled) Values(vals []any) ([]any, error) {
	if len(vals) != len(c.Key) {
		return nil, Errorf(ErrInvalidKey, "%d key parts given, %s has %d (%s)", len(vals), c.Domain, len(c.Key), c.KeyNames())
	}
	out := make([]any, len(vals))
	for i, v := range vals {
		nv, err := c.Part(i, v)
		if err != nil {
			return nil, err
		}
		out[i] = nv
	}
	return out, nil
}

// Part validates and normalises the value of key field i (ErrInvalidKey):
// ints become int64, an int given for a float64 field a float64, an
// integral float64 given for an int64 field an int64.
func (c *Compiled) Part(i int, v any) (any, error) { return c.part(i, v, c.Key[i].Optional) }

// Bound is Part for a range bound on key field i: an empty string is a
// valid bound even where the field may not be empty.
func (c *Compiled) Bound(i int, v any) (any, error) { return c.part(i, v, true) }

func (c *Compiled) part(i int, v any, emptyOK bool) (any, error) {
	f := c.Key[i]
	nv, err := Normalise(v)
	if err != nil {
		return nil, Errorf(ErrInvalidKey, "key field %q: %v", f.Name, err)
	}
	switch x := nv.(type) {
	case string:
		if x == "" && !emptyOK {
			return nil, Errorf(ErrInvalidKey, "key field %q is empty; every part of a %s key except optional ones must be set", f.Name, c.Domain)
		}
	case int64:
		if f.Type == TypeFloat64 {
			if x > 1<<53 || x < -(1<<53) {
				return nil, Errorf(ErrInvalidKey, "key field %q is a float64, which holds whole numbers exactly only within ±2^53; %d is outside", f.Name, x)
			}
			nv = float64(x)
		}
	case float64:
		if f.Type == TypeInt64 {
			switch {
			case x != math.Trunc(x):
				return nil, Errorf(ErrInvalidKey, "key field %q is an int64; %v is not a whole number", f.Name, x)
			case math.Abs(x) > 1<<53:
				return nil, Errorf(ErrInvalidKey, "key field %q is an int64; %v is a float64 beyond ±2^53, which may not be the number meant: pass an int64", f.Name, x)
			}
			nv = int64(x)
		}
	}
	if f.Type != "" && typeOf(nv) != f.Type {
		return nil, Errorf(ErrInvalidKey, "key field %q is a %s, not a %s (%v)", f.Name, f.Type, typeOf(nv), v)
	}
	return nv, nil
}

// typeOf returns the key type of a normalised value, or "".
func typeOf(v any) KeyType {
	switch v.(type) {
	case string:
		return TypeString
	case bool:
		return TypeBool
	case int64:
		return TypeInt64
	case float64:
		return TypeFloat64
	}
	return ""
}

// KeyNames lists the key field names, comma-separated, for messages.
func (c *Compiled) KeyNames() string {
	names := make([]string, len(c.Key))
	for i, k := range c.Key {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}

// Normalise converts a key value to string, bool, int64 or float64, and
// rejects what no key may hold: invalid UTF-8, NaN, ±Inf, nil, other types.
// -0 becomes 0, which MongoDB's equality and unique indexes treat as equal.
func Normalise(v any) (any, error) {
	switch x := v.(type) {
	case string:
		if !utf8.ValidString(x) {
			return nil, fmt.Errorf("not valid UTF-8")
		}
		return x, nil
	case bool:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v is not a storable number", x)
		}
		if x == 0 {
			return 0.0, nil
		}
		return x, nil
	case nil:
		return nil, fmt.Errorf("missing (nil)")
	default:
		return nil, fmt.Errorf("unsupported type %T (use string, bool, int64 or float64)", v)
	}
}

// RedisKey builds "ns" + "prefix:part:part..." from normalised values, in
// RedisOrder. Each string part escapes '%' as %25 and ':' as %3A, so
// distinct keys never share a Redis key, while keys without those
// characters are spelled exactly as upstream spells them.
func (c *Compiled) RedisKey(ns string, vals []any) string {
	var b strings.Builder
	b.Grow(len(ns) + len(c.RedisPrefix) + 16*len(vals))
	b.WriteString(ns)
	b.WriteString(c.RedisPrefix)
	for _, i := range c.redisOrder {
		b.WriteByte(':')
		writePart(&b, c.Key[i], vals[i])
	}
	return b.String()
}

// Canon is the identity of normalised key values as the server's equality
// sees it: the string "1" and the number 1 differ (their Redis spellings do
// not), the numbers 1, 1.0 and int64(1) are one key, and so are -0 and 0.
// Batches match keys, and documents to keys, by it.
func Canon(vals []any) string {
	var b strings.Builder
	for _, v := range vals {
		switch x := v.(type) {
		case string:
			b.WriteByte('s')
			b.WriteString(strconv.Itoa(len(x)))
			b.WriteByte(':')
			b.WriteString(x)
		case bool:
			if x {
				b.WriteString("b1")
			} else {
				b.WriteString("b0")
			}
		case int64:
			if f := float64(x); f >= -(1<<63) && f < 1<<63 && int64(f) == x {
				b.WriteByte('n')
				b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
			} else {
				b.WriteByte('i')
				b.WriteString(strconv.FormatInt(x, 10))
			}
		case float64:
			b.WriteByte('n')
			b.WriteString(strconv.FormatFloat(x+0, 'g', -1, 64))
		default:
			fmt.Fprintf(&b, "?%v", x)
		}
		b.WriteByte('|')
	}
	return b.String()
}

// KeyString renders key values for messages ("a/b/c"), numbers and bools as
// in the Redis key.
func KeyString(vals []any) string {
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteByte('/')
		}
		if s, ok := v.(string); ok {
			b.WriteString(s)
		} else {
			writePart(&b, KeyField{}, v)
		}
	}
	return b.String()
}

func writePart(b *strings.Builder, f KeyField, v any) {
	switch x := v.(type) {
	case string:
		EscapeKeyPart(b, x)
	case bool:
		switch {
		case x && f.TrueWord != "":
			b.WriteString(f.TrueWord)
		case !x && f.FalseWord != "":
			b.WriteString(f.FalseWord)
		default:
			b.WriteString(strconv.FormatBool(x))
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(jsNumber(x))
	}
}

// jsNumber spells x as JavaScript's String(x) does (upstream builds its
// Redis keys so): the shortest digits that read back as x, in plain decimal
// from 1e-6 up to 1e21, else as d.ddde±n.
func jsNumber(x float64) string {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	}
	if a := math.Abs(x); a == 0 || (a >= 1e-6 && a < 1e21) {
		return strconv.FormatFloat(x+0, 'f', -1, 64)
	}
	s := strconv.FormatFloat(x, 'e', -1, 64) // 1.5e-07, 1e+21
	i := strings.IndexByte(s, 'e')
	mant, sign, exp := s[:i], s[i+1], strings.TrimLeft(s[i+2:], "0")
	return mant + "e" + string(sign) + exp
}

// EscapeKeyPart writes s with '%' and ':' percent-encoded.
func EscapeKeyPart(b *strings.Builder, s string) {
	if !strings.ContainsAny(s, "%:") {
		b.WriteString(s)
		return
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%':
			b.WriteString("%25")
		case ':':
			b.WriteString("%3A")
		default:
			b.WriteByte(s[i])
		}
	}
}
