package runtime

import (
	"encoding/binary"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Shape records, for a payload read from a stored document, which of its
// type's fields the document lacked and which it held as null. Generated
// payload types keep one (their Shape field) and restore it when the value
// is written back: backtest-kit tells an absent field from a null one, and
// both from a zero (`x ?? fallback`). A field the program has since set to
// a non-empty value is written as set; one set to an empty value (0, "",
// false, nil) cannot be told from one left alone, and keeps its shape.
type Shape struct {
	Absent []string
	Null   []string
}

// ShapeOf reads the shape of an encoded document: the names among known
// (the type's fields that are always written) it lacks, and the names among
// nullable (the fields whose null the type would not write back by itself)
// it holds as null.
//
// It reads the document once (a generated payload decodes through it on
// every read, so a lookup per name, each a scan, would dominate a read the
// in-process tier answers).
func ShapeOf(doc []byte, known, nullable []string) Shape {
	if len(known) > 64 || len(nullable) > 64 {
		return shapeByLookup(doc, known, nullable)
	}
	var seen, null, nseen uint64
	if len(doc) >= 5 {
		rem := bsoncore.Document(doc[4 : len(doc)-1])
		for len(rem) > 0 {
			e, rest, ok := bsoncore.ReadElement(rem)
			if !ok {
				break
			}
			rem = rest
			key := e.KeyBytes()
			for i, name := range known {
				if seen&(1<<i) == 0 && string(key) == name {
					seen |= 1 << i
				}
			}
			for i, name := range nullable {
				if nseen&(1<<i) == 0 && string(key) == name {
					nseen |= 1 << i // the first of duplicate names counts, as in a lookup
					if bson.Type(e[0]) == bson.TypeNull {
						null |= 1 << i
					}
				}
			}
		}
	}
	var s Shape
	for i, name := range known {
		if seen&(1<<i) == 0 {
			s.Absent = append(s.Absent, name)
		}
	}
	for i, name := range nullable {
		if null&(1<<i) != 0 {
			s.Null = append(s.Null, name)
		}
	}
	return s
}

// shapeByLookup is ShapeOf for types of more than 64 fields.
func shapeByLookup(doc []byte, known, nullable []string) Shape {
	raw := bson.Raw(doc)
	var s Shape
	for _, name := range known {
		if _, err := raw.LookupErr(name); err != nil {
			s.Absent = append(s.Absent, name)
		}
	}
	for _, name := range nullable {
		if v, err := raw.LookupErr(name); err == nil && v.Type == bson.TypeNull {
			s.Null = append(s.Null, name)
		}
	}
	return s
}

// IsZero reports a value read from a document with every field present and
// none null, or not read at all: nothing to restore.
func (s Shape) IsZero() bool { return len(s.Absent) == 0 && len(s.Null) == 0 }

// Restore gives the encoded document doc its recorded shape: fields in
// Absent whose value is empty are removed, fields in Null whose value is
// empty (or that the encoding omitted) are written as null.
func (s Shape) Restore(doc []byte) ([]byte, error) {
	elems, err := bson.Raw(doc).Elements()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 4, len(doc)+16*len(s.Null))
	seen := make(map[string]bool, len(s.Null))
	for _, e := range elems {
		name := e.Key()
		switch {
		case slices.Contains(s.Absent, name) && emptyValue(e.Value()):
			continue
		case slices.Contains(s.Null, name):
			seen[name] = true
			if emptyValue(e.Value()) {
				out = appendNull(out, name)
				continue
			}
		}
		out = append(out, e...)
	}
	for _, name := range s.Null {
		if !seen[name] {
			out = appendNull(out, name)
		}
	}
	out = append(out, 0)
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out, nil
}

func appendNull(doc []byte, name string) []byte {
	doc = append(doc, byte(bson.TypeNull))
	doc = append(doc, name...)
	return append(doc, 0)
}

func emptyValue(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeNull, bson.TypeUndefined:
		return true
	case bson.TypeDouble:
		return v.Double() == 0
	case bson.TypeInt32:
		return v.Int32() == 0
	case bson.TypeInt64:
		return v.Int64() == 0
	case bson.TypeString:
		return v.StringValue() == ""
	case bson.TypeBoolean:
		return !v.Boolean()
	}
	return false
}
