package runtime

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// MarshalTuple encodes values as a BSON array: the wire form of upstream's
// [key, value] pairs.
func MarshalTuple(values ...any) (byte, []byte, error) {
	t, data, err := bson.MarshalValue(bson.A(values))
	return byte(t), data, err
}

// UnmarshalTuple decodes a BSON array into ptrs in order, or a document by
// names (the object form of the same tuple). Null leaves ptrs unchanged.
func UnmarshalTuple(typ byte, data []byte, names []string, ptrs ...any) error {
	switch bson.Type(typ) {
	case bson.TypeArray:
		vals, err := bson.RawArray(data).Values()
		if err != nil {
			return err
		}
		if len(vals) != len(ptrs) {
			return fmt.Errorf("tuple: %d elements stored, %d expected", len(vals), len(ptrs))
		}
		for i, v := range vals {
			if err := v.Unmarshal(ptrs[i]); err != nil {
				return fmt.Errorf("tuple element %d (%s): %w", i, names[i], err)
			}
		}
		return nil
	case bson.TypeEmbeddedDocument:
		doc := bson.Raw(data)
		for i, n := range names {
			v, err := doc.LookupErr(n)
			if err != nil {
				continue
			}
			if err := v.Unmarshal(ptrs[i]); err != nil {
				return fmt.Errorf("tuple field %s: %w", n, err)
			}
		}
		return nil
	case bson.TypeNull, bson.TypeUndefined:
		return nil
	}
	return fmt.Errorf("tuple: cannot decode BSON %s; want an array or a document", bson.Type(typ))
}
