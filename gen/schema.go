package gen

import (
	"strings"

	"github.com/persistgen/persistgen/schema"
)

// schemaOf is the runtime description of a resolved domain: the generator
// emits exactly this, and resolution uses it to know the index names the
// runtime creates on its own.
func schemaOf(d *domainSpec, order []string, indexes []*IndexSpec) *schema.Schema {
	s := &schema.Schema{
		Domain: d.name, Collection: d.collection, RedisPrefix: d.redisPrefix, RedisOrder: order,
		HasWhen: d.when, HasRemoved: d.removed, Payload: d.payload.field,
		Cache: d.cache, CacheTTL: d.cacheTTL, LocalTTL: d.localTTL, CacheStrict: d.cacheStrict, SeriesReadAhead: d.readAhead, Shard: d.shard,
	}
	if d.history != nil {
		h := *d.history
		s.History = &h
	}
	// A soft-deleting domain whose payload is a declared type with a bool
	// field "removed" (upstream's measure, interval and memory entries)
	// keeps that flag equal to the document's.
	if t := d.payload.decl; d.removed && s.Payload != "" && t != nil {
		if f := t.field(schema.FieldRemoved); f != nil && f.typ.Kind == refBuiltin && f.typ.Name == "bool" {
			s.PayloadRemoved = true
		}
	}
	for _, k := range d.key {
		kf := schema.KeyField{Name: k.name, Type: k.typ, Optional: k.optional}
		if len(k.words) == 2 {
			kf.TrueWord, kf.FalseWord = k.words[0], k.words[1]
		}
		s.Key = append(s.Key, kf)
	}
	for _, ix := range indexes {
		s.Indexes = append(s.Indexes, schema.Index{Name: ix.Name, Keys: indexKeys(ix.Keys)})
	}
	return s
}

func indexKeys(keys []string) []schema.IndexKey {
	out := make([]schema.IndexKey, len(keys))
	for i, k := range keys {
		out[i] = schema.IndexKey{Field: strings.TrimPrefix(k, "-"), Desc: strings.HasPrefix(k, "-")}
	}
	return out
}
