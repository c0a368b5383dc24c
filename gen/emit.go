package gen

import (
	"bytes"
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dave/jennifer/jen"

	"github.com/persistgen/persistgen/schema"
)

const (
	runtimePkg = "github.com/persistgen/persistgen/runtime"
	bsonPkg    = "go.mongodb.org/mongo-driver/v2/bson"
)

// Options configures generation.
type Options struct {
	// ImportPath is the Go import path of the generated package.
	ImportPath string
	// Manifest names the manifest in the files' header (see Header): the
	// path the generated package's directory reaches it by, such as
	// ../domains.yaml, or its base name. Empty: the base name of the file
	// name the manifest was loaded under.
	Manifest string
}

// Generate renders a resolved manifest: file name -> content, in a
// deterministic form (manifest order, never map order). It writes nothing.
func Generate(s *Spec, o Options) (map[string][]byte, error) {
	if s == nil || s.pkg == "" {
		return nil, fmt.Errorf("generate: no resolved spec given; build one with Load or Resolve")
	}
	g := &generator{s: s, o: o}
	out := map[string][]byte{}
	for _, a := range g.artifacts() {
		f := g.newFile()
		a.emit(f)
		var buf bytes.Buffer
		if err := f.Render(&buf); err != nil {
			return nil, fmt.Errorf("render %s: %w", a.file, err)
		}
		src, err := formatGrouped(buf.Bytes())
		if err != nil {
			return nil, fmt.Errorf("format %s: %w\n%s", a.file, err, buf.Bytes())
		}
		out[a.file] = src
	}
	return out, nil
}

// Names returns the file names of a generated tree in sorted order.
func Names(files map[string][]byte) []string { return slices.Sorted(maps.Keys(files)) }

type generator struct {
	s *Spec
	o Options
}

// artifact is one generated file: adding an artifact is one row.
type artifact struct {
	file string
	emit func(*jen.File)
}

func (g *generator) artifacts() []artifact {
	var out []artifact
	if len(g.s.types) > 0 {
		out = append(out, artifact{"types.go", g.emitTypes})
	}
	for _, d := range g.s.domains {
		out = append(out, artifact{d.name + ".go", func(f *jen.File) {
			g.emitKey(f, d)
			g.emitSchema(f, d)
			g.emitRepo(f, d)
			for _, m := range d.fam.methods {
				m(g, f, d)
			}
			if d.history != nil {
				for _, m := range d.fam.history {
					m(g, f, d)
				}
			}
		}})
	}
	return append(out, artifact{"registry.go", g.emitRegistry})
}

func (g *generator) newFile() *jen.File {
	f := jen.NewFilePathName(g.o.ImportPath, g.s.pkg)
	f.NoFormat = true // formatGrouped formats it, its imports grouped
	manifest := g.o.Manifest
	if manifest == "" && g.s.file != "" {
		manifest = path.Base(filepath.ToSlash(g.s.file))
	}
	f.HeaderComment(Header(manifest))
	f.ImportName(runtimePkg, "runtime")
	f.ImportName(bsonPkg, "bson")
	f.ImportName("context", "context")
	f.ImportName("errors", "errors")
	f.ImportName("iter", "iter")
	f.ImportName("time", "time")
	return f
}

// typeCode renders a type reference.
func typeCode(t *TypeRef) jen.Code {
	switch t.Kind {
	case refSlice:
		return jen.Index().Add(typeCode(t.Elem))
	case refMap:
		return jen.Map(jen.String()).Add(typeCode(t.Elem))
	case refPointer:
		return jen.Op("*").Add(typeCode(t.Elem))
	case refQualified:
		return jen.Qual(t.Path, t.Name)
	case refBuiltin:
		if t.Name == "any" {
			return jen.Any()
		}
	}
	return jen.Id(t.Name)
}

// payloadType is the Go type of a domain's payload (a pointer when nullable).
func payloadType(d *domainSpec) jen.Code {
	if d.payload.nullable {
		return jen.Op("*").Add(typeCode(d.payload.typ))
	}
	return typeCode(d.payload.typ)
}

func keyType(t schema.KeyType) jen.Code { return jen.Id(string(t)) }

// comment writes a comment made of text: each line its own // comment,
// rendered as written, so that no text from the manifest (a doc, a
// collection name) can end a comment, start a directive or become code.
func comment(f *jen.File, format string, args ...any) {
	for _, line := range commentLines(fmt.Sprintf(format, args...)) {
		f.Comment(line)
	}
}

// commentLines renders text as // lines (jen writes a comment that starts
// with // as it is).
func commentLines(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r \t")
		if line == "" {
			out = append(out, "//")
		} else {
			out = append(out, "// "+line)
		}
	}
	return out
}

func doc(f *jen.File, text string) {
	if text != "" {
		comment(f, "%s", text)
	}
}

// ---- declared types

func (g *generator) emitTypes(f *jen.File) {
	for _, t := range g.s.types {
		text := t.doc
		if text == "" {
			text = t.name + " is a payload type declared in the manifest."
		}
		doc(f, text)
		var fields []jen.Code
		for _, fl := range t.fields {
			tag := fl.name
			if fl.optional {
				tag += ",omitempty"
			}
			c := jen.Id(fl.goName).Add(typeCode(fl.typ)).Tag(map[string]string{"bson": tag, "json": tag})
			if fl.doc != "" {
				for _, line := range commentLines(fl.doc) {
					fields = append(fields, jen.Comment(line))
				}
			}
			fields = append(fields, c)
		}
		if t.keepUnknown {
			fields = append(fields,
				jen.Comment("Extra keeps the fields another engine wrote that this type does not name;"),
				jen.Comment("they are written back unchanged."),
				jen.Id("Extra").Map(jen.String()).Any().Tag(map[string]string{"bson": ",inline", "json": "-"}),
				jen.Comment("Shape records the fields the stored document lacked or held as null;"),
				jen.Comment("they are written back so, unless set to a non-empty value."),
				jen.Id("Shape").Qual(runtimePkg, "Shape").Tag(map[string]string{"bson": "-", "json": "-"}))
		}
		f.Type().Id(t.name).Struct(fields...)
		f.Line()
		if t.tuple {
			g.emitTuple(f, t)
		}
		if t.keepUnknown {
			g.emitPresence(f, t)
		}
	}
}

// emitPresence makes a type remember which of its fields a stored document
// lacked or held as null (Shape) and keep them so when it is written back.
func (g *generator) emitPresence(f *jen.File, t *typeSpec) {
	var known, nullable []jen.Code
	for _, fl := range t.fields {
		if !fl.optional { // optional fields are omitted when empty anyway
			known = append(known, jen.Lit(fl.name))
		}
		// A nil pointer, slice, map or any is written as null already,
		// unless omitted when empty: only the others need their null kept.
		if fl.optional || !nilable(fl.typ) {
			nullable = append(nullable, jen.Lit(fl.name))
		}
	}
	comment(f, "MarshalBSON writes %s, restoring the Shape it was read with.", t.name)
	f.Func().Params(jen.Id("t").Id(t.name)).Id("MarshalBSON").Params().Params(jen.Index().Byte(), jen.Error()).Block(
		jen.Type().Id("plain").Id(t.name),
		jen.List(jen.Id("data"), jen.Err()).Op(":=").Qual(bsonPkg, "Marshal").Call(jen.Id("plain").Call(jen.Id("t"))),
		jen.If(jen.Err().Op("!=").Nil().Op("||").Id("t").Dot("Shape").Dot("IsZero").Call()).Block(jen.Return(jen.Id("data"), jen.Err())),
		jen.Return(jen.Id("t").Dot("Shape").Dot("Restore").Call(jen.Id("data"))),
	)
	f.Line()
	comment(f, "UnmarshalBSON reads %s and records in Shape the fields the document lacks or holds as null.", t.name)
	f.Func().Params(jen.Id("t").Op("*").Id(t.name)).Id("UnmarshalBSON").Params(jen.Id("data").Index().Byte()).Error().Block(
		jen.Type().Id("plain").Id(t.name),
		jen.Op("*").Id("t").Op("=").Id(t.name).Values(),
		jen.If(jen.Err().Op(":=").Qual(bsonPkg, "Unmarshal").Call(jen.Id("data"), jen.Parens(jen.Op("*").Id("plain")).Call(jen.Id("t"))), jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Err())),
		jen.Id("t").Dot("Shape").Op("=").Qual(runtimePkg, "ShapeOf").Call(jen.Id("data"), jen.Index().String().Values(known...), jen.Index().String().Values(nullable...)),
		jen.Return(jen.Nil()),
	)
	f.Line()
}

// nilable reports a type whose zero value is nil (written as null).
func nilable(t *TypeRef) bool {
	switch t.Kind {
	case refSlice, refMap, refPointer:
		return true
	case refBuiltin:
		return t.Name == "any"
	}
	return false
}

func (g *generator) emitTuple(f *jen.File, t *typeSpec) {
	var vals, names, ptrs []jen.Code
	for _, fl := range t.fields {
		vals = append(vals, jen.Id("t").Dot(fl.goName))
		names = append(names, jen.Lit(fl.name))
		ptrs = append(ptrs, jen.Op("&").Id("t").Dot(fl.goName))
	}
	comment(f, "MarshalBSONValue stores %s as an array of its fields, in order.", t.name)
	f.Func().Params(jen.Id("t").Id(t.name)).Id("MarshalBSONValue").Params().Params(jen.Byte(), jen.Index().Byte(), jen.Error()).Block(
		jen.Return(jen.Qual(runtimePkg, "MarshalTuple").Call(vals...)),
	)
	f.Line()
	comment(f, "%s is %s stored as a document of its fields, for servers that", tupleDoc(t.name), t.name)
	comment(f, "reject nested arrays (FerretDB v1); see runtime.Config.TupleForm.")
	f.Type().Id(tupleDoc(t.name)).Id(t.name)
	f.Line()
	comment(f, "UnmarshalBSONValue reads %s from an array of its fields or from a document.", t.name)
	f.Func().Params(jen.Id("t").Op("*").Id(t.name)).Id("UnmarshalBSONValue").Params(jen.Id("typ").Byte(), jen.Id("data").Index().Byte()).Error().Block(
		jen.Return(jen.Qual(runtimePkg, "UnmarshalTuple").Call(append([]jen.Code{jen.Id("typ"), jen.Id("data"), jen.Index().String().Values(names...)}, ptrs...)...)),
	)
	f.Line()
}

// ---- per domain

func keyName(d *domainSpec) string    { return d.goName + "Key" }
func repoName(d *domainSpec) string   { return d.goName + "Repo" }
func schemaName(d *domainSpec) string { return d.goName + "Schema" }

// keysVar names the package-level compiled key rules of d.
func keysVar(d *domainSpec) string { return lowerIdent(d.goName) + "Keys" }

func (g *generator) emitKey(f *jen.File, d *domainSpec) {
	kn := keyName(d)
	var fields, vals []jen.Code
	for _, k := range d.key {
		fields = append(fields, jen.Id(k.goName).Add(keyType(k.typ)).Tag(map[string]string{"bson": k.name, "json": k.name}))
		vals = append(vals, jen.Id("k").Dot(k.goName))
	}
	comment(f, "%s is the key of a %s row: its unique index, in order.", kn, d.name)
	f.Type().Id(kn).Struct(fields...)
	f.Line()
	comment(f, "KeyValues returns the key's values in unique-index order.")
	f.Func().Params(jen.Id("k").Id(kn)).Id("KeyValues").Params().Index().Any().Block(
		jen.Return(jen.Index().Any().Values(vals...)),
	)
	f.Line()
	var decode []jen.Code
	for _, k := range d.key {
		fn := map[schema.KeyType]string{"string": "KeyString", "bool": "KeyBool", "float64": "KeyFloat64", "int64": "KeyInt64"}[k.typ]
		decode = append(decode,
			jen.If(jen.List(jen.Id("k").Dot(k.goName), jen.Err()).Op("=").Qual(runtimePkg, fn).Call(jen.Id("raw"), jen.Lit(k.name)), jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Err())))
	}
	comment(f, "DecodeKey reads the key fields of a stored document (runtime.KeyDecoder).")
	f.Func().Params(jen.Id("k").Op("*").Id(kn)).Id("DecodeKey").Params(jen.Id("raw").Qual(bsonPkg, "Raw")).Params(jen.Err().Error()).Block(
		append(decode, jen.Return(jen.Nil()))...,
	)
	f.Line()
	comment(f, "%s are the key rules of %s, compiled once.", keysVar(d), d.name)
	f.Var().Id(keysVar(d)).Op("=").Qual(runtimePkg, "MustCompileKeys").Call(jen.Id(schemaName(d)).Call())
	f.Line()
	comment(f, "Validate reports an empty or malformed key part (runtime.ErrInvalidKey).")
	f.Func().Params(jen.Id("k").Id(kn)).Id("Validate").Params().Error().Block(
		jen.Return(jen.Id(keysVar(d)).Dot("Validate").Call(jen.Id("k"))),
	)
	f.Line()
	comment(f, "RedisKey returns the Redis identity key, %s:..., without a Conn's KeyPrefix.", d.redisPrefix)
	f.Func().Params(jen.Id("k").Id(kn)).Id("RedisKey").Params().Params(jen.String(), jen.Error()).Block(
		jen.Return(jen.Id(keysVar(d)).Dot("RedisKey").Call(jen.Lit(""), jen.Id("k"))),
	)
	f.Line()
	comment(f, "Filter returns the compound filter equal to the unique index.")
	f.Func().Params(jen.Id("k").Id(kn)).Id("Filter").Params().Params(jen.Qual(bsonPkg, "D"), jen.Error()).Block(
		jen.Return(jen.Id(keysVar(d)).Dot("Filter").Call(jen.Id("k"))),
	)
	f.Line()
}

func (g *generator) emitSchema(f *jen.File, d *domainSpec) {
	s := d.schema
	var keys []jen.Code
	for _, k := range s.Key {
		kv := jen.Dict{jen.Id("Name"): jen.Lit(k.Name)}
		if k.Type != "" {
			kv[jen.Id("Type")] = jen.Lit(string(k.Type))
		}
		if k.Optional {
			kv[jen.Id("Optional")] = jen.True()
		}
		if k.TrueWord != "" {
			kv[jen.Id("TrueWord")] = jen.Lit(k.TrueWord)
			kv[jen.Id("FalseWord")] = jen.Lit(k.FalseWord)
		}
		keys = append(keys, jen.Values(kv))
	}
	fields := jen.Dict{
		jen.Id("Domain"):      jen.Lit(s.Domain),
		jen.Id("Collection"):  jen.Lit(s.Collection),
		jen.Id("Key"):         jen.Index().Qual(runtimePkg, "KeyField").Values(keys...),
		jen.Id("RedisPrefix"): jen.Lit(s.RedisPrefix),
	}
	if s.RedisOrder != nil {
		var order []jen.Code
		for _, o := range s.RedisOrder {
			order = append(order, jen.Lit(o))
		}
		fields[jen.Id("RedisOrder")] = jen.Index().String().Values(order...)
	}
	if s.HasWhen {
		fields[jen.Id("HasWhen")] = jen.True()
	}
	if s.HasRemoved {
		fields[jen.Id("HasRemoved")] = jen.True()
	}
	if s.PayloadRemoved {
		fields[jen.Id("PayloadRemoved")] = jen.True()
	}
	if s.Payload != "" {
		fields[jen.Id("Payload")] = jen.Lit(s.Payload)
	}
	if s.Cache != "" {
		fields[jen.Id("Cache")] = jen.Qual(runtimePkg, cacheConst(s.Cache))
	}
	if s.CacheTTL != 0 {
		fields[jen.Id("CacheTTL")] = durationCode(s.CacheTTL)
	}
	if s.LocalTTL != 0 {
		fields[jen.Id("LocalTTL")] = durationCode(s.LocalTTL)
	}
	if s.CacheStrict {
		fields[jen.Id("CacheStrict")] = jen.True()
	}
	if s.SeriesReadAhead != 0 {
		fields[jen.Id("SeriesReadAhead")] = jen.Lit(s.SeriesReadAhead)
	}
	if s.Shard != nil {
		var fs []jen.Code
		for _, f := range s.Shard.Fields {
			fs = append(fs, jen.Lit(f))
		}
		fields[jen.Id("Shard")] = jen.Op("&").Qual(runtimePkg, "ShardKey").Values(jen.Dict{jen.Id("Fields"): jen.Index().String().Values(fs...)})
	}
	if len(s.Indexes) > 0 {
		var ixs []jen.Code
		for _, ix := range s.Indexes {
			var ks []jen.Code
			for _, k := range ix.Keys {
				kd := jen.Dict{jen.Id("Field"): jen.Lit(k.Field)}
				if k.Desc {
					kd[jen.Id("Desc")] = jen.True()
				}
				ks = append(ks, jen.Values(kd))
			}
			ixs = append(ixs, jen.Values(jen.Dict{jen.Id("Name"): jen.Lit(ix.Name), jen.Id("Keys"): jen.Index().Qual(runtimePkg, "IndexKey").Values(ks...)}))
		}
		fields[jen.Id("Indexes")] = jen.Index().Qual(runtimePkg, "Index").Values(ixs...)
	}
	if s.History != nil {
		fields[jen.Id("History")] = jen.Op("&").Qual(runtimePkg, "History").Values(historyFields(s.History))
	}
	comment(f, "%s describes the %s domain to the runtime: collection %s.", schemaName(d), d.name, d.collection)
	if s.History != nil {
		comment(f, "Every version of its rows is kept in %s, %s.", s.HistoryCollection(), keepText(s.History.Keep))
	}
	f.Func().Id(schemaName(d)).Params().Op("*").Qual(runtimePkg, "Schema").Block(
		jen.Return(jen.Op("&").Qual(runtimePkg, "Schema").Values(fields)),
	)
	f.Line()
}

func runtimeRepo(d *domainSpec) *jen.Statement {
	return jen.Op("*").Qual(runtimePkg, "Repo").Types(jen.Id(keyName(d)), payloadType(d))
}

func tupleDoc(name string) string { return lowerFirst(name) + "Document" }

// tupleList returns the tuple type when d's payload is a list of tuples
// (the shape FerretDB v1 rejects), else "".
func (g *generator) tupleList(d *domainSpec) string {
	t := d.payload.typ
	if t.Kind != refSlice || t.Elem.Kind != refDeclared {
		return ""
	}
	for _, ts := range g.s.types {
		if ts.name == t.Elem.Name && ts.tuple {
			return ts.name
		}
	}
	return ""
}

func (g *generator) emitRepo(f *jen.File, d *domainSpec) {
	rn := repoName(d)
	text := d.doc
	if text == "" {
		text = "the " + d.name + " domain"
	}
	comment(f, "%s is the repository of %s: %s.", rn, text, d.fam.doc)
	f.Type().Id(rn).Struct(jen.Id("repo").Add(runtimeRepo(d)))
	f.Line()
	body := []jen.Code{
		jen.List(jen.Id("r"), jen.Err()).Op(":=").Qual(runtimePkg, "NewRepo").Types(jen.Id(keyName(d)), payloadType(d)).Call(jen.Id("c"), jen.Id(schemaName(d)).Call()),
		jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Err())),
	}
	if tn := g.tupleList(d); tn != "" {
		body = append(body,
			jen.Comment("Tuples go in the form the server accepts: arrays, or documents where nested arrays are rejected."),
			jen.Id("r").Dot("SetPayloadEncoder").Call(jen.Func().Params(jen.Id("v").Add(payloadType(d)), jen.Id("asDocuments").Bool()).Any().Block(
				jen.If(jen.Op("!").Id("asDocuments")).Block(jen.Return(jen.Id("v"))),
				jen.Id("out").Op(":=").Make(jen.Index().Id(tupleDoc(tn)), jen.Len(jen.Id("v"))),
				jen.For(jen.Id("i").Op(":=").Range().Id("v")).Block(
					jen.Id("out").Index(jen.Id("i")).Op("=").Id(tupleDoc(tn)).Call(jen.Id("v").Index(jen.Id("i"))),
				),
				jen.Return(jen.Id("out")),
			)),
		)
	}
	body = append(body, jen.Return(jen.Op("&").Id(rn).Values(jen.Dict{jen.Id("repo"): jen.Id("r")}), jen.Nil()))
	comment(f, "New%s builds the %s repository on c.", rn, d.name)
	f.Func().Id("New"+rn).Params(jen.Id("c").Op("*").Qual(runtimePkg, "Conn")).Params(jen.Op("*").Id(rn), jen.Error()).Block(body...)
	f.Line()
	comment(f, "Runtime returns the generic repository underneath: batch reads and writes, lists with any options.")
	f.Func().Params(jen.Id("r").Op("*").Id(rn)).Id("Runtime").Params().Add(runtimeRepo(d)).Block(jen.Return(jen.Id("r").Dot("repo")))
	f.Line()
}

func ctxParam() jen.Code { return jen.Id("ctx").Qual("context", "Context") }

func recv(d *domainSpec) jen.Code { return jen.Id("r").Op("*").Id(repoName(d)) }

// emptyFix returns statements that turn a nil payload into the domain's
// empty value ([] or {}) when the manifest asks for one.
func emptyFix(d *domainSpec) []jen.Code {
	if !d.payload.empty {
		return nil
	}
	return []jen.Code{jen.If(jen.Id("v").Op("==").Nil()).Block(jen.Id("v").Op("=").Add(payloadType(d)).Values())}
}

func (g *generator) emitGet(f *jen.File, d *domainSpec) {
	absent := "the zero value"
	if d.payload.empty {
		absent = "an empty value, never nil"
	}
	comment(f, "Get reads the payload of k; ok is false (with %s) when k has no row%s.", absent, removedNote(d))
	body := append([]jen.Code{
		jen.List(jen.Id("v"), jen.Id("ok"), jen.Err()).Op(":=").Qual(runtimePkg, "PayloadOf").Call(jen.Id("r").Dot("repo").Dot("Get").Call(jen.Id("ctx"), jen.Id("k"))),
	}, emptyFix(d)...)
	body = append(body, jen.Return(jen.Id("v"), jen.Id("ok"), jen.Err()))
	f.Func().Params(recv(d)).Id("Get").Params(ctxParam(), jen.Id("k").Id(keyName(d))).Params(payloadType(d), jen.Bool(), jen.Error()).Block(body...)
	f.Line()
	if d.asOf {
		comment(f, "GetAsOf reads k's payload only if it was written at or before asOf (the database enforces it):")
		comment(f, "a backtest never sees a row from its future.")
		body := append([]jen.Code{
			jen.List(jen.Id("v"), jen.Id("ok"), jen.Err()).Op(":=").Qual(runtimePkg, "PayloadOf").Call(jen.Id("r").Dot("repo").Dot("GetAsOf").Call(jen.Id("ctx"), jen.Id("k"), jen.Id("asOf"))),
		}, emptyFix(d)...)
		body = append(body, jen.Return(jen.Id("v"), jen.Id("ok"), jen.Err()))
		f.Func().Params(recv(d)).Id("GetAsOf").Params(ctxParam(), jen.Id("k").Id(keyName(d)), jen.Id("asOf").Qual("time", "Time")).Params(payloadType(d), jen.Bool(), jen.Error()).Block(body...)
		f.Line()
	}
}

func removedNote(d *domainSpec) string {
	if d.removed {
		return " or its row is removed"
	}
	return ""
}

func (g *generator) emitPut(f *jen.File, d *domainSpec) {
	params := []jen.Code{ctxParam(), jen.Id("k").Id(keyName(d)), jen.Id("v").Add(payloadType(d))}
	when := jen.Qual("time", "Time").Values()
	text := "Put writes v under k, last writer wins."
	if d.payload.nullable {
		text = "Put writes v under k, last writer wins; a nil v stores nothing (a null payload) and keeps the row."
	}
	if d.when {
		params = append(params, jen.Id("when").Qual("time", "Time"))
		when = jen.Id("when")
		text = text[:len(text)-1] + ", stamped with the simulation time when (a smaller when overwrites a larger one)."
	}
	comment(f, "%s", text)
	f.Func().Params(recv(d)).Id("Put").Params(params...).Error().Block(
		jen.Return(jen.Id("r").Dot("repo").Dot("Put").Call(jen.Id("ctx"), jen.Id("k"), jen.Id("v"), when)),
	)
	f.Line()
}

func (g *generator) emitBucket(f *jen.File, d *domainSpec) {
	comment(f, "Remove soft-deletes k's row: reads and lists no longer see it, Has still does.")
	comment(f, "Removing an absent key creates nothing. It reports whether a row was removed.")
	f.Func().Params(recv(d)).Id("Remove").Params(ctxParam(), jen.Id("k").Id(keyName(d))).Params(jen.Bool(), jen.Error()).Block(
		jen.Return(jen.Id("r").Dot("repo").Dot("Remove").Call(jen.Id("ctx"), jen.Id("k"))),
	)
	f.Line()
	comment(f, "Has reports whether k has a row, removed or not.")
	f.Func().Params(recv(d)).Id("Has").Params(ctxParam(), jen.Id("k").Id(keyName(d))).Params(jen.Bool(), jen.Error()).Block(
		jen.Return(jen.Id("r").Dot("repo").Dot("Exists").Call(jen.Id("ctx"), jen.Id("k"))),
	)
	f.Line()
	params, vals := prefixParams(d)
	comment(f, "List yields the rows under %s that are not removed, in key order.", prefixDesc(d))
	f.Func().Params(recv(d)).Id("List").Params(append([]jen.Code{ctxParam()}, params...)...).
		Qual("iter", "Seq2").Types(jen.Qual(runtimePkg, "Record").Types(jen.Id(keyName(d)), payloadType(d)), jen.Error()).Block(
		jen.Return(jen.Id("r").Dot("repo").Dot("List").Call(jen.Id("ctx"), jen.Qual(runtimePkg, "ListOptions").Values(jen.Dict{
			jen.Id("Prefix"): jen.Index().Any().Values(vals...),
		}))),
	)
	f.Line()
}

// prefixParams are the parameters (and their values) naming the key
// without its last field.
func prefixParams(d *domainSpec) (params, vals []jen.Code) {
	for _, k := range d.prefix() {
		params = append(params, jen.Id(lowerFirst(k.goName)).Add(keyType(k.typ)))
		vals = append(vals, jen.Id(lowerFirst(k.goName)))
	}
	return params, vals
}

func prefixDesc(d *domainSpec) string {
	if len(d.prefix()) == 0 {
		return "the whole domain"
	}
	var names []string
	for _, k := range d.prefix() {
		names = append(names, lowerFirst(k.goName))
	}
	return strings.Join(names, ", ")
}

// itemsParam is the parameter of a bulk write: items of the payload type.
func itemsParam(d *domainSpec) jen.Code { return jen.Id("items").Index().Add(payloadType(d)) }

// buildBatch turns items into runtime items keyed by the prefix parameters
// and, for the last key field, last (an expression on the item "it").
func buildBatch(d *domainSpec, last jen.Code) []jen.Code {
	keyVals := jen.Dict{jen.Id(d.last().goName): last}
	for _, k := range d.prefix() {
		keyVals[jen.Id(k.goName)] = jen.Id(lowerFirst(k.goName))
	}
	item := jen.Qual(runtimePkg, "Item").Types(jen.Id(keyName(d)), payloadType(d))
	return []jen.Code{
		jen.Id("batch").Op(":=").Make(jen.Index().Add(item), jen.Len(jen.Id("items"))),
		jen.For(jen.List(jen.Id("i"), jen.Id("it")).Op(":=").Range().Id("items")).Block(
			jen.Id("batch").Index(jen.Id("i")).Op("=").Add(item).Values(jen.Dict{
				jen.Id("Key"):     jen.Id(keyName(d)).Values(keyVals),
				jen.Id("Payload"): jen.Id("it"),
			}),
		),
	}
}

func (g *generator) emitListWrite(f *jen.File, d *domainSpec) {
	params, _ := prefixParams(d)
	params = append(append([]jen.Code{ctxParam()}, params...), itemsParam(d))
	build := buildBatch(d, jen.Id("it").Dot(d.list.idGo))
	if d.list.appendOnly {
		comment(f, "Append stores items under %s, each keyed by its %s; an item whose id is already stored", prefixDesc(d), d.list.idName)
		comment(f, "is kept as it was (entries are never overwritten). It reports how many were new.")
		f.Func().Params(recv(d)).Id("Append").Params(params...).Params(jen.Int(), jen.Error()).Block(
			append(build, jen.Return(jen.Id("r").Dot("repo").Dot("InsertMany").Call(jen.Id("ctx"), jen.Id("batch"))))...,
		)
	} else {
		comment(f, "PutAll writes items under %s, each keyed by its %s, last writer wins, in bulk.", prefixDesc(d), d.list.idName)
		f.Func().Params(recv(d)).Id("PutAll").Params(params...).Error().Block(
			append(build, jen.Return(jen.Id("r").Dot("repo").Dot("PutMany").Call(jen.Id("ctx"), jen.Id("batch"))))...,
		)
	}
	f.Line()
}

func (g *generator) emitListRead(f *jen.File, d *domainSpec) {
	params, vals := prefixParams(d)
	comment(f, "ReadLimit is how many items GetAll returns at most.")
	f.Func().Params(recv(d)).Id("ReadLimit").Params().Int().Block(jen.Return(jen.Lit(d.list.readLimit)))
	f.Line()
	comment(f, "GetAll reads the items under %s, newest first, at most ReadLimit (%d); none is an empty slice.", prefixDesc(d), d.list.readLimit)
	f.Func().Params(recv(d)).Id("GetAll").Params(append([]jen.Code{ctxParam()}, params...)...).Params(jen.Index().Add(payloadType(d)), jen.Error()).Block(
		jen.Return(jen.Qual(runtimePkg, "Payloads").Call(jen.Id("r").Dot("repo").Dot("List").Call(jen.Id("ctx"), jen.Qual(runtimePkg, "ListOptions").Values(jen.Dict{
			jen.Id("Prefix"): jen.Index().Any().Values(vals...),
			jen.Id("Sort"):   jen.Qual(runtimePkg, "NewestFirst").Call(),
			jen.Id("Limit"):  jen.Lit(d.list.readLimit),
		})), jen.Lit(d.list.readLimit))),
	)
	f.Line()
}

func (g *generator) emitSeriesPut(f *jen.File, d *domainSpec) {
	s := d.series
	params, _ := prefixParams(d)
	comment(f, "Put stores items under %s, first write wins: a stored element never changes.", prefixDesc(d))
	comment(f, "An element that is not closed yet (%s + %s >= now) is skipped, so it is never", s.axis.name, s.step.name)
	comment(f, "frozen half-formed. It reports how many were newly stored; two round trips for any count.")
	f.Func().Params(recv(d)).Id("Put").Params(append(append([]jen.Code{ctxParam()}, params...), itemsParam(d))...).Params(jen.Int(), jen.Error()).Block(
		append(buildBatch(d, jen.Id("it").Dot(s.axisGo)),
			jen.Return(jen.Qual(runtimePkg, "PutSeries").Call(jen.Id("ctx"), jen.Id("r").Dot("repo"), jen.Id(lowerFirst(s.step.goName)), jen.Id("batch"))))...,
	)
	f.Line()
}

func (g *generator) emitWindow(f *jen.File, d *domainSpec) {
	s := d.series
	params, vals := prefixParams(d)
	comment(f, "Window reads limit elements under %s from since (epoch ms): exactly limit,", prefixDesc(d))
	if d.cache == schema.CacheSeries {
		comment(f, "at since + i*%s, or ok=false when any one is missing. No round trip when this process", s.step.name)
		comment(f, "holds them all (cache mode series); otherwise one, which also fetches what follows the window.")
	} else {
		comment(f, "at since + i*%s, or ok=false when any one is missing. One round trip.", s.step.name)
	}
	f.Func().Params(recv(d)).Id("Window").Params(append(append([]jen.Code{ctxParam()}, params...), jen.Id("since").Int64(), jen.Id("limit").Int())...).Params(jen.Index().Add(payloadType(d)), jen.Bool(), jen.Error()).Block(
		jen.Return(jen.Qual(runtimePkg, "SeriesWindow").Call(jen.Id("ctx"), jen.Id("r").Dot("repo"), jen.Index().Any().Values(vals...), jen.Id(lowerFirst(s.step.goName)), jen.Id("since"), jen.Id("limit"))),
	)
	f.Line()
}

// ---- history (domains with `history:`)

// historyFields are the fields of a schema's History: Keep, unless zero
// (forever).
func historyFields(h *schema.History) jen.Dict {
	if h.Keep == 0 {
		return jen.Dict{}
	}
	return jen.Dict{jen.Id("Keep"): keepCode(h.Keep)}
}

// keepCode writes a history's keep as Go source in its largest whole unit:
// 90 * 24 * time.Hour, 36 * time.Hour, 90 * time.Minute, 5400 * time.Second.
func keepCode(d time.Duration) jen.Code {
	const day = 24 * time.Hour
	switch {
	case d%day == 0:
		return jen.Lit(int(d/day)).Op("*").Lit(24).Op("*").Qual("time", "Hour")
	case d%time.Hour == 0:
		return jen.Lit(int(d/time.Hour)).Op("*").Qual("time", "Hour")
	case d%time.Minute == 0:
		return jen.Lit(int(d/time.Minute)).Op("*").Qual("time", "Minute")
	}
	return durationCode(d)
}

// keepText says how long versions are kept, for a comment.
func keepText(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "forever"
	case d == day:
		return "for a day after it was recorded"
	case d%day == 0:
		return fmt.Sprintf("for %d days after it was recorded", d/day)
	}
	text := d.String() // 36h0m0s, 1h30m0s, 1h0m1s
	if strings.HasSuffix(text, "m0s") {
		text = strings.TrimSuffix(text, "0s")
	}
	if strings.HasSuffix(text, "h0m") {
		text = strings.TrimSuffix(text, "0m")
	}
	return "for " + text + " after it was recorded"
}

// para writes text as one comment paragraph, its words wrapped at 100
// columns.
func para(f *jen.File, format string, args ...any) {
	line := ""
	for _, w := range strings.Fields(fmt.Sprintf(format, args...)) {
		if line != "" && len(line)+1+len(w) > 97 {
			comment(f, "%s", line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		comment(f, "%s", line)
	}
}

// seriesHistoryNote tells a series domain's reader what its history is.
func seriesHistoryNote(d *domainSpec) string {
	if d.series == nil {
		return ""
	}
	return " A stored element never changes (first write wins), so its history is the one version it was" +
		" stored with. Window has no known-at form: Runtime().List with runtime.ListOptions{KnownAt: t}" +
		" lists the elements known at t."
}

// emitGetAt emits Get's known-at form: the payload k had for a reader at
// knownAt (as of validAt, for domains with a when column).
func (g *generator) emitGetAt(f *jen.File, d *domainSpec) {
	absent := "the zero value"
	if d.payload.empty {
		absent = "an empty value, never nil"
	}
	gone := "k had no row then"
	if d.removed {
		gone = "k had no row then or its row was removed"
	}
	hist := d.schema.HistoryCollection()
	params := []jen.Code{ctxParam(), jen.Id("k").Id(keyName(d))}
	validAt := jen.Qual("time", "Time").Values()
	if d.when {
		para(f, "GetAt reads k's payload as a reader at knownAt would have read it as of validAt: the last"+
			" version of k recorded at or before knownAt, if its when is at or before validAt (a zero validAt:"+
			" whatever its when). ok is false (with %s) when %s, or its when is later than validAt."+
			" knownAt must not be zero: time.Now() reads the latest version. One round trip, to the history"+
			" collection %s.%s", absent, gone, hist, seriesHistoryNote(d))
		params = append(params, jen.List(jen.Id("validAt"), jen.Id("knownAt")).Qual("time", "Time"))
		validAt = jen.Id("validAt")
	} else {
		para(f, "GetAt reads k's payload as a reader at knownAt would have read it: the last version of k"+
			" recorded at or before knownAt. ok is false (with %s) when %s. knownAt must not be zero:"+
			" time.Now() reads the latest version. One round trip, to the history collection %s.%s",
			absent, gone, hist, seriesHistoryNote(d))
		params = append(params, jen.Id("knownAt").Qual("time", "Time"))
	}
	body := append([]jen.Code{
		jen.List(jen.Id("v"), jen.Id("ok"), jen.Err()).Op(":=").Qual(runtimePkg, "PayloadOf").Call(jen.Id("r").Dot("repo").Dot("GetAt").Call(jen.Id("ctx"), jen.Id("k"), validAt, jen.Id("knownAt"))),
	}, emptyFix(d)...)
	body = append(body, jen.Return(jen.Id("v"), jen.Id("ok"), jen.Err()))
	f.Func().Params(recv(d)).Id("GetAt").Params(params...).Params(payloadType(d), jen.Bool(), jen.Error()).Block(body...)
	f.Line()
}

// emitHistory emits the stream of a key's versions.
func (g *generator) emitHistory(f *jen.File, d *domainSpec) {
	removals, nulls := "", ""
	if d.removed {
		removals = " (a removal is a version with Removed set)"
	}
	if d.payload.empty {
		nulls = " A payload stored as null is nil here (Get and GetAt read it as an empty value)."
	}
	para(f, "History yields k's versions newest first, numbered per key, each the row as a write left it%s,"+
		" within o's bounds: o.KnownAt skips the versions recorded after it, o.Since stops at those recorded"+
		" before it, o.Limit caps them (0: all). One round trip with a Limit, otherwise batches of"+
		" ListBatch, from the history collection %s.%s%s", removals, d.schema.HistoryCollection(), nulls, seriesHistoryNote(d))
	version := jen.Qual(runtimePkg, "Version").Types(jen.Id(keyName(d)), payloadType(d))
	f.Func().Params(recv(d)).Id("History").Params(ctxParam(), jen.Id("k").Id(keyName(d)), jen.Id("o").Qual(runtimePkg, "HistoryOptions")).
		Qual("iter", "Seq2").Types(version, jen.Error()).Block(
		jen.Return(jen.Id("r").Dot("repo").Dot("History").Call(jen.Id("ctx"), jen.Id("k"), jen.Id("o"))),
	)
	f.Line()
}

// emitListAt emits a bucket's List in its known-at form.
func (g *generator) emitListAt(f *jen.File, d *domainSpec) {
	params, vals := prefixParams(d)
	para(f, "ListAt yields the rows under %s as a reader at knownAt would have listed them: each key's"+
		" last version recorded at or before knownAt, unless it was removed, in key order; a zero knownAt"+
		" lists the rows as they are (List). One find on the history collection %s, in batches of"+
		" ListBatch, that walks every version under %s recorded by knownAt: its cost grows with the"+
		" history, not with the rows listed.", prefixDesc(d), d.schema.HistoryCollection(), prefixDesc(d))
	f.Func().Params(recv(d)).Id("ListAt").Params(append(append([]jen.Code{ctxParam()}, params...), jen.Id("knownAt").Qual("time", "Time"))...).
		Qual("iter", "Seq2").Types(jen.Qual(runtimePkg, "Record").Types(jen.Id(keyName(d)), payloadType(d)), jen.Error()).Block(
		jen.Return(jen.Id("r").Dot("repo").Dot("List").Call(jen.Id("ctx"), jen.Qual(runtimePkg, "ListOptions").Values(jen.Dict{
			jen.Id("Prefix"):  jen.Index().Any().Values(vals...),
			jen.Id("KnownAt"): jen.Id("knownAt"),
		}))),
	)
	f.Line()
}

// emitGetAllAt emits a list's GetAll in its known-at form.
func (g *generator) emitGetAllAt(f *jen.File, d *domainSpec) {
	params, vals := prefixParams(d)
	para(f, "GetAllAt reads the items under %s as a reader at knownAt would have read them with GetAll:"+
		" each item's last version recorded at or before knownAt, newest first, at most ReadLimit (%d);"+
		" none is an empty slice. A zero knownAt reads them as they are (GetAll). One find on the history"+
		" collection %s, in batches of ListBatch, that walks every version under %s recorded by knownAt,"+
		" sorted and limited in memory: its cost grows with the history, not with ReadLimit.",
		prefixDesc(d), d.list.readLimit, d.schema.HistoryCollection(), prefixDesc(d))
	f.Func().Params(recv(d)).Id("GetAllAt").Params(append(append([]jen.Code{ctxParam()}, params...), jen.Id("knownAt").Qual("time", "Time"))...).Params(jen.Index().Add(payloadType(d)), jen.Error()).Block(
		jen.Return(jen.Qual(runtimePkg, "Payloads").Call(jen.Id("r").Dot("repo").Dot("List").Call(jen.Id("ctx"), jen.Qual(runtimePkg, "ListOptions").Values(jen.Dict{
			jen.Id("Prefix"):  jen.Index().Any().Values(vals...),
			jen.Id("Sort"):    jen.Qual(runtimePkg, "NewestFirst").Call(),
			jen.Id("Limit"):   jen.Lit(d.list.readLimit),
			jen.Id("KnownAt"): jen.Id("knownAt"),
		})), jen.Lit(d.list.readLimit))),
	)
	f.Line()
}

// ---- registry

func (g *generator) emitRegistry(f *jen.File) {
	var fields, schemas, opens []jen.Code
	dict := jen.Dict{}
	for _, d := range g.s.domains {
		fields = append(fields, jen.Id(d.goName).Op("*").Id(repoName(d)))
		schemas = append(schemas, jen.Id(schemaName(d)).Call())
		v := jen.Id(lowerIdent(d.goName) + "Repo")
		opens = append(opens,
			jen.List(v.Clone(), jen.Err()).Op(":=").Id("New"+repoName(d)).Call(jen.Id("c")),
			jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Err())),
		)
		dict[jen.Id(d.goName)] = v
	}
	comment(f, "Repos holds the repository of every domain of the manifest, built on one Conn.")
	f.Type().Id("Repos").Struct(fields...)
	f.Line()
	comment(f, "Open builds every repository on c. It does not touch the network: the first")
	comment(f, "operation waits for the servers (see runtime.Conn.Ready).")
	f.Func().Id("Open").Params(jen.Id("c").Op("*").Qual(runtimePkg, "Conn")).Params(jen.Op("*").Id("Repos"), jen.Error()).Block(
		append(opens, jen.Return(jen.Op("&").Id("Repos").Values(dict), jen.Nil()))...,
	)
	f.Line()
	comment(f, "Schemas lists every domain's schema, in manifest order.")
	f.Func().Id("Schemas").Params().Index().Op("*").Qual(runtimePkg, "Schema").Block(
		jen.Return(jen.Index().Op("*").Qual(runtimePkg, "Schema").Values(schemas...)),
	)
	f.Line()
	comment(f, "EnsureIndexes creates the missing indexes of every domain (never changes or drops one).")
	f.Func().Id("EnsureIndexes").Params(ctxParam(), jen.Id("c").Op("*").Qual(runtimePkg, "Conn")).Error().Block(
		jen.Return(jen.Id("c").Dot("EnsureIndexes").Call(jen.Id("ctx"), jen.Id("Schemas").Call().Op("..."))),
	)
}

// cacheConst names the runtime constant of a cache mode.
func cacheConst(m schema.CacheMode) string {
	switch m {
	case schema.CacheNone:
		return "CacheNone"
	case schema.CacheValue:
		return "CacheValue"
	case schema.CacheLocal:
		return "CacheLocal"
	case schema.CacheSeries:
		return "CacheSeries"
	}
	return "CacheIdentity"
}

// durationCode writes d as Go source: 2 * time.Second, 150 * time.Millisecond.
func durationCode(d time.Duration) jen.Code {
	if d%time.Second == 0 {
		return jen.Lit(int(d/time.Second)).Op("*").Qual("time", "Second")
	}
	return jen.Lit(int(d/time.Millisecond)).Op("*").Qual("time", "Millisecond")
}
