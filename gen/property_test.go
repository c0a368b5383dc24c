package gen

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/persistgen/persistgen/internal/testenv"
)

// The property: any manifest that Load accepts generates code that
// compiles and passes vet. Manifests are generated from a grammar that
// mostly follows the rules and sometimes breaks one (an axis of the wrong
// type, a name the generated code uses, a missing block...), so both sides
// of validation are exercised. PERSIST_GEN_PROPERTY_N sets how many accepted
// manifests to compile (default 40), PERSIST_GEN_PROPERTY_SEED the seed
// (default: random, logged).
func TestAcceptedManifestsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	n := 40
	if v := os.Getenv("PERSIST_GEN_PROPERTY_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("PERSIST_GEN_PROPERTY_N=%q: give a positive number", v)
		}
	}
	seed := rand.Uint64()
	if v := os.Getenv("PERSIST_GEN_PROPERTY_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("PERSIST_GEN_PROPERTY_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (rerun with PERSIST_GEN_PROPERTY_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	mod := testenv.TempModule(t, "example.com/prop")
	manifests := map[string]string{}
	accepted, rejected := 0, 0
	for attempt := 0; accepted < n && attempt < 50*n; attempt++ {
		src := randomManifest(rng)
		spec, err := Load("domains.yaml", []byte(src))
		if err != nil {
			rejected++
			continue
		}
		pkg := fmt.Sprintf("m%03d", accepted)
		files, err := Generate(spec, Options{ImportPath: "example.com/prop/" + pkg})
		if err != nil {
			t.Fatalf("an accepted manifest did not generate: %v\n%s", err, src)
		}
		if _, err := Write(filepath.Join(mod, pkg), files); err != nil {
			t.Fatal(err)
		}
		manifests[pkg] = src
		accepted++
	}
	if accepted < n {
		t.Fatalf("only %d of %d manifests accepted; the grammar breaks rules too often", accepted, accepted+rejected)
	}
	if rejected == 0 {
		t.Fatalf("no manifest was rejected; the grammar never breaks a rule")
	}
	// A package that cannot compile proves the check reports failures; it
	// must be the only one that fails.
	canary := filepath.Join(mod, "zzcanary")
	if err := os.MkdirAll(canary, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(canary, "c.go"), []byte("package zzcanary\n\nvar x int = \"not an int\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := testenv.GoErr(mod, nil, "vet", "./...")
	if err == nil {
		t.Fatalf("go vet passed a package that does not compile:\n%s", out)
	}
	failing := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^(?:# example\.com/prop/|vet: \./|\./)?(m\d{3})/`).FindAllStringSubmatch(out, -1) {
		failing[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`example\.com/prop/(m\d{3})`).FindAllStringSubmatch(out, -1) {
		failing[m[1]] = true
	}
	if len(failing) > 0 {
		for _, pkg := range slices.Sorted(maps.Keys(failing)) {
			t.Errorf("accepted manifest %s does not compile:\n%s", pkg, manifests[pkg])
		}
		t.Fatalf("go vet:\n%s", out)
	}
	if !strings.Contains(out, "zzcanary") {
		t.Fatalf("go vet failed, but not on the canary:\n%s", out)
	}
	t.Logf("%d accepted manifests compile; %d generated manifests were rejected", accepted, rejected)
}

// randomManifest writes a manifest from a grammar of everything the format
// allows, breaking a rule now and then.
func randomManifest(r *rand.Rand) string {
	g := &grammar{r: r}
	return g.manifest()
}

type grammar struct {
	r      *rand.Rand
	b      strings.Builder // types, then the extra types domains ask for
	d      strings.Builder // domains
	types  []gtype
	extras int
}

type gtype struct {
	name   string
	fields map[string]string // bson name -> type
	tuple  bool
}

func (g *grammar) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g *grammar) chance(p float64) bool    { return g.r.Float64() < p }

// names includes words the generated code uses itself and Go keywords.
func (g *grammar) name() string {
	return g.pick("a", "b", "symbol", "id", "items", "ctx", "type", "range", "since", "limit", "it", "k", "v", "batch", "func", "err", "ok", "out", "i", "r", "when2", "x_y", "x-y", "entryKey", "signalId", "Upper", "filter", "shape", "extra", "removed", "when", "make", "runtime", "any", "len", "id_x", "idX", "time", "bson", "knownAt", "validAt", "o")
}

func (g *grammar) manifest() string {
	g.b.WriteString("version: 1\n")
	if g.chance(0.2) {
		g.b.WriteString("package: " + g.pick("store", "repo", "Bad", "p2") + "\n")
	}
	g.b.WriteString("types:\n")
	nt := 1 + g.r.IntN(3)
	for i := range nt {
		g.typeDecl(i)
	}
	nd := 1 + g.r.IntN(3)
	for i := range nd {
		g.domain(i)
	}
	return g.b.String() + "domains:\n" + g.d.String()
}

func (g *grammar) fieldType() string {
	ts := []string{"string", "bool", "int", "int32", "int64", "float64", "any", "time.Time", "[]string", "map[string]any", "*float64", "[]float64", "map[string][]int64"}
	for _, t := range g.types {
		ts = append(ts, t.name, "[]"+t.name, "*"+t.name)
	}
	return g.pick(ts...)
}

func (g *grammar) typeDecl(i int) {
	name := g.pick("T", "Row", "Item", "Candle", "Repos", "Entry") + strconv.Itoa(i)
	if g.chance(0.05) {
		name = "Repos"
	}
	t := gtype{name: name, fields: map[string]string{}, tuple: g.chance(0.15)}
	fmt.Fprintf(&g.b, "  - name: %s\n", name)
	if t.tuple {
		g.b.WriteString("    tuple: true\n")
	} else if g.chance(0.2) {
		g.b.WriteString("    keep_unknown: false\n")
	}
	if len(g.types) > 0 && g.chance(0.2) {
		inc := g.types[g.r.IntN(len(g.types))]
		fmt.Fprintf(&g.b, "    include: [%s]\n", inc.name)
		for k, v := range inc.fields {
			t.fields[k] = v
		}
	}
	g.b.WriteString("    fields:\n")
	for range 1 + g.r.IntN(4) {
		fname, ftype := g.name(), g.fieldType()
		if g.chance(0.3) {
			ftype = g.pick("float64", "int64", "string")
		}
		t.fields[fname] = ftype
		fmt.Fprintf(&g.b, "      - {name: %s, type: %q", fname, ftype)
		if g.chance(0.2) {
			g.b.WriteString(", optional: true")
		}
		if g.chance(0.1) {
			fmt.Fprintf(&g.b, ", go: %s", g.pick("Name", "Extra", "MarshalBSON", "Shape", "Value", "X"))
		}
		g.b.WriteString("}\n")
	}
	g.types = append(g.types, t)
}

func (g *grammar) domain(i int) {
	fam := g.pick("single", "bucket", "list", "series")
	name := g.pick("thing", "go", "func", "limit", "items", "series", "list", "new-thing", "x_test", "x_linux", "zzz") + strconv.Itoa(i%2)
	if g.chance(0.1) {
		name = g.pick("doc", "types", "Thing", "a-b")
	}
	fmt.Fprintf(&g.d, "  - name: %s\n    collection: c%d-%s\n    family: %s\n", name, i, name, fam)
	nk := 1 + g.r.IntN(3)
	if fam == "series" && nk < 3 && g.chance(0.8) {
		nk = 3
	}
	var keys []string
	var keyTypes []string
	g.d.WriteString("    key:\n")
	for j := range nk {
		kn := g.name()
		if slices.Contains(keys, kn) && g.chance(0.9) {
			kn += strconv.Itoa(j)
		}
		kt := g.pick("string", "string", "bool", "int64", "float64")
		if j == nk-1 && fam == "list" && g.chance(0.9) {
			kt = "string"
		}
		if fam == "series" && j == nk-2 && g.chance(0.9) {
			kt = "string"
		}
		if fam == "series" && j == nk-1 && g.chance(0.9) {
			kt = g.pick("int64", "float64")
		}
		keys, keyTypes = append(keys, kn), append(keyTypes, kt)
		fmt.Fprintf(&g.d, "      - {name: %s, type: %s", kn, kt)
		if kt == "string" && g.chance(0.2) {
			g.d.WriteString(", optional: true")
		}
		if kt == "bool" && g.chance(0.5) {
			g.d.WriteString(", words: [on, off]")
		}
		g.d.WriteString("}\n")
	}
	fmt.Fprintf(&g.d, "    redis: {prefix: p%d_%s", i, strings.ReplaceAll(name, "-", "_"))
	if g.chance(0.3) {
		order := slices.Clone(keys)
		g.r.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		fmt.Fprintf(&g.d, ", order: [%s]", strings.Join(order, ", "))
	}
	g.d.WriteString("}\n")
	when := g.chance(0.5)
	if when {
		g.d.WriteString("    when: true\n")
	}
	if fam == "bucket" || g.chance(0.2) {
		g.d.WriteString("    removed: true\n")
	}
	if g.chance(0.15) {
		fmt.Fprintf(&g.d, "    as_of: %v\n", g.chance(0.5))
	}
	// Payload: a declared type for lists and series, anything otherwise.
	t := g.types[g.r.IntN(len(g.types))]
	switch fam {
	case "list":
		fmt.Fprintf(&g.d, "    payload: {type: %s}\n", t.name)
		id := g.name()
		for f, ft := range t.fields {
			if ft == "string" && g.chance(0.8) {
				id = f
			}
		}
		fmt.Fprintf(&g.d, "    list: {id: %s, read_limit: %d", id, g.r.IntN(30))
		if g.chance(0.5) {
			g.d.WriteString(", append_only: true")
		}
		g.d.WriteString("}\n")
	case "series":
		axis, step := keys[len(keys)-1], keys[max(len(keys)-2, 0)]
		if g.chance(0.8) { // a type that carries the axis, mostly of the key's type
			at := keyTypes[len(keyTypes)-1]
			if g.chance(0.15) {
				at = g.pick("int64", "float64", "*float64", "string")
			}
			t = gtype{name: fmt.Sprintf("Element%d", g.extras)}
			g.extras++
			fmt.Fprintf(&g.b, "  - name: %s\n    fields:\n      - {name: %s, type: %q}\n      - {name: close, type: float64}\n", t.name, axis, at)
		}
		fmt.Fprintf(&g.d, "    payload: {type: %s, inline: %v}\n", t.name, g.chance(0.9))
		if g.chance(0.1) {
			axis = keys[0]
		}
		fmt.Fprintf(&g.d, "    series: {axis: %s, step: %s}\n", axis, step)
	default:
		typ := g.pick(t.name, "string", "int64", "[]"+t.name, "map[string]float64", "any", "*"+t.name, "time.Time")
		fmt.Fprintf(&g.d, "    payload: {type: %q", typ)
		if g.chance(0.2) {
			g.d.WriteString(", nullable: true")
		}
		if g.chance(0.2) {
			g.d.WriteString(", empty: true")
		}
		if g.chance(0.2) {
			g.d.WriteString(", field: " + g.pick("data", "payload", keys[0]))
		}
		g.d.WriteString("}\n")
	}
	if g.chance(0.2) {
		fmt.Fprintf(&g.d, "    indexes: [{name: extra_%d, keys: [%s, -createDate]}]\n", i, keys[0])
	}
	if g.chance(0.25) {
		g.d.WriteString("    cache: " + g.pick("{mode: none}", "{mode: identity}", "{mode: value, writers: persistgen-only}",
			"{mode: value, writers: persistgen-only, ttl: 1500ms}", "{mode: value}", "{mode: none, ttl: 1s}") + "\n")
	}
	if g.chance(0.3) {
		g.d.WriteString("    history: " + g.pick("{keep: forever}", "{keep: 90d}", "{keep: 36h}", "{keep: 5m}", "{}") + "\n")
	}
}
