package gen

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// CurrentVersion is the manifest format this generator reads.
const CurrentVersion = 1

// Load parses and resolves a manifest. file names the manifest in error
// messages ("domains.yaml:LINE:COL: ..."). Every problem found is reported,
// as Errors in manifest order: a manifest with field-level parse errors is
// still resolved, so that one run reports them all.
func Load(file string, data []byte) (*Spec, error) {
	m, perr := Parse(file, data)
	if m == nil {
		return nil, perr
	}
	s, rerr := Resolve(m)
	if perr == nil && rerr == nil {
		return s, nil
	}
	var all Errors
	for _, err := range []error{perr, rerr} {
		var es Errors
		switch {
		case err == nil:
		case errors.As(err, &es):
			all = append(all, es...)
		default:
			all = append(all, Error{File: file, Line: 1, Col: 1, Msg: err.Error()})
		}
	}
	slices.SortStableFunc(all, func(a, b Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return nil, all
}

// Parse reads the YAML into a Manifest, rejecting unknown fields and values
// of the wrong kind. It returns the Manifest read so far along with Errors
// when a field is wrong, and no Manifest when the document is unusable.
func Parse(file string, data []byte) (*Manifest, error) {
	d := &decoder{errList: errList{file: file}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{yamlError(file, err)}
	}
	m := &Manifest{File: file, parsed: true}
	if root.Kind == 0 || len(root.Content) == 0 {
		d.add(Pos{1, 1}, "the manifest is empty; start with `version: %d`", CurrentVersion)
		return nil, d.err()
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		d.add(pos(doc), "the manifest must be a mapping with version, types and domains, not %s", kindName(doc))
		return nil, d.err()
	}
	versionSeen := false
	d.mapping(doc, "the manifest", map[string]func(*yaml.Node){
		"version": func(n *yaml.Node) { versionSeen = true; m.Version = d.int(n) },
		"package": func(n *yaml.Node) { m.Package = d.str(n) },
		"types": func(n *yaml.Node) {
			d.seq(n, func(n *yaml.Node) { m.Types = append(m.Types, d.typeDecl(n)) })
		},
		"domains": func(n *yaml.Node) {
			d.seq(n, func(n *yaml.Node) { m.Domains = append(m.Domains, d.domain(n)) })
		},
	})
	if !versionSeen && doc.Kind == yaml.MappingNode {
		d.add(pos(doc), "missing `version`; add `version: %d` at the top", CurrentVersion)
	} else if versionSeen && m.Version != CurrentVersion {
		d.add(pos(findKey(doc, "version")), "unknown version %d; this generator reads version %d", m.Version, CurrentVersion)
	}
	return m, d.err()
}

// yamlError turns a yaml.v3 syntax error ("yaml: line 3: ...") into an Error
// with a position.
func yamlError(file string, err error) Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.Index(rest, ":"); i > 0 {
			if n, err := strconv.Atoi(rest[:i]); err == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return Error{File: file, Line: line, Col: 1, Msg: "not valid YAML: " + msg}
}

type decoder struct{ errList }

func pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{1, 1}
	}
	return Pos{n.Line, n.Column}
}

func findKey(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return n
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}

// mapping calls the handler of each key of n; unknown and repeated keys are
// errors that list the known ones.
// It returns the position of each value, for errors about that field.
func (d *decoder) mapping(n *yaml.Node, what string, fields map[string]func(*yaml.Node)) map[string]Pos {
	at := map[string]Pos{}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		d.add(pos(n), "%s must be a mapping, not %s", what, kindName(n))
		return at
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := fields[k.Value]
		switch {
		case !ok:
			d.add(pos(k), "unknown field %q in %s; known fields: %s", k.Value, what, known(fields))
		case seen[k.Value]:
			d.add(pos(k), "field %q given twice in %s", k.Value, what)
		default:
			seen[k.Value] = true
			at[k.Value] = pos(v)
			h(v)
		}
	}
	return at
}

func known(fields map[string]func(*yaml.Node)) string {
	return strings.Join(slices.Sorted(maps.Keys(fields)), ", ")
}

func (d *decoder) scalar(n *yaml.Node, want string) bool {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.add(pos(n), "expected %s, found %s", want, kindName(n))
		return false
	}
	return true
}

func (d *decoder) str(n *yaml.Node) string {
	if !d.scalar(n, "a string") {
		return ""
	}
	if n.Tag != "!!str" {
		d.add(pos(n), "expected a string, found %s (quote it)", n.Value)
		return ""
	}
	return n.Value
}

// text returns a scalar's text, whatever its tag (3600 as "3600"); ok is
// false, and the error reported, when n is not a scalar.
func (d *decoder) text(n *yaml.Node, want string) (string, bool) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if !d.scalar(n, want) {
		return "", false
	}
	return n.Value, true
}

func (d *decoder) bool(n *yaml.Node) bool {
	if !d.scalar(n, "true or false") {
		return false
	}
	var b bool
	if n.Tag != "!!bool" || n.Decode(&b) != nil {
		d.add(pos(n), "expected true or false, found %q", n.Value)
	}
	return b
}

func (d *decoder) int(n *yaml.Node) int {
	if !d.scalar(n, "a whole number") {
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if n.Tag != "!!int" || err != nil {
		d.add(pos(n), "expected a whole number, found %q", n.Value)
	}
	return v
}

func (d *decoder) seq(n *yaml.Node, each func(*yaml.Node)) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		d.add(pos(n), "expected a list, found %s", kindName(n))
		return
	}
	for _, c := range n.Content {
		each(c)
	}
}

func (d *decoder) strs(n *yaml.Node) []string {
	var out []string
	d.seq(n, func(c *yaml.Node) { out = append(out, d.str(c)) })
	return out
}

func (d *decoder) typeDecl(n *yaml.Node) *TypeDecl {
	t := &TypeDecl{Pos: pos(n), KeepUnknown: true}
	d.mapping(n, "a type", map[string]func(*yaml.Node){
		"name":         func(v *yaml.Node) { t.Name = d.str(v) },
		"doc":          func(v *yaml.Node) { t.Doc = d.str(v) },
		"include":      func(v *yaml.Node) { t.Include = d.strs(v) },
		"keep_unknown": func(v *yaml.Node) { t.KeepUnknown = d.bool(v) },
		"tuple":        func(v *yaml.Node) { t.Tuple = d.bool(v) },
		"fields": func(v *yaml.Node) {
			d.seq(v, func(c *yaml.Node) { t.Fields = append(t.Fields, d.field(c)) })
		},
	})
	return t
}

func (d *decoder) field(n *yaml.Node) *Field {
	f := &Field{Pos: pos(n)}
	f.at = d.mapping(n, "a field", map[string]func(*yaml.Node){
		"name":     func(v *yaml.Node) { f.Name = d.str(v) },
		"go":       func(v *yaml.Node) { f.GoName = d.str(v) },
		"type":     func(v *yaml.Node) { f.Type = d.str(v) },
		"optional": func(v *yaml.Node) { f.Optional = d.bool(v) },
		"doc":      func(v *yaml.Node) { f.Doc = d.str(v) },
	})
	return f
}

func (d *decoder) domain(n *yaml.Node) *Domain {
	dm := &Domain{Pos: pos(n)}
	dm.at = d.mapping(n, "a domain", map[string]func(*yaml.Node){
		"name":       func(v *yaml.Node) { dm.Name = d.str(v) },
		"doc":        func(v *yaml.Node) { dm.Doc = d.str(v) },
		"collection": func(v *yaml.Node) { dm.Collection = d.str(v) },
		"family":     func(v *yaml.Node) { dm.Family = d.str(v) },
		"key": func(v *yaml.Node) {
			d.seq(v, func(c *yaml.Node) { dm.Key = append(dm.Key, d.keyField(c)) })
		},
		"redis": func(v *yaml.Node) {
			dm.Redis.Pos = pos(v)
			dm.Redis.at = d.mapping(v, "redis", map[string]func(*yaml.Node){
				"prefix": func(v *yaml.Node) { dm.Redis.Prefix = d.str(v) },
				"order":  func(v *yaml.Node) { dm.Redis.Order = d.strs(v) },
			})
		},
		"when":    func(v *yaml.Node) { dm.When = d.bool(v) },
		"removed": func(v *yaml.Node) { dm.Removed = d.bool(v) },
		"as_of": func(v *yaml.Node) {
			b := d.bool(v)
			dm.AsOf = &b
		},
		"payload": func(v *yaml.Node) {
			dm.Payload.Pos = pos(v)
			dm.Payload.at = d.mapping(v, "a payload", map[string]func(*yaml.Node){
				"field":    func(v *yaml.Node) { dm.Payload.Field = d.str(v) },
				"inline":   func(v *yaml.Node) { dm.Payload.Inline = d.bool(v) },
				"type":     func(v *yaml.Node) { dm.Payload.Type = d.str(v) },
				"nullable": func(v *yaml.Node) { dm.Payload.Nullable = d.bool(v) },
				"empty":    func(v *yaml.Node) { dm.Payload.Empty = d.bool(v) },
			})
		},
		"indexes": func(v *yaml.Node) {
			d.seq(v, func(c *yaml.Node) {
				ix := &IndexSpec{Pos: pos(c)}
				d.mapping(c, "an index", map[string]func(*yaml.Node){
					"name": func(v *yaml.Node) { ix.Name = d.str(v) },
					"keys": func(v *yaml.Node) { ix.Keys = d.strs(v) },
				})
				dm.Indexes = append(dm.Indexes, ix)
			})
		},
		"list": func(v *yaml.Node) {
			dm.List = &ListSpec{Pos: pos(v)}
			d.mapping(v, "list", map[string]func(*yaml.Node){
				"id":          func(v *yaml.Node) { dm.List.ID = d.str(v) },
				"read_limit":  func(v *yaml.Node) { dm.List.ReadLimit = d.int(v) },
				"append_only": func(v *yaml.Node) { dm.List.AppendOnly = d.bool(v) },
			})
		},
		"series": func(v *yaml.Node) {
			dm.Series = &SeriesSpec{Pos: pos(v)}
			d.mapping(v, "series", map[string]func(*yaml.Node){
				"axis": func(v *yaml.Node) { dm.Series.Axis = d.str(v) },
				"step": func(v *yaml.Node) { dm.Series.Step = d.str(v) },
			})
		},
		"shard": func(v *yaml.Node) {
			dm.Shard = &ShardSpec{Pos: pos(v)}
			dm.Shard.at = d.mapping(v, "shard", map[string]func(*yaml.Node){
				"fields": func(v *yaml.Node) { dm.Shard.Fields = d.strs(v) },
				"mode":   func(v *yaml.Node) { dm.Shard.Mode = d.str(v) },
			})
		},
		"history": func(v *yaml.Node) {
			dm.History = &HistorySpec{Pos: pos(v)}
			dm.History.at = d.mapping(v, "history", map[string]func(*yaml.Node){
				// Any scalar: resolve explains what a keep must be
				// (a bare number lacks its unit).
				"keep": func(v *yaml.Node) {
					var ok bool
					dm.History.Keep, ok = d.text(v, "forever or a duration")
					dm.History.parseFailed = !ok
				},
			})
			if m := v; m.Kind == yaml.AliasNode && m.Alias != nil {
				v = m.Alias
			}
			if v.Kind != yaml.MappingNode {
				dm.History = nil // reported: not a mapping
			}
		},
		"cache": func(v *yaml.Node) {
			dm.Cache = &CacheSpec{Pos: pos(v)}
			dm.Cache.at = d.mapping(v, "cache", map[string]func(*yaml.Node){
				"mode":      func(v *yaml.Node) { dm.Cache.Mode = d.str(v) },
				"writers":   func(v *yaml.Node) { dm.Cache.Writers = d.str(v) },
				"ttl":       func(v *yaml.Node) { dm.Cache.TTL = d.str(v) },
				"local_ttl": func(v *yaml.Node) { dm.Cache.LocalTTL = d.str(v) },
				"strict":    func(v *yaml.Node) { b := d.bool(v); dm.Cache.Strict = &b },
				"read_ahead": func(v *yaml.Node) {
					n := d.int(v)
					dm.Cache.ReadAhead = &n
				},
			})
		},
	})
	return dm
}

func (d *decoder) keyField(n *yaml.Node) *KeyField {
	k := &KeyField{Pos: pos(n)}
	k.at = d.mapping(n, "a key field", map[string]func(*yaml.Node){
		"name":     func(v *yaml.Node) { k.Name = d.str(v) },
		"go":       func(v *yaml.Node) { k.GoName = d.str(v) },
		"type":     func(v *yaml.Node) { k.Type = d.str(v) },
		"optional": func(v *yaml.Node) { k.Optional = d.bool(v) },
		"words":    func(v *yaml.Node) { k.Words = d.strs(v) },
	})
	return k
}
