package gen

import (
	"fmt"
	"go/token"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/persistgen/persistgen/schema"
)

// Resolve checks a manifest and returns its Spec, or every problem found
// as Errors. It never changes m.
func Resolve(m *Manifest) (*Spec, error) {
	if m == nil {
		return nil, Errors{{File: "manifest", Line: 1, Col: 1, Msg: "no manifest given"}}
	}
	r := &resolver{errList: errList{file: m.File}, decls: map[string]*TypeDecl{}, types: map[string]*typeSpec{}}
	s := &Spec{file: m.File, pkg: m.Package}
	if !m.parsed && m.Version != CurrentVersion {
		r.add(Pos{1, 1}, "version %d: this generator reads version %d; set Version: %d", m.Version, CurrentVersion, CurrentVersion)
	}
	switch {
	case s.pkg == "":
		s.pkg = "repo"
	case !token.IsIdentifier(s.pkg) || strings.ToLower(s.pkg) != s.pkg || s.pkg == "main" || s.pkg == "_":
		r.add(Pos{1, 1}, "package %q is not a lower-case Go package name a library can have (not main or _)", s.pkg)
	}
	s.types = r.resolveTypes(m.Types)
	if len(m.Domains) == 0 {
		r.add(Pos{1, 1}, "no domains; add a `domains:` list")
	}
	names, colls, prefixes := map[string]*Domain{}, map[string]*Domain{}, map[string]*Domain{}
	for i, d := range m.Domains {
		if d == nil {
			r.add(Pos{1, 1}, "domain %d is nil", i+1)
			continue
		}
		ds := r.resolveDomain(d)
		if ds.goName != "" {
			if prev := names[ds.goName]; prev != nil {
				if prev.Name == d.Name {
					r.add(d.Pos, "domain %q is declared twice (first at line %d)", d.Name, prev.Pos.Line)
				} else {
					r.add(d.Pos, "domains %q and %q (line %d) both become the Go name %s; rename one", d.Name, prev.Name, prev.Pos.Line, ds.goName)
				}
			}
			names[ds.goName] = d
		}
		if d.Collection != "" {
			if prev := colls[d.Collection]; prev != nil {
				r.add(where(d.at, "collection", d.Pos), "collection %q is used by domain %q too (line %d); each domain needs its own collection", d.Collection, prev.Name, prev.Pos.Line)
			}
			colls[d.Collection] = d
		}
		if d.Redis.Prefix != "" {
			if prev := prefixes[d.Redis.Prefix]; prev != nil {
				r.add(where(d.Redis.at, "prefix", d.Redis.Pos), "redis prefix %q is used by domain %q too (line %d); identities would collide", d.Redis.Prefix, prev.Name, prev.Pos.Line)
			}
			prefixes[d.Redis.Prefix] = d
		}
		s.domains = append(s.domains, ds)
	}
	r.checkRecursion(m.Types)
	if len(r.errs) == 0 {
		r.checkGeneratedNames(s)
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	return s, nil
}

type resolver struct {
	errList
	decls map[string]*TypeDecl
	types map[string]*typeSpec
}

func (r *resolver) declared(name string) bool { return r.decls[name] != nil }

// resolveTypes checks the declared types and flattens their includes.
func (r *resolver) resolveTypes(all []*TypeDecl) []*typeSpec {
	var decls []*TypeDecl
	for i, t := range all {
		if t == nil {
			r.add(Pos{1, 1}, "type %d is nil", i+1)
			continue
		}
		decls = append(decls, t)
	}
	for _, t := range decls {
		switch {
		case t.Name == "":
			r.add(t.Pos, "a type has no name; add `name: SomeType`")
			continue
		case !validGoName(t.Name):
			r.add(t.Pos, "type name %q is not an exported Go identifier; use something like %q", t.Name, GoName(t.Name))
		case r.decls[t.Name] != nil:
			r.add(t.Pos, "type %q is declared twice (first at line %d)", t.Name, r.decls[t.Name].Pos.Line)
			continue
		case builtins[t.Name]:
			r.add(t.Pos, "type name %q is a builtin type; choose another name", t.Name)
		}
		r.decls[t.Name] = t
	}
	own := map[*TypeDecl][]*fieldSpec{}
	for _, t := range decls {
		own[t] = r.ownFields(t)
	}
	var out []*typeSpec
	for _, t := range decls {
		if t.Name == "" || r.decls[t.Name] != t {
			continue
		}
		for _, inc := range t.Include {
			it := r.decls[inc]
			if it == nil {
				r.add(t.Pos, "type %q includes %q, which is not declared under `types`", t.Name, inc)
				continue
			}
			if r.includes(it, t.Name, map[string]bool{}) {
				r.add(t.Pos, "type %q includes itself through %q; remove the cycle", t.Name, inc)
			}
		}
		ts := &typeSpec{name: t.Name, doc: t.Doc, keepUnknown: t.KeepUnknown && !t.Tuple, tuple: t.Tuple}
		ts.fields = r.flatten(t, own, map[string]bool{})
		if len(ts.fields) == 0 && len(t.Fields) == 0 { // nameless fields are reported as such
			r.add(t.Pos, "type %q has no fields; add `fields:`", t.Name)
		}
		bsonNames, goNames := map[string]bool{}, map[string]bool{"Extra": ts.keepUnknown, "Shape": ts.keepUnknown}
		for _, f := range ts.fields {
			p := f.pos
			if bsonNames[f.name] {
				r.add(p, "field %q appears twice in %q (directly or through include)", f.name, t.Name)
			}
			if !bsonNames[f.name] && goNames[f.goName] {
				r.add(p, "two fields of %q have the Go name %q; set `go:` on one of them", t.Name, f.goName)
			}
			bsonNames[f.name], goNames[f.goName] = true, true
			for _, m := range typeMethods(ts) {
				if f.goName == m {
					r.add(p, "field %q of %q has the Go name %q, which is a method the generated type has; set `go:` to another name", f.name, t.Name, m)
				}
			}
		}
		r.types[t.Name] = ts
		out = append(out, ts)
	}
	return out
}

// typeMethods are the methods generated on a declared type.
func typeMethods(t *typeSpec) []string {
	var out []string
	if t.keepUnknown {
		out = append(out, "MarshalBSON", "UnmarshalBSON")
	}
	if t.tuple {
		out = append(out, "MarshalBSONValue", "UnmarshalBSONValue")
	}
	return out
}

func (r *resolver) flatten(t *TypeDecl, own map[*TypeDecl][]*fieldSpec, seen map[string]bool) []*fieldSpec {
	if seen[t.Name] {
		return nil
	}
	seen[t.Name] = true
	var out []*fieldSpec
	for _, inc := range t.Include {
		if it := r.decls[inc]; it != nil {
			out = append(out, r.flatten(it, own, seen)...)
		}
	}
	return append(out, own[t]...)
}

// ownFields checks the fields a type declares itself.
func (r *resolver) ownFields(t *TypeDecl) []*fieldSpec {
	var out []*fieldSpec
	for _, f := range t.Fields {
		if f == nil {
			r.add(t.Pos, "a field of %q is nil", t.Name)
			continue
		}
		if f.Name == "" {
			r.add(f.Pos, "a field of %q has no name; add `name: bsonName`", t.Name)
			continue
		}
		if msg := badFieldName(f.Name); msg != "" {
			r.add(f.Pos, "field name %q %s", f.Name, msg)
		}
		fs := &fieldSpec{pos: f.Pos, name: f.Name, goName: f.GoName, doc: f.Doc, optional: f.Optional}
		if fs.goName == "" {
			fs.goName = GoName(f.Name)
		}
		if !validGoName(fs.goName) {
			r.add(f.Pos, "field %q becomes the Go name %q, which is not an exported identifier; set `go: SomeName`", f.Name, fs.goName)
		}
		if f.Type == "" {
			r.add(f.Pos, "field %q of %q has no type; add `type: string` (or float64, bool, any, ...)", f.Name, t.Name)
			fs.typ = &TypeRef{Kind: refBuiltin, Name: "any"}
		} else if tr, err := parseType(f.Type, r.declared); err != nil {
			r.add(where(f.at, "type", f.Pos), "field %q: %v", f.Name, err)
			fs.typ = &TypeRef{Kind: refBuiltin, Name: "any"}
		} else {
			fs.typ = tr
		}
		out = append(out, fs)
	}
	return out
}

func (r *resolver) includes(t *TypeDecl, target string, seen map[string]bool) bool {
	if seen[t.Name] {
		return false
	}
	seen[t.Name] = true
	for _, inc := range t.Include {
		if inc == target {
			return true
		}
		if it := r.decls[inc]; it != nil && r.includes(it, target, seen) {
			return true
		}
	}
	return false
}

// keyMethods are the methods generated on every key type.
func keyMethods() []string {
	return []string{"KeyValues", "DecodeKey", "Validate", "RedisKey", "Filter"}
}

func (r *resolver) resolveDomain(d *Domain) *domainSpec {
	ds := &domainSpec{pos: d.Pos, name: d.Name, doc: d.Doc, collection: d.Collection, redisPrefix: d.Redis.Prefix, when: d.When, removed: d.Removed}
	what := fmt.Sprintf("domain %q", d.Name)
	if d.Name == "" {
		r.add(d.Pos, "a domain has no name; add `name: mydomain`")
		what = "a domain"
	} else if msg := badDomainName(d.Name); msg != "" {
		r.add(d.Pos, "domain name %q %s", d.Name, msg)
	} else {
		ds.goName = GoName(d.Name)
	}
	if d.Collection == "" {
		r.add(d.Pos, "%s has no collection; add `collection: %s-items`", what, d.Name)
	}
	ds.fam = familyNamed(d.Family)
	if ds.fam == nil {
		r.add(where(d.at, "family", d.Pos), "%s: family %q is not one of %s", what, d.Family, strings.Join(familyNames(), ", "))
	}
	keys := r.resolveKey(d, ds, what)
	order := r.resolveRedis(d, what, keys)
	ds.asOf = d.When
	if d.AsOf != nil {
		ds.asOf = *d.AsOf
	}
	if ds.asOf && !d.When {
		r.add(where(d.at, "as_of", d.Pos), "%s asks for as_of reads but has no when column; set `when: true` or drop as_of", what)
	}
	r.resolvePayload(d, ds, what, keys)
	for _, b := range familyBlocks(d) {
		if b.given && (ds.fam == nil || ds.fam.name != b.family) {
			r.add(b.pos, "`%s:` applies to the %s family only, %s is %q", b.family, b.family, what, d.Family)
		}
	}
	if ds.fam != nil && !ds.fam.when && d.When {
		r.add(where(d.at, "when", d.Pos), "%s: the %s family writes items without a simulation time, so it has no when column; drop `when`", what, ds.fam.name)
	}
	if ds.fam != nil && len(d.Key) > 0 && len(keys) == len(d.Key) {
		ds.fam.check(r, d, ds, what)
	}
	r.resolveCache(d, ds, what)
	r.resolveShard(d, ds, what)
	r.resolveHistory(d, ds, what)
	ds.schema = schemaOf(ds, order, nil)
	r.resolveIndexes(d, ds, what, keys)
	ds.schema = schemaOf(ds, order, d.Indexes)
	return ds
}

// resolveKey checks the key fields; it returns them by name (only those
// with a name).
func (r *resolver) resolveKey(d *Domain, ds *domainSpec, what string) map[string]*keySpec {
	if len(d.Key) == 0 {
		r.add(where(d.at, "key", d.Pos), "%s has an empty key; list its key fields under `key:` in unique-index order", what)
	}
	keys := map[string]*keySpec{}
	for _, k := range d.Key {
		if k == nil {
			r.add(d.Pos, "a key field of %s is nil", what)
			continue
		}
		if k.Name == "" {
			r.add(k.Pos, "a key field of %s has no name", what)
			continue
		}
		if keys[k.Name] != nil {
			r.add(k.Pos, "key field %q is listed twice in %s", k.Name, what)
		}
		ks := &keySpec{name: k.Name, goName: k.GoName, typ: schema.KeyType(k.Type), optional: k.Optional, words: k.Words}
		keys[k.Name] = ks
		ds.key = append(ds.key, ks)
		if schema.IsReserved(k.Name) {
			r.add(k.Pos, "key field %q is a field persistgen manages; choose another name", k.Name)
		}
		if msg := badFieldName(k.Name); msg != "" {
			r.add(k.Pos, "key field name %q %s", k.Name, msg)
		}
		if ks.goName == "" {
			ks.goName = GoName(k.Name)
		}
		if !validGoName(ks.goName) {
			r.add(k.Pos, "key field %q becomes the Go name %q, which is not an exported identifier; set `go: SomeName`", k.Name, ks.goName)
		} else if slices.Contains(keyMethods(), ks.goName) {
			r.add(k.Pos, "key field %q has the Go name %q, which is a method of the generated key type; set `go:` to another name", k.Name, ks.goName)
		}
		switch {
		case k.Type == "":
			r.add(k.Pos, "key field %q has no type; add `type: string` (or bool, int64, float64)", k.Name)
		case !slices.Contains([]string{"string", "bool", "int64", "float64"}, k.Type):
			r.add(where(k.at, "type", k.Pos), "key field %q has type %q; key fields are string, bool, int64 or float64", k.Name, k.Type)
		}
		if k.Optional && k.Type != "string" {
			r.add(k.Pos, "key field %q: only string key fields can be optional (may be empty)", k.Name)
		}
		if k.Words != nil && (k.Type != "bool" || len(k.Words) != 2 || k.Words[0] == "" || k.Words[0] == k.Words[1] || strings.Contains(k.Words[0]+k.Words[1], ":")) {
			r.add(k.Pos, "key field %q: words are for bool fields, two different non-empty words without ':', [when-true, when-false]", k.Name)
		}
	}
	for i, k := range ds.key { // Go names must differ too
		for _, o := range ds.key[:i] {
			if k.goName == o.goName && k.name != o.name {
				r.add(d.Pos, "key fields %q and %q of %s both become the Go name %s; set `go:` on one of them", o.name, k.name, what, k.goName)
			}
		}
	}
	return keys
}

// resolveRedis checks the identity key; it returns the Redis order (nil:
// key order).
func (r *resolver) resolveRedis(d *Domain, what string, keys map[string]*keySpec) []string {
	switch {
	case d.Redis.Prefix == "":
		r.add(d.Pos, "%s has no redis prefix; add `redis: {prefix: %s_cache}`", what, d.Name)
	case strings.Contains(d.Redis.Prefix, ":"):
		r.add(where(d.Redis.at, "prefix", d.Redis.Pos), "redis prefix %q contains ':', the key separator", d.Redis.Prefix)
	}
	if d.Redis.Order == nil {
		return nil
	}
	p := where(d.Redis.at, "order", d.Redis.Pos)
	inOrder := map[string]bool{}
	for _, o := range d.Redis.Order {
		if keys[o] == nil {
			r.add(p, "redis order names %q, which is not a key field of %s", o, what)
		} else if inOrder[o] {
			r.add(p, "redis order names %q twice", o)
		}
		inOrder[o] = true
	}
	for _, k := range d.Key {
		if k != nil && k.Name != "" && !inOrder[k.Name] {
			r.add(p, "redis order leaves out key field %q; the Redis key must hold exactly the key fields", k.Name)
		}
	}
	return slices.Clone(d.Redis.Order)
}

func (r *resolver) resolvePayload(d *Domain, ds *domainSpec, what string, keys map[string]*keySpec) {
	p := &d.Payload
	if p.Type == "" {
		r.add(d.Pos, "%s has no payload type; add `payload: {type: SomeType}`", what)
		return
	}
	tr, err := parseType(p.Type, r.declared)
	if err != nil {
		r.add(where(p.at, "type", p.Pos), "%s payload: %v", what, err)
		return
	}
	ps := payloadSpec{field: p.Field, typ: tr, nullable: p.Nullable, empty: p.Empty, decl: r.types[tr.declaredStruct()]}
	if p.Inline {
		if p.Field != "" {
			r.add(p.Pos, "%s: an inline payload has no field; drop `field` or `inline`", what)
		}
		ps.field = ""
		switch {
		case tr.Kind != refDeclared:
			r.add(p.Pos, "%s: an inline payload must be a type declared under `types` (its fields go to the top level)", what)
		case ps.decl != nil && ps.decl.tuple:
			r.add(p.Pos, "%s: an inline payload is stored as a document, so it cannot be %s, a tuple (stored as an array)", what, tr.Name)
		case ps.decl != nil:
			for _, f := range ps.decl.fields {
				if schema.IsReserved(f.name) {
					r.add(f.pos, "field %q of inline payload %q collides with a field persistgen manages", f.name, tr.Name)
				}
			}
		}
	} else if ps.field == "" {
		ps.field = "payload"
	}
	if ps.field != "" && (keys[ps.field] != nil || schema.IsReserved(ps.field)) {
		r.add(p.Pos, "%s: payload field %q collides with a key or managed field", what, ps.field)
	}
	if p.Nullable && nilable(tr) {
		r.add(p.Pos, "%s: payload type %s is already nil-able; drop `nullable`", what, p.Type)
	}
	if p.Nullable && p.Inline {
		r.add(p.Pos, "%s: an inline payload cannot be null", what)
	}
	if p.Empty && tr.Kind != refSlice && tr.Kind != refMap {
		r.add(p.Pos, "%s: `empty` reads an absent row as [] or {}, so the payload must be a slice or a map, not %s", what, p.Type)
	}
	ds.payload = ps
}

func (r *resolver) resolveIndexes(d *Domain, ds *domainSpec, what string, keys map[string]*keySpec) {
	auto := map[string]bool{}
	for _, ix := range ds.schema.AllIndexes() { // the ones the runtime adds on its own
		auto[ix.Name] = true
	}
	ixNames := map[string]bool{}
	for _, ix := range d.Indexes {
		if ix == nil {
			r.add(d.Pos, "an index of %s is nil", what)
			continue
		}
		if ix.Name == "" || len(ix.Keys) == 0 {
			r.add(ix.Pos, "an index of %s needs a name and keys", what)
			continue
		}
		if ixNames[ix.Name] || auto[ix.Name] {
			r.add(ix.Pos, "index name %q is used twice in %s (persistgen already creates the key, when and removed indexes)", ix.Name, what)
		}
		ixNames[ix.Name] = true
		seen := map[string]bool{}
		for _, k := range ix.Keys {
			f := strings.TrimPrefix(k, "-")
			ok := keys[f] != nil || f == schema.FieldCreateDate || f == schema.FieldUpdatedDate || (f == schema.FieldWhen && d.When) || (f == schema.FieldRemoved && d.Removed)
			if !ok {
				r.add(ix.Pos, "index %q: %q is not a key field, createDate, updatedDate, or a when/removed column %s has", ix.Name, f, what)
			}
			if seen[f] {
				r.add(ix.Pos, "index %q names %q twice; an index lists each field once", ix.Name, f)
			}
			seen[f] = true
		}
	}
}

// checkGeneratedNames rejects a manifest whose generated identifiers would
// collide: package-level names (types, each domain's Key, Repo, Schema,
// NewRepo and key rules, tuple helpers, the registry), Open's locals, and
// the parameters made from a domain's key fields.
func (r *resolver) checkGeneratedNames(s *Spec) {
	type owner struct {
		what string
		pos  Pos
	}
	taken := map[string]owner{}
	claim := func(name, what string, pos Pos) {
		if prev, ok := taken[name]; ok {
			if prev.pos.Line == 0 {
				r.add(pos, "%s takes the name %s, which %s declares; choose another name", what, name, prev.what)
			} else {
				r.add(pos, "%s takes the name %s, which %s (line %d) takes too; rename one of them", what, name, prev.what, prev.pos.Line)
			}
			return
		}
		taken[name] = owner{what, pos}
	}
	for _, n := range []string{"Repos", "Open", "Schemas", "EnsureIndexes"} {
		taken[n] = owner{"the generated registry", Pos{}}
	}
	for _, t := range s.types {
		claim(t.name, fmt.Sprintf("type %q", t.name), r.decls[t.name].Pos)
		if t.tuple {
			claim(tupleDoc(t.name), fmt.Sprintf("the document form of tuple type %q", t.name), r.decls[t.name].Pos)
		}
	}
	locals := map[string]owner{}
	for _, d := range s.domains {
		what := fmt.Sprintf("domain %q", d.name)
		for _, n := range []string{keyName(d), repoName(d), schemaName(d), "New" + repoName(d), keysVar(d)} {
			claim(n, what, d.pos)
		}
		local := lowerIdent(d.goName) + "Repo"
		if prev, ok := locals[local]; ok {
			r.add(d.pos, "%s is opened into the variable %s, which %s (line %d) is opened into too; rename one of them", what, local, prev.what, prev.pos.Line)
		}
		locals[local] = owner{what, d.pos}
		params := map[string]string{}
		for _, k := range d.prefix() {
			p := lowerFirst(k.goName)
			if prev, ok := params[p]; ok {
				r.add(d.pos, "key fields %q and %q of %s both become the parameter %s; set `go:` on one of them", prev, k.name, what, p)
			}
			params[p] = k.name
		}
	}
}

// checkRecursion rejects a declared type that holds itself by value
// (directly or through other types' fields): Go cannot lay it out. A
// pointer, slice or map breaks the cycle.
func (r *resolver) checkRecursion(decls []*TypeDecl) {
	byValue := func(t *TypeRef) string { // the declared type t holds by value
		if t != nil && t.Kind == refDeclared {
			return t.Name
		}
		return ""
	}
	for _, start := range r.types {
		seen := map[string]bool{}
		var visit func(name string) bool
		visit = func(name string) bool {
			if seen[name] {
				return false
			}
			seen[name] = true
			t := r.types[name]
			if t == nil {
				return false
			}
			for _, f := range t.fields {
				next := byValue(f.typ)
				if next == start.name || (next != "" && visit(next)) {
					return true
				}
			}
			return false
		}
		if visit(start.name) {
			r.add(r.decls[start.name].Pos, "type %q holds itself by value (through its fields); make one of those fields a pointer (*%s), a slice or a map", start.name, start.name)
		}
	}
}

// badFieldName says why a BSON field name cannot be used, or "".
func badFieldName(n string) string {
	switch {
	case strings.ContainsAny(n, ".$") || strings.HasPrefix(n, "$"):
		return "contains '.' or '$', which BSON field names cannot"
	case strings.ContainsAny(n, ",\x00") || n == "-":
		return "cannot be a struct tag's field name (no ',' or NUL, and not \"-\"); use another name"
	}
	return ""
}

// badDomainName says why a domain name cannot be used, or "": it names a
// Go file of the generated package, so it must be a plain lower-case name
// the go tool compiles on every platform.
func badDomainName(n string) string {
	if !plainName(n) {
		return "must be lower case letters, digits, '-' and '_', starting with a letter (it names the file " + n + ".go)"
	}
	switch n {
	case "types", "registry", "doc", "zz_generate":
		return "is reserved: its file " + n + ".go would clash with the package's own files (doc.go, types.go, registry.go, zz_generate.go)"
	}
	parts := strings.Split(n, "_")
	if last := parts[len(parts)-1]; len(parts) > 1 && (last == "test" || slices.Contains(goosList(), last) || slices.Contains(goarchList(), last)) {
		return "ends in _" + last + ", which makes the go tool treat " + n + ".go as a test or platform-specific file; choose another name"
	}
	return ""
}

// plainName reports a name of lower-case letters, digits, '-' and '_' that
// starts with a letter.
func plainName(n string) bool {
	for i, c := range n {
		switch {
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '_'):
		default:
			return false
		}
	}
	return n != ""
}

// goosList and goarchList are the suffixes go/build reads as build
// constraints in file names.
func goosList() []string {
	return []string{"aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "zos"}
}

func goarchList() []string {
	return []string{"386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "loong64", "mips", "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "ppc64", "ppc64le", "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64", "wasm"}
}

// resolveShard checks the domain's shard key against MongoDB's rules.
func (r *resolver) resolveShard(d *Domain, ds *domainSpec, what string) {
	sh := d.Shard
	if sh == nil {
		return
	}
	k := schema.ShardKey{Fields: sh.Fields}
	switch sh.Mode {
	case "", "ranged":
	case "hashed":
		k.Hashed = true
	default:
		r.add(where(sh.at, "mode", sh.Pos), "%s: shard mode %q is not ranged or hashed", what, sh.Mode)
		return
	}
	names := make([]string, len(d.Key))
	for i, f := range d.Key {
		names[i] = f.Name
	}
	if why := schema.ShardCheck(k, names); why != "" {
		at := "fields"
		if k.Hashed {
			at = "mode"
		}
		r.add(where(sh.at, at, sh.Pos), "%s: %s", what, why)
		return
	}
	ds.shard = &k
}

// resolveHistory checks the domain's history block: keep is forever, whole
// days (90d) or a Go duration, in whole seconds and at least
// schema.MinHistoryKeep.
func (r *resolver) resolveHistory(d *Domain, ds *domainSpec, what string) {
	h := d.History
	if h == nil || h.parseFailed {
		return
	}
	if _, given := h.at["keep"]; !given && h.Keep == "" {
		r.add(h.Pos, "%s: a history block needs keep, how long each version is kept: write `keep: forever` or a duration (90d, 36h)", what)
		return
	}
	p := where(h.at, "keep", h.Pos)
	if h.Keep == "forever" {
		ds.history = &schema.History{}
		return
	}
	keep, ok := parseKeep(h.Keep)
	switch {
	case !ok && h.Keep != "" && strings.Trim(h.Keep, "0123456789") == "":
		r.add(p, "%s: history keep %s has no unit: write %ss for seconds, whole days as 90d, a Go duration (36h, 90m), or forever", what, h.Keep, h.Keep)
	case !ok:
		r.add(p, "%s: history keep %q is not forever or a duration; write forever, whole days as 90d, or a Go duration (36h, 90m)", what, h.Keep)
	case keep < schema.MinHistoryKeep || keep%time.Second != 0:
		r.add(p, "%s: history keep %q must be whole seconds and at least %s, or forever", what, h.Keep, schema.MinHistoryKeep)
	default:
		ds.history = &schema.History{Keep: keep}
	}
}

// parseKeep reads a history keep: whole days ("90d") or a Go duration
// ("36h"; a leading "+" is refused, as the JSON Schema refuses it, and a
// "-" is read, to be refused as too short). ok is false for anything else,
// or a number of days out of range.
func parseKeep(s string) (d time.Duration, ok bool) {
	if days, found := strings.CutSuffix(s, "d"); found {
		if days == "" || strings.Trim(days, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	if strings.HasPrefix(s, "+") {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// resolveCache checks the domain's cache mode.
func (r *resolver) resolveCache(d *Domain, ds *domainSpec, what string) {
	c := d.Cache
	if c == nil {
		return
	}
	valued := c.Mode == "value" || c.Mode == "local"
	switch c.Mode {
	case "":
		r.add(c.Pos, "%s: a cache block needs a mode: identity, none, value, local or series", what)
	case "identity", "none", "value", "local":
		ds.cache = schema.CacheMode(c.Mode)
	case "series":
		if ds.fam == nil || ds.fam.name != "series" {
			r.add(where(c.at, "mode", c.Pos), "%s: the series cache mode keeps elements in each process's memory on the promise that a stored one never changes, which only the series family keeps (first write wins, nothing removed); %s is %q: use identity", what, what, d.Family)
			break
		}
		ds.cache = schema.CacheSeries
	default:
		r.add(where(c.at, "mode", c.Pos), "%s: cache mode %q is not one of identity, none, value, local, series", what, c.Mode)
	}
	if c.ReadAhead != nil {
		switch {
		case c.Mode != "series":
			r.add(where(c.at, "read_ahead", c.Pos), "%s: read_ahead applies to the series cache mode only", what)
		case *c.ReadAhead < 0 || *c.ReadAhead > schema.MaxSeriesReadAhead:
			r.add(where(c.at, "read_ahead", c.Pos), "%s: read_ahead %d must be from 0 to %d elements (%d when unset)", what, *c.ReadAhead, schema.MaxSeriesReadAhead, schema.DefaultSeriesReadAhead)
		default:
			ds.readAhead = *c.ReadAhead
		}
	}
	switch c.Writers {
	case "", "any":
		if valued {
			r.add(where(c.at, "mode", c.Pos), "%s: the %s cache is stale if anything but persistgen writes the collection (a backtest-kit process, a script): say `writers: persistgen-only` to promise that none does, or use identity", what, c.Mode)
		}
	case "persistgen-only":
	default:
		r.add(where(c.at, "writers", c.Pos), "%s: writers %q is not any or persistgen-only", what, c.Writers)
	}
	if c.TTL != "" {
		ttl, err := time.ParseDuration(c.TTL)
		switch {
		case !valued:
			r.add(where(c.at, "ttl", c.Pos), "%s: ttl applies to the value and local cache modes only", what)
		case err != nil:
			r.add(where(c.at, "ttl", c.Pos), "%s: ttl %q is not a duration; write it as Go does (15s, 1m30s, 250ms)", what, c.TTL)
		case ttl < schema.MinCacheTTL || ttl > schema.MaxCacheTTL || ttl%time.Millisecond != 0:
			r.add(where(c.at, "ttl", c.Pos), "%s: ttl %s must be whole milliseconds from %s to %s (15s when unset); a write that cannot reach Redis waits this long", what, c.TTL, schema.MinCacheTTL, schema.MaxCacheTTL)
		default:
			ds.cacheTTL = ttl
		}
	}
	if c.Strict != nil {
		switch {
		case !valued:
			r.add(where(c.at, "strict", c.Pos), "%s: strict applies to the value cache mode only (writes that cannot mark their keys in Redis fail)", what)
		case c.Mode == "local" && !*c.Strict:
			r.add(where(c.at, "strict", c.Pos), "%s: the local cache mode is always strict (a write that cannot mark its keys fails): drop strict: false", what)
		default:
			ds.cacheStrict = *c.Strict && c.Mode == "value"
		}
	}
	if c.LocalTTL != "" {
		lt, err := time.ParseDuration(c.LocalTTL)
		ttl := ds.cacheTTL
		if ttl == 0 {
			ttl = schema.DefaultCacheTTL
		}
		switch {
		case c.Mode != "local":
			r.add(where(c.at, "local_ttl", c.Pos), "%s: local_ttl applies to the local cache mode only", what)
		case err != nil:
			r.add(where(c.at, "local_ttl", c.Pos), "%s: local_ttl %q is not a duration; write it as Go does (100ms, 1s)", what, c.LocalTTL)
		case lt < schema.MinLocalTTL || lt > schema.MaxLocalTTL || lt%time.Millisecond != 0 || lt >= ttl:
			r.add(where(c.at, "local_ttl", c.Pos), "%s: local_ttl %s must be whole milliseconds from %s to %s and shorter than ttl (%s); a write waits up to this long for other processes' copies to expire", what, c.LocalTTL, schema.MinLocalTTL, schema.MaxLocalTTL, ttl)
		default:
			ds.localTTL = lt
		}
	}
}
