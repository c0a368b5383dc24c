package gen

import (
	"strings"

	"github.com/persistgen/persistgen/runtime"
)

// schemaOf is the runtime description of d: the generator emits exactly
// this, and validation uses it to know the index names the runtime creates.
func schemaOf(d *Domain, types map[string]*TypeDecl) *runtime.Schema {
	s := &runtime.Schema{
		Domain: d.Name, Collection: d.Collection, RedisPrefix: d.Redis.Prefix, RedisOrder: d.Redis.Order,
		HasWhen: d.When, HasRemoved: d.Removed, Payload: d.Payload.Field,
	}
	// A soft-deleting domain whose payload is a declared type with a bool
	// field "removed" (upstream's measure, interval and memory entries)
	// keeps that flag equal to the document's.
	if t := d.Payload.typ; d.Removed && s.Payload != "" && t != nil && t.Kind == refDeclared && types[t.Name] != nil {
		for _, f := range fieldsOf(types[t.Name], types, map[string]bool{}) {
			if f.Name == runtime.FieldRemoved && f.Type == "bool" {
				s.PayloadRemoved = true
			}
		}
	}
	for _, k := range d.Key {
		kf := runtime.KeyField{Name: k.Name, Type: runtime.KeyType(k.Type), Optional: k.Optional}
		if len(k.Words) == 2 {
			kf.TrueWord, kf.FalseWord = k.Words[0], k.Words[1]
		}
		s.Key = append(s.Key, kf)
	}
	for _, ix := range d.Indexes {
		s.Indexes = append(s.Indexes, runtime.Index{Name: ix.Name, Keys: indexKeys(ix.Keys)})
	}
	return s
}

func indexKeys(keys []string) []runtime.IndexKey {
	out := make([]runtime.IndexKey, len(keys))
	for i, k := range keys {
		out[i] = runtime.IndexKey{Field: strings.TrimPrefix(k, "-"), Desc: strings.HasPrefix(k, "-")}
	}
	return out
}
