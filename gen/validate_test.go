package gen

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// base is a valid manifest; each case below breaks one thing in it.
const base = `version: 1
types:
  - name: Row
    fields:
      - {name: id, type: string}
domains:
  - name: thing
    collection: thing-items
    family: single
    key:
      - {name: a, type: string}
      - {name: b, type: bool, words: [yes, no]}
    redis: {prefix: thing_cache}
    when: true
    payload: {type: Row}
`

func TestBaseManifestIsValid(t *testing.T) {
	if _, err := Load("domains.yaml", []byte(base)); err != nil {
		t.Fatal(err)
	}
}

// One case per validation failure, named for it: the manifest, and the
// position and text the error must have.
func TestValidationFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new string // replaced in base
		want     string // "LINE:COL: text"
	}{
		{"missing version", "version: 1\n", "", "1:1: missing `version`"},
		{"unknown version", "version: 1", "version: 2", "1:10: unknown version 2; this generator reads version 1"},
		{"unknown top-level field", "version: 1\n", "version: 1\nflavour: x\n", `2:1: unknown field "flavour" in the manifest`},
		{"unknown domain field", "    family: single\n", "    family: single\n    colour: red\n", `10:5: unknown field "colour" in a domain`},
		{"field given twice", "    when: true\n", "    when: true\n    when: false\n", `15:5: field "when" given twice`},
		{"duplicate domain", "", "", ""}, // built below
		{"duplicate collection", "", "", ""},
		{"key field without type", "      - {name: a, type: string}", "      - {name: a}", `11:9: key field "a" has no type`},
		{"unsupported key type", "{name: a, type: string}", "{name: a, type: time.Time}", `11:25: key field "a" has type "time.Time"`},
		{"unknown payload type", "payload: {type: Row}", "payload: {type: Nope}", `15:21: domain "thing" payload: unknown type "Nope"`},
		{"unknown field type", "{name: id, type: string}", "{name: id, type: strang}", `5:26: field "id": unknown type "strang"`},
		{"empty key", "    key:\n      - {name: a, type: string}\n      - {name: b, type: bool, words: [yes, no]}\n", "    key: []\n", `10:10: domain "thing" has an empty key`},
		{"redis order not the key fields", "redis: {prefix: thing_cache}", "redis: {prefix: thing_cache, order: [a]}", `13:41: redis order leaves out key field "b"`},
		{"redis order names a non-key field", "redis: {prefix: thing_cache}", "redis: {prefix: thing_cache, order: [a, b, c]}", `13:41: redis order names "c", which is not a key field`},
		{"as_of without when", "    when: true\n", "    as_of: true\n", `14:12: domain "thing" asks for as_of reads but has no when column`},
		{"domain name not a Go identifier", "name: thing", "name: 9lives", `7:5: domain name "9lives" must be lower case letters, digits, '-' and '_', starting with a letter`},
		{"type name not a Go identifier", "name: Row", "name: row", `3:5: type name "row" is not an exported Go identifier`},
		{"field Go name not an identifier", "{name: id, type: string}", "{name: id, go: my-id, type: string}", `5:9: field "id" becomes the Go name "my-id"`},
		{"strict on the identity mode", "    when: true\n", "    when: true\n    cache: {mode: identity, strict: true}\n", `15:37: domain "thing": strict applies to the value cache mode only`},
		{"strict false on the local mode", "    when: true\n", "    when: true\n    cache: {mode: local, writers: persistgen-only, strict: false}\n", `15:60: domain "thing": the local cache mode is always strict`},
		{"unknown family", "family: single", "family: heap", `9:13: domain "thing": family "heap" is not one of`},
		{"words on a string key", "{name: a, type: string}", "{name: a, type: string, words: [x, y]}", `11:9: key field "a": words are for bool fields`},
		{"redis prefix with colon", "prefix: thing_cache", "prefix: thing:cache", `13:21: redis prefix "thing:cache" contains ':'`},
		{"wrong kind of value", "    when: true\n", "    when: [true]\n", "14:11: expected true or false, found a list"},
		{"bucket without removed", "family: single", "family: bucket", `7:5: domain "thing" is a bucket, which soft-deletes: set ` + "`removed: true`"},
		{"list without list spec", "family: single", "family: list", `7:5: domain "thing" is a list: add`},
		{"series without series spec", "family: single", "family: series", `7:5: domain "thing" is a series: add`},
		{"empty on a struct payload", "payload: {type: Row}", "payload: {type: Row, empty: true}", "15:14: domain \"thing\": `empty` reads an absent row as [] or {}"},
		{"nullable slice", "payload: {type: Row}", `payload: {type: "[]Row", nullable: true}`, `15:14: domain "thing": payload type []Row is already nil-able`},
		{"index on an unknown field", "    when: true\n", "    when: true\n    indexes: [{name: x_1, keys: [x]}]\n", `15:15: index "x_1": "x" is not a key field`},
		{"index named like an automatic one", "    when: true\n", "    when: true\n    indexes: [{name: when_1, keys: [-when]}]\n", `15:15: index name "when_1" is used twice`},
		{"include of an unknown type", "  - name: Row\n", "  - name: Row\n    include: [Base]\n", `3:5: type "Row" includes "Base", which is not declared`},
		{"reserved domain name", "name: thing", "name: registry", `7:5: domain name "registry" is reserved`},
		{"history keep shorter than an hour", "    when: true\n", "    when: true\n    history: {keep: 5m}\n", `15:21: domain "thing": history keep "5m" must be whole seconds and at least 1h0m0s, or forever`},
		{"history keep not a duration", "    when: true\n", "    when: true\n    history: {keep: 90 days}\n", `15:21: domain "thing": history keep "90 days" is not forever or a duration`},
		{"history without keep", "    when: true\n", "    when: true\n    history: {}\n", "15:14: domain \"thing\": a history block needs keep, how long each version is kept: write `keep: forever` or a duration"},
		{"not YAML", "version: 1\n", "version: [1\n", "1:1: not valid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(base, tc.old, tc.new, 1)
			switch tc.name {
			case "duplicate domain", "duplicate collection":
				second := base[strings.Index(base, "  - name: thing"):]
				if tc.name == "duplicate collection" {
					second = strings.NewReplacer("name: thing", "name: other", "thing_cache", "other_cache").Replace(second)
					tc.want = `17:17: collection "thing-items" is used by domain "thing" too (line 7)`
				} else {
					second = strings.NewReplacer("thing-items", "other-items", "thing_cache", "other_cache").Replace(second)
					tc.want = `16:5: domain "thing" is declared twice (first at line 7)`
				}
				src = base + second
			}
			if src == base && tc.old != "" {
				t.Fatalf("case does not change the manifest: %q not found", tc.old)
			}
			_, err := Load("domains.yaml", []byte(src))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Load = %v; want Errors", err)
			}
			for _, e := range es {
				if e.Line < 1 || e.Col < 1 || e.File != "domains.yaml" {
					t.Errorf("error without a position: %#v", e)
				}
			}
			if !strings.Contains(err.Error(), "domains.yaml:"+tc.want) {
				t.Fatalf("errors:\n%v\nwant one containing\n%s", err, "domains.yaml:"+tc.want)
			}
		})
	}
}

func TestGoName(t *testing.T) {
	for in, want := range map[string]string{
		"signalId": "SignalID", "_isScheduled": "IsScheduled", "id": "ID", "candle-items": "CandleItems",
		"priceOpen": "PriceOpen", "_trailingPriceStopLoss": "TrailingPriceStopLoss", "entryKey": "EntryKey",
		"lastPendingId": "LastPendingID", "video": "Video",
	} {
		if got := GoName(in); got != want {
			t.Errorf("GoName(%q) = %q, want %q", in, got, want)
		}
	}
}

// Resolve reads a manifest and never writes to it: resolving one twice, or
// generating from it, sees the manifest as parsed.
func TestResolveLeavesTheManifestAlone(t *testing.T) {
	src := strings.Replace(base, "    payload: {type: Row}\n", "    payload: {type: Row}\n    indexes: [{name: a_1_createDate_-1, keys: [a, -createDate]}]\n", 1)
	m1, err := Parse("domains.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := Parse("domains.yaml", []byte(src))
	s1, err := Resolve(m1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(m1); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m1, m2) {
		t.Fatalf("Resolve changed the manifest:\n%+v\n%+v", m1.Domains[0], m2.Domains[0])
	}
	if m1.Package != "" || m1.Types[0].Fields[0].GoName != "" || m1.Domains[0].AsOf != nil || m1.Domains[0].Payload.Field != "" {
		t.Fatal("defaults were written into the manifest")
	}
	if s1.Package() != "repo" || s1.Schema("thing").Payload != "payload" {
		t.Fatalf("defaults were not applied to the spec: %q %+v", s1.Package(), s1.Schema("thing"))
	}
	// Schema returns a copy: changing it does not change what is generated.
	s1.Schema("thing").Key[0].Name = "changed"
	if s1.Schema("thing").Key[0].Name != "a" {
		t.Fatal("Spec.Schema exposes the spec's own schema")
	}
}

// A Manifest built in code (no positions) resolves and generates; an
// inconsistent one is refused with Errors, not a panic; Generate refuses
// no spec.
func TestManifestBuiltInCode(t *testing.T) {
	m := &Manifest{File: "code", Version: 1, Domains: []*Domain{{
		Name: "x", Collection: "x-items", Family: "series",
		Key:     []*KeyField{{Name: "s", Type: "string"}, {Name: "step", Type: "string"}, {Name: "t", Type: "int64"}},
		Redis:   Redis{Prefix: "x_cache"},
		Payload: Payload{Type: "E", Inline: true},
		Series:  &SeriesSpec{Axis: "t", Step: "step"},
	}}, Types: []*TypeDecl{{Name: "E", Fields: []*Field{{Name: "t", Type: "int64"}}}}}
	s, err := Resolve(m)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(s, Options{ImportPath: "example.com/x"})
	if err != nil || len(files["x.go"]) == 0 {
		t.Fatalf("Generate: %v (%d files)", err, len(files))
	}
	m.Types[0].Fields[0].Type = "float64"
	_, err = Resolve(m)
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || !strings.Contains(es[0].Msg, `series axis "t" is int64 in the key but float64 in E`) {
		t.Fatalf("Resolve = %v", err)
	}
	m.Domains[0].Series = nil
	m.Domains[0].Payload = Payload{}
	if _, err := Resolve(m); !errors.As(err, &es) {
		t.Fatalf("Resolve = %v", err)
	}
	m.Version = 0
	if _, err := Resolve(m); !errors.As(err, &es) || !strings.Contains(err.Error(), "version 0: this generator reads version 1") {
		t.Fatalf("Resolve of version 0 = %v", err)
	}
	if _, err := Resolve(nil); !errors.As(err, &es) {
		t.Fatalf("Resolve(nil) = %v", err)
	}
	if _, err := Generate(nil, Options{}); err == nil {
		t.Fatal("Generate(nil) succeeded")
	}
}

// Write never replaces a file it did not generate: a new domain named like
// a hand-written file is refused, and nothing is written.
func TestWriteKeepsHandWrittenFiles(t *testing.T) {
	dir := t.TempDir()
	mine := []byte("package repo\n\n// my own code\n")
	if err := os.WriteFile(filepath.Join(dir, "helpers.go"), mine, 0o644); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"helpers.go": []byte("// " + Header("domains.yaml") + "\n\npackage repo\n"), "other.go": []byte("// " + Header("domains.yaml") + "\n\npackage repo\n")}
	if _, err := Write(dir, files); err == nil || !strings.Contains(err.Error(), "was not generated by persistgen") {
		t.Fatalf("Write = %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "helpers.go")); string(got) != string(mine) {
		t.Fatalf("helpers.go was overwritten: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "other.go")); !os.IsNotExist(err) {
		t.Fatalf("other.go was written before the refusal: %v", err)
	}
}
