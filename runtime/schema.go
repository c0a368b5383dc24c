package runtime

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/schema"
)

// The domain description is package schema's (shared with the generator,
// which links no driver); these names keep the runtime's API whole.
type (
	// Schema describes one domain as data (see schema.Schema).
	Schema = schema.Schema
	// KeyField is one part of a domain's unique key.
	KeyField = schema.KeyField
	// KeyType is the type of a key field's values.
	KeyType = schema.KeyType
	// IndexKey is one field of an index.
	IndexKey = schema.IndexKey
	// Index is an index definition with an explicit, stable name.
	Index = schema.Index
	// CacheMode is what Redis holds for a domain (see schema.CacheMode).
	CacheMode = schema.CacheMode
	// ShardKey is a domain's shard key (see schema.ShardKey).
	ShardKey = schema.ShardKey
	// History is a domain's version history (see schema.History).
	History = schema.History
)

// The cache modes.
const (
	CacheIdentity = schema.CacheIdentity
	CacheNone     = schema.CacheNone
	CacheValue    = schema.CacheValue
	CacheSeries   = schema.CacheSeries
	CacheLocal    = schema.CacheLocal
)

// Document field names shared by every domain.
const (
	FieldID          = schema.FieldID
	FieldCreateDate  = schema.FieldCreateDate
	FieldUpdatedDate = schema.FieldUpdatedDate
	FieldWhen        = schema.FieldWhen
	FieldRemoved     = schema.FieldRemoved
	FieldVersion     = schema.FieldVersion
	FieldRecorded    = schema.FieldRecorded
	FieldRow         = schema.FieldRow
)

// The key types.
const (
	TypeString  = schema.TypeString
	TypeBool    = schema.TypeBool
	TypeInt64   = schema.TypeInt64
	TypeFloat64 = schema.TypeFloat64
)

// compiled is a validated schema plus the driver-side forms of its keys.
type compiled struct{ *schema.Compiled }

func compile(s *Schema) (*compiled, error) {
	c, err := schema.Compile(s)
	if err != nil {
		return nil, err
	}
	return &compiled{c}, nil
}

// filter is the compound filter equal to the unique index.
func (c *compiled) filter(vals []any) bson.D {
	f := make(bson.D, len(vals))
	for i, v := range vals {
		f[i] = bson.E{Key: c.Key[i].Name, Value: v}
	}
	return f
}
