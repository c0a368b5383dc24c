package runtime

import (
	"fmt"
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Keys is a domain's compiled key rules, built once: generated key types
// call it from Validate, RedisKey and Filter, so no call rebuilds or
// re-checks the schema.
type Keys struct{ c *compiled }

// CompileKeys validates s and returns its key rules (ErrSchema).
func CompileKeys(s *Schema) (*Keys, error) {
	c, err := compile(s)
	if err != nil {
		return nil, err
	}
	return &Keys{c: c}, nil
}

// MustCompileKeys is CompileKeys for a generated package-level variable: a
// generated schema is valid by construction, so an error is a bug and
// panics.
func MustCompileKeys(s *Schema) *Keys {
	k, err := CompileKeys(s)
	if err != nil {
		panic(err)
	}
	return k
}

// Schema returns the schema the rules were compiled from.
func (ks *Keys) Schema() *Schema { return ks.c.Schema }

// Values returns k's values checked and normalised (see schema.Compiled.Values).
func (ks *Keys) Values(k Key) ([]any, error) { return ks.values("Validate", k) }

// values checks k, naming op in its error.
func (ks *Keys) values(op string, k Key) ([]any, error) {
	vals, err := ks.c.Values(k.KeyValues())
	if err != nil {
		return nil, &OpError{Op: op, Domain: ks.c.Domain, Err: err}
	}
	return vals, nil
}

// Validate reports an empty or malformed key part (ErrInvalidKey).
func (ks *Keys) Validate(k Key) error {
	_, err := ks.values("Validate", k)
	return err
}

// RedisKey returns the Redis identity key of k, with prefix in front.
func (ks *Keys) RedisKey(prefix string, k Key) (string, error) {
	vals, err := ks.values("RedisKey", k)
	if err != nil {
		return "", err
	}
	return ks.c.RedisKey(prefix, vals), nil
}

// Filter returns the compound filter of k, equal to the unique index.
func (ks *Keys) Filter(k Key) (bson.D, error) {
	vals, err := ks.values("Filter", k)
	if err != nil {
		return nil, err
	}
	return ks.c.filter(vals), nil
}

// KeyDecoder is implemented, on the pointer, by generated key types: it reads
// the key fields of a stored document without reflection. Keys that do not
// implement it are decoded with bson.Unmarshal.
type KeyDecoder interface {
	DecodeKey(raw bson.Raw) error
}

// KeyString reads a string key field of a stored document.
func KeyString(raw bson.Raw, field string) (string, error) {
	v, err := raw.LookupErr(field)
	if err != nil {
		return "", fmt.Errorf("key field %q: %w", field, err)
	}
	s, ok := v.StringValueOK()
	if !ok {
		return "", fmt.Errorf("key field %q is a BSON %s, not a string", field, v.Type)
	}
	return s, nil
}

// KeyBool reads a bool key field of a stored document.
func KeyBool(raw bson.Raw, field string) (bool, error) {
	v, err := raw.LookupErr(field)
	if err != nil {
		return false, fmt.Errorf("key field %q: %w", field, err)
	}
	b, ok := v.BooleanOK()
	if !ok {
		return false, fmt.Errorf("key field %q is a BSON %s, not a bool", field, v.Type)
	}
	return b, nil
}

// KeyFloat64 reads a numeric key field (double, int32 or int64) as float64.
func KeyFloat64(raw bson.Raw, field string) (float64, error) {
	v, err := raw.LookupErr(field)
	if err != nil {
		return 0, fmt.Errorf("key field %q: %w", field, err)
	}
	switch v.Type {
	case bson.TypeDouble:
		return v.Double(), nil
	case bson.TypeInt32:
		return float64(v.Int32()), nil
	case bson.TypeInt64:
		return float64(v.Int64()), nil
	}
	return 0, fmt.Errorf("key field %q is a BSON %s, not a number", field, v.Type)
}

// KeyInt64 reads a numeric key field (int64, int32, or an integral double)
// as int64.
func KeyInt64(raw bson.Raw, field string) (int64, error) {
	v, err := raw.LookupErr(field)
	if err != nil {
		return 0, fmt.Errorf("key field %q: %w", field, err)
	}
	switch v.Type {
	case bson.TypeInt64:
		return v.Int64(), nil
	case bson.TypeInt32:
		return int64(v.Int32()), nil
	case bson.TypeDouble:
		// In range first: converting an out-of-range double is
		// implementation-defined in Go.
		if d := v.Double(); d >= -(1<<63) && d < 1<<63 && d == math.Trunc(d) {
			return int64(d), nil
		}
	}
	return 0, fmt.Errorf("key field %q is a BSON %s, not a whole number", field, v.Type)
}
