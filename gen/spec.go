package gen

import (
	"time"

	"github.com/persistgen/persistgen/schema"
)

// Spec is a resolved manifest: every type parsed, every default applied,
// every domain's family decided and its runtime schema built. Only Resolve
// (and Load) make one, and nothing changes it afterwards, so Generate never
// meets anything unchecked.
type Spec struct {
	file    string
	pkg     string
	types   []*typeSpec
	domains []*domainSpec
}

// Package returns the Go package name of the generated code.
func (s *Spec) Package() string { return s.pkg }

// Domains returns the domain names, in manifest order.
func (s *Spec) Domains() []string {
	out := make([]string, len(s.domains))
	for i, d := range s.domains {
		out[i] = d.name
	}
	return out
}

// Types returns the declared type names, in manifest order.
func (s *Spec) Types() []string {
	out := make([]string, len(s.types))
	for i, t := range s.types {
		out[i] = t.name
	}
	return out
}

// Schema returns a copy of the runtime schema of a domain (nil when there
// is no such domain): exactly what the generated code hands the runtime.
func (s *Spec) Schema(domain string) *schema.Schema {
	for _, d := range s.domains {
		if d.name == domain {
			return cloneSchema(d.schema)
		}
	}
	return nil
}

func cloneSchema(s *schema.Schema) *schema.Schema {
	c := *s
	c.Key = append([]schema.KeyField(nil), s.Key...)
	if s.RedisOrder != nil {
		c.RedisOrder = append([]string(nil), s.RedisOrder...)
	}
	if s.History != nil {
		h := *s.History
		c.History = &h
	}
	c.Indexes = nil
	for _, ix := range s.Indexes {
		ix.Keys = append([]schema.IndexKey(nil), ix.Keys...)
		c.Indexes = append(c.Indexes, ix)
	}
	return &c
}

// typeSpec is a declared type with its includes flattened.
type typeSpec struct {
	name, doc   string
	fields      []*fieldSpec // includes' fields first, then its own
	keepUnknown bool
	tuple       bool
}

// field returns the field of BSON name n, or nil.
func (t *typeSpec) field(n string) *fieldSpec {
	for _, f := range t.fields {
		if f.name == n {
			return f
		}
	}
	return nil
}

type fieldSpec struct {
	pos               Pos
	name, goName, doc string
	typ               *TypeRef
	optional          bool
}

type keySpec struct {
	name, goName string
	typ          schema.KeyType
	optional     bool
	words        []string // [true-word, false-word] or nil
}

type domainSpec struct {
	pos               Pos
	name, goName, doc string
	collection        string
	fam               *family
	key               []*keySpec
	redisPrefix       string
	when, asOf        bool
	removed           bool
	payload           payloadSpec
	list              *listSpec
	series            *seriesSpec
	cache             schema.CacheMode
	cacheTTL          time.Duration
	localTTL          time.Duration
	cacheStrict       bool
	readAhead         int
	shard             *schema.ShardKey
	// history is nil when the domain keeps no history; a zero Keep keeps
	// versions forever.
	history *schema.History
	schema  *schema.Schema
}

// prefix is the key without its last field: what a list, a bucket or a
// series is read by.
func (d *domainSpec) prefix() []*keySpec { return d.key[:len(d.key)-1] }
func (d *domainSpec) last() *keySpec     { return d.key[len(d.key)-1] }

type payloadSpec struct {
	field    string // "" for an inline payload
	typ      *TypeRef
	decl     *typeSpec // the declared struct the payload is (or points to), if any
	nullable bool
	empty    bool
}

type listSpec struct {
	idGo       string // Go name of the payload field that holds each item's id
	idName     string
	readLimit  int
	appendOnly bool
}

type seriesSpec struct {
	axis   *keySpec
	axisGo string // Go name of the payload field holding the axis
	step   *keySpec
}
