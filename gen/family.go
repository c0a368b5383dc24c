package gen

import "github.com/dave/jennifer/jen"

// family is one family of operations (docs/manifest.md, "Families"): everything the generator
// knows about it is in its row of familyTable. Adding a family is adding a
// row.
type family struct {
	name string
	// when: the family's writes carry a simulation time (a when column).
	when bool
	// doc says what a repository of the family is, without naming any
	// domain: it ends the repository type's comment.
	doc string
	// check validates what is particular to the family and fills the
	// domain's family-specific spec; it runs once the key is sound.
	check func(r *resolver, d *Domain, ds *domainSpec, what string)
	// methods emit the repository's methods, in order.
	methods []func(g *generator, f *jen.File, d *domainSpec)
	// history emit the methods a domain with history (`history:`) gets on
	// top of methods, in order: the known-at forms of its reads.
	history []func(g *generator, f *jen.File, d *domainSpec)
}

func familyTable() []*family {
	return []*family{
		{
			name:    "single",
			when:    true,
			doc:     "one row per key, read and written whole",
			check:   func(*resolver, *Domain, *domainSpec, string) {},
			methods: []func(*generator, *jen.File, *domainSpec){(*generator).emitGet, (*generator).emitPut},
			history: []func(*generator, *jen.File, *domainSpec){(*generator).emitGetAt, (*generator).emitHistory},
		},
		{
			name:    "bucket",
			when:    true,
			doc:     "entries grouped by the key's leading fields, soft-deleted and listed per group",
			check:   checkBucket,
			methods: []func(*generator, *jen.File, *domainSpec){(*generator).emitGet, (*generator).emitPut, (*generator).emitBucket},
			history: []func(*generator, *jen.File, *domainSpec){(*generator).emitGetAt, (*generator).emitHistory, (*generator).emitListAt},
		},
		{
			name:    "list",
			doc:     "items written in bulk, each under its own id, and read newest first",
			check:   checkList,
			methods: []func(*generator, *jen.File, *domainSpec){(*generator).emitListWrite, (*generator).emitListRead},
			history: []func(*generator, *jen.File, *domainSpec){(*generator).emitGetAllAt},
		},
		{
			name:    "series",
			doc:     "an immutable time series, written once per element and read in windows",
			check:   checkSeries,
			methods: []func(*generator, *jen.File, *domainSpec){(*generator).emitGet, (*generator).emitSeriesPut, (*generator).emitWindow},
			history: []func(*generator, *jen.File, *domainSpec){(*generator).emitGetAt, (*generator).emitHistory},
		},
	}
}

func familyNamed(name string) *family {
	for _, f := range familyTable() {
		if f.name == name {
			return f
		}
	}
	return nil
}

func familyNames() []string {
	var out []string
	for _, f := range familyTable() {
		out = append(out, f.name)
	}
	return out
}

// block is a family's own configuration block of a domain (`list:`,
// `series:`), which no other family may carry.
type block struct {
	family string
	given  bool
	pos    Pos
}

func familyBlocks(d *Domain) []block {
	var out []block
	if d.List != nil {
		out = append(out, block{"list", true, d.List.Pos})
	}
	if d.Series != nil {
		out = append(out, block{"series", true, d.Series.Pos})
	}
	return out
}

func checkBucket(r *resolver, d *Domain, ds *domainSpec, what string) {
	if !d.Removed {
		r.add(d.Pos, "%s is a bucket, which soft-deletes: set `removed: true`", what)
	}
}

func checkList(r *resolver, d *Domain, ds *domainSpec, what string) {
	l := d.List
	if l == nil {
		r.add(d.Pos, "%s is a list: add `list: {id: <payload field holding the item id>, read_limit: N}`", what)
		return
	}
	if l.ReadLimit <= 0 {
		r.add(l.Pos, "%s: list read_limit must be a positive number (how many items a read returns, newest first)", what)
	}
	if last := ds.last(); last.typ != "string" {
		r.add(l.Pos, "%s: the last key field (%q) holds each item's id and must be a string", what, last.name)
	}
	t := ds.payload.decl
	if t == nil {
		r.add(l.Pos, "%s: a list's payload must be a type declared under `types`, with the id field %q", what, l.ID)
		return
	}
	f := t.field(l.ID)
	switch {
	case f == nil:
		r.add(l.Pos, "%s: list id %q is not a field of %s", what, l.ID, t.name)
	case f.typ.Kind != refBuiltin || f.typ.Name != "string":
		r.add(l.Pos, "%s: list id field %q must be a string, it is %s", what, l.ID, f.typ)
	default:
		ds.list = &listSpec{idGo: f.goName, idName: f.name, readLimit: l.ReadLimit, appendOnly: l.AppendOnly}
	}
}

func checkSeries(r *resolver, d *Domain, ds *domainSpec, what string) {
	s := d.Series
	if s == nil {
		r.add(d.Pos, "%s is a series: add `series: {axis: <last key field, epoch ms>, step: <key field holding the interval>}`", what)
		return
	}
	axis := ds.last()
	axisOK := false
	switch {
	case axis.name != s.Axis:
		r.add(s.Pos, "%s: series axis %q must be the last key field", what, s.Axis)
	case axis.typ != "float64" && axis.typ != "int64":
		r.add(s.Pos, "%s: series axis %q must be float64 or int64 epoch milliseconds", what, s.Axis)
	default:
		axisOK = true
	}
	var step *keySpec
	for _, k := range ds.key {
		if k.name == s.Step && k.typ == "string" && k != axis {
			step = k
		}
	}
	if step == nil {
		r.add(s.Pos, "%s: series step %q must be a string key field holding the interval (1m, 5m, 1h...)", what, s.Step)
	}
	if ds.payload.typ != nil && !d.Payload.Inline {
		r.add(d.Payload.Pos, "%s: a series stores its elements at the top level: set `inline: true`", what)
		return
	}
	t := ds.payload.decl
	if !axisOK || t == nil {
		return
	}
	f := t.field(axis.name)
	switch {
	case f == nil:
		r.add(s.Pos, "%s: series axis %q is not a field of %s; each element carries its own time: add the field `%s` (type %s)", what, axis.name, t.name, axis.name, axis.typ)
	case f.typ.String() != string(axis.typ):
		r.add(s.Pos, "%s: series axis %q is %s in the key but %s in %s; give both the same type", what, axis.name, axis.typ, f.typ, t.name)
	case step != nil:
		ds.series = &seriesSpec{axis: axis, axisGo: f.goName, step: step}
	}
}
