package runtime

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Document field names shared by every domain.
const (
	FieldID          = "_id"
	FieldCreateDate  = "createDate"
	FieldUpdatedDate = "updatedDate"
	FieldWhen        = "when"
	FieldRemoved     = "removed"
)

// KeyType is the type of a key field's values.
type KeyType string

// The key types. A key value is given as the Go type of the same name (int
// and int32 are taken as int64; an int for a float64 field, or an integral
// float64 for an int64 field, is converted).
const (
	TypeString  KeyType = "string"
	TypeBool    KeyType = "bool"
	TypeInt64   KeyType = "int64"
	TypeFloat64 KeyType = "float64"
)

// KeyField is one part of a domain's unique key.
type KeyField struct {
	// Name is the BSON field name.
	Name string
	// Type is the type of the field's values. Empty accepts any key type
	// (string, bool, int64 or float64) without checking it.
	Type KeyType
	// Optional allows the empty string (frameName in live mode). Other empty
	// parts are rejected with ErrInvalidKey.
	Optional bool
	// TrueWord and FalseWord spell a bool part in the Redis key ("backtest"
	// and "live" for upstream's backtest flag). "true"/"false" when empty.
	TrueWord, FalseWord string
}

// IndexKey is one field of an index.
type IndexKey struct {
	Field string
	Desc  bool
}

// Index is an index definition with an explicit, stable name.
type Index struct {
	Name   string
	Keys   []IndexKey
	Unique bool
}

// IndexName returns MongoDB's default name for keys ("a_1_b_-1"), the name
// Mongoose and the mongo shell give the same index, so that both engines
// create and recognise one index.
func IndexName(keys []IndexKey) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('_')
		}
		b.WriteString(k.Field)
		if k.Desc {
			b.WriteString("_-1")
		} else {
			b.WriteString("_1")
		}
	}
	return b.String()
}

// Schema describes one domain as data: the generic repository needs nothing
// else to store it.
type Schema struct {
	// Domain is the short name used in errors and statistics ("signal").
	Domain string
	// Collection is the MongoDB collection ("signal-items").
	Collection string
	// Key lists the key fields in unique-index order.
	Key []KeyField
	// RedisPrefix starts every identity key ("signal_cache").
	RedisPrefix string
	// RedisOrder lists the key field names in the order they appear in the
	// Redis key; nil means index order.
	RedisOrder []string
	// HasWhen: the domain stores the simulation time of each write.
	HasWhen bool
	// HasRemoved: the domain soft-deletes.
	HasRemoved bool
	// PayloadRemoved: the payload (a document) carries a "removed" flag of
	// its own, as upstream's measure, interval and memory entries do; Remove
	// sets it along with the document's.
	PayloadRemoved bool
	// Payload is the field that holds the payload; empty means the payload's
	// fields are stored at the top level of the document (candles).
	Payload string
	// Indexes are extra non-unique indexes beyond the ones every domain gets.
	Indexes []Index
}

// compiled is a validated Schema with lookups precomputed.
type compiled struct {
	*Schema
	redisOrder []int
	keyIndex   map[string]int
}

func compile(s *Schema) (*compiled, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c := &compiled{Schema: s, keyIndex: make(map[string]int, len(s.Key))}
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

// Validate reports the first inconsistency of the description.
func (s *Schema) Validate() error {
	bad := func(format string, args ...any) error {
		return errorf(ErrSchema, "domain %q: "+format, append([]any{s.Domain}, args...)...)
	}
	if s.Domain == "" {
		return errorf(ErrSchema, "a schema has no Domain name")
	}
	if s.Collection == "" {
		return bad("no Collection")
	}
	if s.RedisPrefix == "" || strings.Contains(s.RedisPrefix, ":") {
		return bad("RedisPrefix %q must be non-empty and contain no ':'", s.RedisPrefix)
	}
	if len(s.Key) == 0 {
		return bad("no Key fields")
	}
	seen := map[string]bool{}
	for _, k := range s.Key {
		if k.Name == "" || strings.HasPrefix(k.Name, "$") || strings.Contains(k.Name, ".") {
			return bad("key field name %q is not a plain BSON field name", k.Name)
		}
		switch k.Name {
		case FieldID, FieldCreateDate, FieldUpdatedDate, FieldWhen, FieldRemoved:
			return bad("key field %q is a reserved field name", k.Name)
		}
		if seen[k.Name] {
			return bad("key field %q listed twice", k.Name)
		}
		switch k.Type {
		case "", TypeString, TypeBool, TypeInt64, TypeFloat64:
		default:
			return bad("key field %q has type %q; use string, bool, int64 or float64", k.Name, k.Type)
		}
		seen[k.Name] = true
	}
	if s.PayloadRemoved && (!s.HasRemoved || s.Payload == "") {
		return bad("PayloadRemoved needs HasRemoved and a Payload field")
	}
	if s.Payload != "" && (seen[s.Payload] || s.Payload == FieldID || s.Payload == FieldWhen || s.Payload == FieldRemoved ||
		s.Payload == FieldCreateDate || s.Payload == FieldUpdatedDate) {
		return bad("payload field %q collides with a key or reserved field", s.Payload)
	}
	if s.RedisOrder != nil {
		if len(s.RedisOrder) != len(s.Key) {
			return bad("RedisOrder has %d fields, the key has %d: list every key field exactly once", len(s.RedisOrder), len(s.Key))
		}
		inOrder := map[string]bool{}
		for _, n := range s.RedisOrder {
			if !seen[n] || inOrder[n] {
				return bad("RedisOrder field %q is not a key field or is listed twice", n)
			}
			inOrder[n] = true
		}
	}
	for _, ix := range s.Indexes {
		if ix.Name == "" || len(ix.Keys) == 0 {
			return bad("an extra index needs a Name and Keys")
		}
	}
	return nil
}

// Indexes returns every index the domain needs, in a stable order: the
// unique compound key, one per key field, when and removed where present,
// then the extra indexes.
func (s *Schema) AllIndexes() []Index {
	keys := make([]IndexKey, len(s.Key))
	for i, k := range s.Key {
		keys[i] = IndexKey{Field: k.Name}
	}
	out := []Index{{Name: IndexName(keys), Keys: keys, Unique: true}}
	add := func(field string) {
		k := []IndexKey{{Field: field}}
		out = append(out, Index{Name: IndexName(k), Keys: k})
	}
	if len(s.Key) > 1 {
		for _, k := range s.Key {
			add(k.Name)
		}
	}
	if s.HasWhen {
		add(FieldWhen)
	}
	if s.HasRemoved {
		add(FieldRemoved)
	}
	return append(out, s.Indexes...)
}

// keyValues validates a key's values against the schema and normalises them
// to string, bool, int64 or float64.
func (c *compiled) keyValues(vals []any) ([]any, error) {
	if len(vals) != len(c.Key) {
		return nil, errorf(ErrInvalidKey, "%d key parts given, %s has %d (%s)", len(vals), c.Domain, len(c.Key), c.keyNames())
	}
	out := make([]any, len(vals))
	for i, v := range vals {
		nv, err := c.keyPart(i, v)
		if err != nil {
			return nil, err
		}
		out[i] = nv
	}
	return out, nil
}

// keyPart validates and normalises the value of key field i (ErrInvalidKey).
func (c *compiled) keyPart(i int, v any) (any, error) {
	f := c.Key[i]
	nv, err := normalise(v)
	if err != nil {
		return nil, errorf(ErrInvalidKey, "key field %q: %v", f.Name, err)
	}
	switch x := nv.(type) {
	case string:
		if x == "" && !f.Optional {
			return nil, errorf(ErrInvalidKey, "key field %q is empty; every part of a %s key except optional ones must be set", f.Name, c.Domain)
		}
	case int64:
		if f.Type == TypeFloat64 {
			nv = float64(x)
		}
	case float64:
		if f.Type == TypeInt64 {
			if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
				return nil, errorf(ErrInvalidKey, "key field %q is an int64; %v is not a whole number", f.Name, x)
			}
			nv = int64(x)
		}
	}
	if f.Type != "" && keyTypeOf(nv) != f.Type {
		return nil, errorf(ErrInvalidKey, "key field %q is a %s, not a %s (%v)", f.Name, f.Type, keyTypeOf(nv), v)
	}
	return nv, nil
}

func keyTypeOf(v any) KeyType {
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

func (c *compiled) keyNames() string {
	names := make([]string, len(c.Key))
	for i, k := range c.Key {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}

func normalise(v any) (any, error) {
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
			// -0 equals 0 to MongoDB (the unique index and every filter),
			// so it is the same key and must be spelled the same.
			return 0.0, nil
		}
		return x, nil
	case nil:
		return nil, fmt.Errorf("missing (nil)")
	default:
		return nil, fmt.Errorf("unsupported type %T (use string, bool, int64 or float64)", v)
	}
}

// filter is the compound filter equal to the unique index.
func (c *compiled) filter(vals []any) bson.D {
	f := make(bson.D, len(vals))
	for i, v := range vals {
		f[i] = bson.E{Key: c.Key[i].Name, Value: v}
	}
	return f
}

// redisKey builds "prefix:part:part..." in RedisOrder. Each part escapes
// '%' as %25 and ':' as %3A, so distinct keys never share a Redis key, while
// keys without those characters are spelled exactly as upstream spells them.
func (c *compiled) redisKey(ns string, vals []any) string {
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

// canonKey is the identity of a key as the server's equality sees it: the
// string "1" and the number 1 differ (their Redis spellings do not), the
// numbers 1, 1.0 and int64(1) are one key, and so are -0 and 0. Batches
// match keys, and documents to keys, by it.
func canonKey(vals []any) string {
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
			if f := float64(x); int64(f) == x && math.Abs(f) < 1<<63 {
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

// keyString renders key values for error messages ("a/b/c"), numbers and
// bools as in the Redis key.
func keyString(vals []any) string {
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
		// As JavaScript prints numbers: integral values without a fraction.
		if x == math.Trunc(x) && math.Abs(x) < 1e21 {
			b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
		} else {
			b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		}
	}
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
