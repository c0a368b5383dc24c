package gen

import (
	"fmt"
	"go/token"
	"strings"
)

// Families of operations a domain can have (SPEC §3).
var families = map[string]string{
	"single": "one row per key: read, write (signal, risk, state...)",
	"bucket": "a soft-deleting cache keyed by bucket and entry (measure, interval, memory)",
	"list":   "a list of items written and read newest first (storage, notification, log)",
	"series": "an immutable time series read in windows (candle)",
}

var keyTypes = map[string]bool{"string": true, "bool": true, "int64": true, "float64": true}

func validate(m *Manifest) error {
	l := &errList{file: m.File}
	if m.Package == "" {
		m.Package = "repo"
	} else if !token.IsIdentifier(m.Package) || strings.ToLower(m.Package) != m.Package {
		l.add(Pos{1, 1}, "package %q is not a lower-case Go package name", m.Package)
	}
	types := map[string]*TypeDecl{}
	for _, t := range m.Types {
		switch {
		case t.Name == "":
			l.add(t.Pos, "a type has no name; add `name: SomeType`")
			continue
		case !validGoName(t.Name):
			l.add(t.Pos, "type name %q is not an exported Go identifier; use something like %q", t.Name, GoName(t.Name))
		case types[t.Name] != nil:
			l.add(t.Pos, "type %q is declared twice (first at line %d)", t.Name, types[t.Name].Pos.Line)
			continue
		case builtins[t.Name]:
			l.add(t.Pos, "type name %q is a builtin type; choose another name", t.Name)
		}
		types[t.Name] = t
	}
	declared := func(s string) bool { return types[s] != nil }
	for _, t := range m.Types {
		validateType(l, t, types, declared)
	}
	names, colls, prefixes := map[string]*Domain{}, map[string]*Domain{}, map[string]*Domain{}
	if len(m.Domains) == 0 {
		l.add(Pos{1, 1}, "no domains; add a `domains:` list")
	}
	for _, d := range m.Domains {
		validateDomain(l, d, types, declared)
		if d.Name != "" {
			if prev := names[d.goName]; prev != nil && d.goName != "" {
				l.add(d.Pos, "domain %q is declared twice (first at line %d)", d.Name, prev.Pos.Line)
			}
			names[d.goName] = d
		}
		if d.Collection != "" {
			if prev := colls[d.Collection]; prev != nil {
				l.add(where(d.at, "collection", d.Pos), "collection %q is used by domain %q too (line %d); each domain needs its own collection", d.Collection, prev.Name, prev.Pos.Line)
			}
			colls[d.Collection] = d
		}
		if d.Redis.Prefix != "" {
			if prev := prefixes[d.Redis.Prefix]; prev != nil {
				l.add(where(d.Redis.at, "prefix", d.Redis.Pos), "redis prefix %q is used by domain %q too (line %d); identities would collide", d.Redis.Prefix, prev.Name, prev.Pos.Line)
			}
			prefixes[d.Redis.Prefix] = d
		}
	}
	return l.err()
}

// fieldsOf returns a declared type's fields with its includes first.
func fieldsOf(t *TypeDecl, types map[string]*TypeDecl, seen map[string]bool) []*Field {
	if seen[t.Name] {
		return nil
	}
	seen[t.Name] = true
	var out []*Field
	for _, inc := range t.Include {
		if it := types[inc]; it != nil {
			out = append(out, fieldsOf(it, types, seen)...)
		}
	}
	return append(out, t.Fields...)
}

func validateType(l *errList, t *TypeDecl, types map[string]*TypeDecl, declared func(string) bool) {
	for _, inc := range t.Include {
		it := types[inc]
		if it == nil {
			l.add(t.Pos, "type %q includes %q, which is not declared under `types`", t.Name, inc)
			continue
		}
		if includes(it, t.Name, types, map[string]bool{}) {
			l.add(t.Pos, "type %q includes itself through %q; remove the cycle", t.Name, inc)
		}
	}
	if t.Tuple {
		t.KeepUnknown = false
	}
	all := fieldsOf(t, types, map[string]bool{})
	if len(all) == 0 {
		l.add(t.Pos, "type %q has no fields; add `fields:`", t.Name)
	}
	bsonNames, goNames := map[string]bool{}, map[string]bool{"Extra": t.KeepUnknown, "Shape": t.KeepUnknown}
	for _, f := range t.Fields {
		if f.Name == "" {
			l.add(f.Pos, "a field of %q has no name; add `name: bsonName`", t.Name)
			continue
		}
		if strings.ContainsAny(f.Name, ".$") || strings.HasPrefix(f.Name, "$") {
			l.add(f.Pos, "field name %q contains '.' or '$', which BSON field names cannot", f.Name)
		}
		if f.GoName == "" {
			f.GoName = GoName(f.Name)
		}
		if !validGoName(f.GoName) {
			l.add(f.Pos, "field %q becomes the Go name %q, which is not an exported identifier; set `go: SomeName`", f.Name, f.GoName)
		}
		if f.Type == "" {
			l.add(f.Pos, "field %q of %q has no type; add `type: string` (or float64, bool, any, ...)", f.Name, t.Name)
		} else if tr, err := parseType(f.Type, declared); err != nil {
			l.add(where(f.at, "type", f.Pos), "field %q: %v", f.Name, err)
		} else {
			f.typ = tr
		}
	}
	for _, f := range all {
		if f.Name == "" {
			continue
		}
		if bsonNames[f.Name] {
			l.add(f.Pos, "field %q appears twice in %q (directly or through include)", f.Name, t.Name)
		}
		if !bsonNames[f.Name] && goNames[f.GoName] {
			l.add(f.Pos, "two fields of %q have the Go name %q; set `go:` on one of them", t.Name, f.GoName)
		}
		bsonNames[f.Name], goNames[f.GoName] = true, true
	}
}

func includes(t *TypeDecl, target string, types map[string]*TypeDecl, seen map[string]bool) bool {
	if seen[t.Name] {
		return false
	}
	seen[t.Name] = true
	for _, inc := range t.Include {
		if inc == target {
			return true
		}
		if it := types[inc]; it != nil && includes(it, target, types, seen) {
			return true
		}
	}
	return false
}

func validateDomain(l *errList, d *Domain, types map[string]*TypeDecl, declared func(string) bool) {
	what := fmt.Sprintf("domain %q", d.Name)
	if d.Name == "" {
		l.add(d.Pos, "a domain has no name; add `name: mydomain`")
		what = "a domain"
	} else if d.goName = GoName(d.Name); !validGoName(d.goName) {
		l.add(d.Pos, "domain name %q does not convert to a Go identifier (got %q); use letters, digits and '-' or '_', starting with a letter", d.Name, d.goName)
	} else if d.Name+".go" >= "zz_generate.go" || d.Name == "types" || d.Name == "registry" || d.Name == "doc" {
		l.add(d.Pos, "domain name %q is reserved: its file %s.go would clash with the package's own files (doc.go, types.go, registry.go, zz_generate.go)", d.Name, d.Name)
	} else if strings.ToLower(d.Name) != d.Name {
		l.add(d.Pos, "domain name %q must be lower case (it names the file %s.go)", d.Name, d.Name)
	}
	if d.Collection == "" {
		l.add(d.Pos, "%s has no collection; add `collection: %s-items`", what, d.Name)
	}
	if _, ok := families[d.Family]; !ok {
		l.add(where(d.at, "family", d.Pos), "%s: family %q is not one of single, bucket, list, series", what, d.Family)
	}
	// Key.
	if len(d.Key) == 0 {
		l.add(where(d.at, "key", d.Pos), "%s has an empty key; list its key fields under `key:` in unique-index order", what)
	}
	keyNames := map[string]*KeyField{}
	for _, k := range d.Key {
		if k.Name == "" {
			l.add(k.Pos, "a key field of %s has no name", what)
			continue
		}
		if keyNames[k.Name] != nil {
			l.add(k.Pos, "key field %q is listed twice in %s", k.Name, what)
		}
		keyNames[k.Name] = k
		switch k.Name {
		case "_id", "createDate", "updatedDate", "when", "removed":
			l.add(k.Pos, "key field %q is a field persistgen manages; choose another name", k.Name)
		}
		if strings.ContainsAny(k.Name, ".$") {
			l.add(k.Pos, "key field name %q contains '.' or '$'", k.Name)
		}
		if k.GoName == "" {
			k.GoName = GoName(k.Name)
		}
		if !validGoName(k.GoName) {
			l.add(k.Pos, "key field %q becomes the Go name %q, which is not an exported identifier; set `go: SomeName`", k.Name, k.GoName)
		}
		switch {
		case k.Type == "":
			l.add(k.Pos, "key field %q has no type; add `type: string` (or bool, int64, float64)", k.Name)
		case !keyTypes[k.Type]:
			l.add(where(k.at, "type", k.Pos), "key field %q has type %q; key fields are string, bool, int64 or float64", k.Name, k.Type)
		}
		if k.Optional && k.Type != "string" {
			l.add(k.Pos, "key field %q: only string key fields can be optional (may be empty)", k.Name)
		}
		if k.Words != nil && (k.Type != "bool" || len(k.Words) != 2 || k.Words[0] == "" || k.Words[0] == k.Words[1] || strings.Contains(k.Words[0]+k.Words[1], ":")) {
			l.add(k.Pos, "key field %q: words are for bool fields, two different non-empty words without ':', [when-true, when-false]", k.Name)
		}
	}
	// Redis.
	switch {
	case d.Redis.Prefix == "":
		l.add(d.Pos, "%s has no redis prefix; add `redis: {prefix: %s_cache}`", what, d.Name)
	case strings.Contains(d.Redis.Prefix, ":"):
		l.add(where(d.Redis.at, "prefix", d.Redis.Pos), "redis prefix %q contains ':', the key separator", d.Redis.Prefix)
	}
	if d.Redis.Order != nil {
		inOrder := map[string]bool{}
		for _, o := range d.Redis.Order {
			if keyNames[o] == nil {
				l.add(where(d.Redis.at, "order", d.Redis.Pos), "redis order names %q, which is not a key field of %s", o, what)
			} else if inOrder[o] {
				l.add(where(d.Redis.at, "order", d.Redis.Pos), "redis order names %q twice", o)
			}
			inOrder[o] = true
		}
		for _, k := range d.Key {
			if k.Name != "" && !inOrder[k.Name] {
				l.add(where(d.Redis.at, "order", d.Redis.Pos), "redis order leaves out key field %q; the Redis key must hold exactly the key fields", k.Name)
			}
		}
	}
	// when / as_of / removed.
	if d.AsOf && !d.When {
		p := d.Pos
		if d.asOfPos != nil {
			p = *d.asOfPos
		}
		l.add(p, "%s asks for as_of reads but has no when column; set `when: true` or drop as_of", what)
	}
	if d.Family == "bucket" && !d.Removed {
		l.add(d.Pos, "%s is a bucket, which soft-deletes: set `removed: true`", what)
	}
	// Payload.
	validatePayload(l, d, what, types, declared, keyNames)
	// Family specifics.
	if d.List != nil && d.Family != "list" {
		l.add(d.List.Pos, "`list:` applies to the list family only, %s is %q", what, d.Family)
	}
	if d.Series != nil && d.Family != "series" {
		l.add(d.Series.Pos, "`series:` applies to the series family only, %s is %q", what, d.Family)
	}
	if d.Family == "list" {
		validateList(l, d, what, types)
	}
	if d.Family == "series" {
		validateSeries(l, d, what, keyNames)
	}
	// Extra indexes.
	auto := map[string]bool{}
	all := schemaOf(d, types).AllIndexes()
	for _, ix := range all[:len(all)-len(d.Indexes)] { // the ones the runtime adds on its own
		auto[ix.Name] = true
	}
	ixNames := map[string]bool{}
	for _, ix := range d.Indexes {
		if ix.Name == "" || len(ix.Keys) == 0 {
			l.add(ix.Pos, "an index of %s needs a name and keys", what)
			continue
		}
		if ixNames[ix.Name] || auto[ix.Name] {
			l.add(ix.Pos, "index name %q is used twice in %s (persistgen already creates the key, when and removed indexes)", ix.Name, what)
		}
		ixNames[ix.Name] = true
		for _, k := range ix.Keys {
			f := strings.TrimPrefix(k, "-")
			ok := keyNames[f] != nil || f == "createDate" || f == "updatedDate" || (f == "when" && d.When) || (f == "removed" && d.Removed)
			if !ok {
				l.add(ix.Pos, "index %q: %q is not a key field, createDate, updatedDate, or a when/removed column %s has", ix.Name, f, what)
			}
		}
	}
}

func validatePayload(l *errList, d *Domain, what string, types map[string]*TypeDecl, declared func(string) bool, keyNames map[string]*KeyField) {
	p := &d.Payload
	if p.Type == "" {
		l.add(d.Pos, "%s has no payload type; add `payload: {type: SomeType}`", what)
		return
	}
	tr, err := parseType(p.Type, declared)
	if err != nil {
		l.add(where(p.at, "type", p.Pos), "%s payload: %v", what, err)
		return
	}
	p.typ = tr
	if p.Inline {
		if p.Field != "" {
			l.add(p.Pos, "%s: an inline payload has no field; drop `field` or `inline`", what)
		}
		if tr.Kind != refDeclared {
			l.add(p.Pos, "%s: an inline payload must be a type declared under `types` (its fields go to the top level)", what)
		} else if t := types[tr.Name]; t != nil {
			for _, f := range fieldsOf(t, types, map[string]bool{}) {
				switch f.Name {
				case "_id", "createDate", "updatedDate", "when", "removed":
					l.add(f.Pos, "field %q of inline payload %q collides with a field persistgen manages", f.Name, tr.Name)
				}
			}
		}
	} else if p.Field == "" {
		p.Field = "payload"
	}
	if keyNames[p.Field] != nil || p.Field == "_id" || p.Field == "when" || p.Field == "removed" || p.Field == "createDate" || p.Field == "updatedDate" {
		l.add(p.Pos, "%s: payload field %q collides with a key or managed field", what, p.Field)
	}
	if p.Nullable && (tr.Kind == refSlice || tr.Kind == refMap || tr.Kind == refPointer || (tr.Kind == refBuiltin && tr.Name == "any")) {
		l.add(p.Pos, "%s: payload type %s is already nil-able; drop `nullable`", what, p.Type)
	}
	if p.Nullable && p.Inline {
		l.add(p.Pos, "%s: an inline payload cannot be null", what)
	}
	if p.Empty && tr.Kind != refSlice && tr.Kind != refMap {
		l.add(p.Pos, "%s: `empty` reads an absent row as [] or {}, so the payload must be a slice or a map, not %s", what, p.Type)
	}
}

func validateList(l *errList, d *Domain, what string, types map[string]*TypeDecl) {
	if d.List == nil {
		l.add(d.Pos, "%s is a list: add `list: {id: <payload field holding the item id>, read_limit: N}`", what)
		return
	}
	if d.List.ReadLimit <= 0 {
		l.add(d.List.Pos, "%s: list read_limit must be a positive number (how many items a read returns, newest first)", what)
	}
	if len(d.Key) == 0 {
		return // reported as an empty key
	}
	if last := d.Key[len(d.Key)-1]; last.Type != "string" {
		l.add(d.List.Pos, "%s: the last key field (%q) holds each item's id and must be a string", what, last.Name)
	}
	name := ""
	if d.Payload.typ != nil {
		name = d.Payload.typ.declaredStruct()
	}
	t := types[name]
	if t == nil {
		l.add(d.List.Pos, "%s: a list's payload must be a type declared under `types`, with the id field %q", what, d.List.ID)
		return
	}
	for _, f := range fieldsOf(t, types, map[string]bool{}) {
		if f.Name == d.List.ID {
			if f.Type != "string" {
				l.add(d.List.Pos, "%s: list id field %q must be a string, it is %s", what, d.List.ID, f.Type)
			}
			return
		}
	}
	l.add(d.List.Pos, "%s: list id %q is not a field of %s", what, d.List.ID, t.Name)
}

func validateSeries(l *errList, d *Domain, what string, keyNames map[string]*KeyField) {
	s := d.Series
	if s == nil {
		l.add(d.Pos, "%s is a series: add `series: {axis: <last key field, epoch ms>, step: <key field holding the interval>}`", what)
		return
	}
	if len(d.Key) == 0 || d.Key[len(d.Key)-1].Name != s.Axis {
		l.add(s.Pos, "%s: series axis %q must be the last key field", what, s.Axis)
	} else if t := d.Key[len(d.Key)-1].Type; t != "float64" && t != "int64" {
		l.add(s.Pos, "%s: series axis %q must be float64 or int64 epoch milliseconds", what, s.Axis)
	}
	if k := keyNames[s.Step]; k == nil || k.Type != "string" || k.Name == s.Axis {
		l.add(s.Pos, "%s: series step %q must be a string key field holding the interval (1m, 5m, 1h...)", what, s.Step)
	}
	if d.Payload.typ != nil && !d.Payload.Inline {
		l.add(d.Payload.Pos, "%s: a series stores its elements at the top level: set `inline: true`", what)
	}
}
