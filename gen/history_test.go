package gen

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/persistgen/persistgen/schema"
)

// historyManifest is a manifest of one domain of family fam (with a when
// column where the family has one), followed by block (a `history:` line,
// or nothing).
func historyManifest(fam, block string) string {
	var d string
	switch fam {
	case "single":
		d = "    family: single\n    key: [{name: a, type: string}]\n    when: true\n    payload: {type: Row}\n"
	case "bucket":
		d = "    family: bucket\n    key: [{name: a, type: string}, {name: b, type: string}]\n    removed: true\n    payload: {type: Row}\n"
	case "list":
		d = "    family: list\n    key: [{name: a, type: string}, {name: b, type: string}]\n    payload: {type: Row}\n    list: {id: id, read_limit: 5}\n"
	case "series":
		d = "    family: series\n    key: [{name: step, type: string}, {name: t, type: int64}]\n    payload: {type: Row, inline: true}\n    series: {axis: t, step: step}\n"
	}
	return "version: 1\ntypes:\n  - name: Row\n    fields:\n      - {name: id, type: string}\n      - {name: t, type: int64}\n" +
		"domains:\n  - name: thing\n    collection: thing-items\n    redis: {prefix: thing_cache}\n" + d + block
}

var historyFamilies = []string{"single", "bucket", "list", "series"}

// Every family takes a history block; keep is forever, whole days or a Go
// duration, and becomes Schema.History.
func TestHistoryKeepAccepted(t *testing.T) {
	for _, tc := range []struct {
		keep string
		want time.Duration
	}{
		{"forever", 0},
		{"90d", 90 * 24 * time.Hour},
		{"1d", 24 * time.Hour},
		{"36h", 36 * time.Hour},
		{"90m", 90 * time.Minute},
		{"1h", time.Hour},
		{"1h30m15s", time.Hour + 30*time.Minute + 15*time.Second},
		{"3600s", time.Hour},
		{"1.5h", 90 * time.Minute},
		{`"36h"`, 36 * time.Hour},
	} {
		for _, fam := range historyFamilies {
			t.Run(fam+"/"+tc.keep, func(t *testing.T) {
				s, err := Load("domains.yaml", []byte(historyManifest(fam, "    history: {keep: "+tc.keep+"}\n")))
				if err != nil {
					t.Fatal(err)
				}
				sc := s.Schema("thing")
				if sc.History == nil || sc.History.Keep != tc.want {
					t.Fatalf("History = %+v, want keep %s", sc.History, tc.want)
				}
				if err := sc.Validate(); err != nil {
					t.Fatalf("the runtime refuses the schema: %v", err)
				}
			})
		}
	}
	for _, fam := range historyFamilies {
		s, err := Load("domains.yaml", []byte(historyManifest(fam, "")))
		if err != nil {
			t.Fatal(err)
		}
		if h := s.Schema("thing").History; h != nil {
			t.Errorf("%s: history without a history block: %+v", fam, h)
		}
	}
}

// Bad history blocks are refused on every family, at the keep's position
// (the block's when keep is missing).
func TestHistoryKeepRefused(t *testing.T) {
	for _, tc := range []struct{ block, want string }{
		{"{keep: 5m}", `:15:21: domain "thing": history keep "5m" must be whole seconds and at least 1h0m0s, or forever`},
		{"{keep: 59m59s}", `:15:21: domain "thing": history keep "59m59s" must be whole seconds and at least 1h0m0s, or forever`},
		{"{keep: 3600.5s}", `:15:21: domain "thing": history keep "3600.5s" must be whole seconds and at least 1h0m0s`},
		{"{keep: 0d}", `:15:21: domain "thing": history keep "0d" must be whole seconds and at least 1h0m0s`},
		{"{keep: 0s}", `:15:21: domain "thing": history keep "0s" must be whole seconds and at least 1h0m0s`},
		{"{keep: -2h}", `:15:21: domain "thing": history keep "-2h" must be whole seconds and at least 1h0m0s`},
		{"{keep: 90 days}", `:15:21: domain "thing": history keep "90 days" is not forever or a duration; write forever, whole days as 90d, or a Go duration (36h, 90m)`},
		{"{keep: 1.5d}", `:15:21: domain "thing": history keep "1.5d" is not forever or a duration`},
		{"{keep: 2d12h}", `:15:21: domain "thing": history keep "2d12h" is not forever or a duration`},
		{"{keep: d}", `:15:21: domain "thing": history keep "d" is not forever or a duration`},
		{"{keep: 99999999999999d}", `:15:21: domain "thing": history keep "99999999999999d" is not forever or a duration`},
		{"{keep: Forever}", `:15:21: domain "thing": history keep "Forever" is not forever or a duration`},
		{`{keep: ""}`, `:15:21: domain "thing": history keep "" is not forever or a duration`},
		{"{keep: 3600}", `:15:21: domain "thing": history keep 3600 has no unit: write 3600s for seconds, whole days as 90d`},
		{"{}", ":15:14: domain \"thing\": a history block needs keep, how long each version is kept: write `keep: forever` or a duration (90d, 36h)"},
		{"{keep: forever, ttl: 1h}", `:15:30: unknown field "ttl" in history; known fields: keep`},
		{"{keep: [90d]}", `:15:21: expected forever or a duration, found a list`},
		{"forever", `:15:14: history must be a mapping, not "forever"`},
	} {
		for _, fam := range historyFamilies {
			t.Run(fam+"/"+tc.block, func(t *testing.T) {
				_, err := Load("domains.yaml", []byte(historyManifest(fam, "    history: "+tc.block+"\n")))
				var es Errors
				if !errors.As(err, &es) {
					t.Fatalf("Load = %v; want Errors", err)
				}
				if len(es) != 1 {
					t.Errorf("%d errors, want one:\n%v", len(es), err)
				}
				if !strings.Contains(err.Error(), "domains.yaml"+tc.want) {
					t.Fatalf("errors:\n%v\nwant one containing\ndomains.yaml%s", err, tc.want)
				}
			})
		}
	}
}

// The known-at methods are generated for domains with history only, each
// family its own.
func TestHistoryMethods(t *testing.T) {
	want := map[string][]string{
		"single": {
			"func (r *ThingRepo) GetAt(ctx context.Context, k ThingKey, validAt, knownAt time.Time) (Row, bool, error) {",
			"func (r *ThingRepo) History(ctx context.Context, k ThingKey, o runtime.HistoryOptions) iter.Seq2[runtime.Version[ThingKey, Row], error] {",
		},
		"bucket": {
			"func (r *ThingRepo) GetAt(ctx context.Context, k ThingKey, knownAt time.Time) (Row, bool, error) {",
			"r.repo.GetAt(ctx, k, time.Time{}, knownAt)",
			"func (r *ThingRepo) History(ctx context.Context, k ThingKey, o runtime.HistoryOptions) iter.Seq2[runtime.Version[ThingKey, Row], error] {",
			"func (r *ThingRepo) ListAt(ctx context.Context, a string, knownAt time.Time) iter.Seq2[runtime.Record[ThingKey, Row], error] {",
		},
		"list": {
			"func (r *ThingRepo) GetAllAt(ctx context.Context, a string, knownAt time.Time) ([]Row, error) {",
			"KnownAt: knownAt,",
		},
		"series": {
			"func (r *ThingRepo) GetAt(ctx context.Context, k ThingKey, knownAt time.Time) (Row, bool, error) {",
			"func (r *ThingRepo) History(ctx context.Context, k ThingKey, o runtime.HistoryOptions) iter.Seq2[runtime.Version[ThingKey, Row], error] {",
			"Window has no known-at form",
		},
	}
	all := []string{") GetAt(", ") History(", ") ListAt(", ") GetAllAt(", "History:"}
	for _, fam := range historyFamilies {
		for _, keep := range []string{"", "forever", "90d"} {
			block := ""
			if keep != "" {
				block = "    history: {keep: " + keep + "}\n"
			}
			s, err := Load("domains.yaml", []byte(historyManifest(fam, block)))
			if err != nil {
				t.Fatal(err)
			}
			files, err := Generate(s, Options{ImportPath: "example.com/h"})
			if err != nil {
				t.Fatal(err)
			}
			src := string(files["thing.go"])
			if keep == "" {
				for _, w := range all {
					if strings.Contains(src, w) {
						t.Errorf("%s without history has %q", fam, w)
					}
				}
				continue
			}
			for _, w := range want[fam] {
				if !strings.Contains(src, w) {
					t.Errorf("%s, keep %s: no %q in\n%s", fam, keep, w, src)
				}
			}
			lit := map[string]string{"forever": "History: &runtime.History{},", "90d": "History: &runtime.History{Keep: 90 * 24 * time.Hour},"}[keep]
			if !strings.Contains(strings.Join(strings.Fields(src), " "), lit) {
				t.Errorf("%s, keep %s: no %q", fam, keep, lit)
			}
		}
	}
}

// keepCode writes each keep in its largest whole unit, and the literal
// means the same duration.
func TestKeepCode(t *testing.T) {
	for d, want := range map[time.Duration]string{
		90 * 24 * time.Hour:           "90 * 24 * time.Hour",
		36 * time.Hour:                "36 * time.Hour",
		90 * time.Minute:              "90 * time.Minute",
		time.Hour + 15*time.Second:    "3615 * time.Second",
		schema.MinHistoryKeep:         "1 * time.Hour",
		365 * 24 * time.Hour:          "365 * 24 * time.Hour",
		25*time.Hour + 30*time.Minute: "1530 * time.Minute",
	} {
		if got := fmt.Sprintf("%#v", keepCode(d)); got != want {
			t.Errorf("keepCode(%s) = %s, want %s", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{
		0:                        "forever",
		24 * time.Hour:           "for a day after it was recorded",
		90 * 24 * time.Hour:      "for 90 days after it was recorded",
		36 * time.Hour:           "for 36h after it was recorded",
		90 * time.Minute:         "for 1h30m after it was recorded",
		time.Hour + time.Second:  "for 1h0m1s after it was recorded",
		25*time.Hour + time.Hour: "for 26h after it was recorded",
	} {
		if got := keepText(d); got != want {
			t.Errorf("keepText(%s) = %q, want %q", d, got, want)
		}
	}
}

// The JSON Schema and the loader agree on keep: every keep the loader
// accepts passes the schema, and every keep the schema refuses the loader
// refuses too (the schema cannot tell 5m from 5h: the loader's range check
// is its own).
func TestHistoryJSONSchemaAgreesWithLoader(t *testing.T) {
	s := compileSchema(t)
	for _, tc := range []struct {
		keep           string
		loader, schema bool // accepted by each
	}{
		{"forever", true, true}, {"90d", true, true}, {"1d", true, true}, {"36h", true, true},
		{"90m", true, true}, {"1h30m", true, true}, {"3600s", true, true}, {"1.5h", true, true},
		{"3600000ms", true, true}, {"1.h", true, true},
		// out of range: only the loader knows
		{"5m", false, true}, {"0d", false, true}, {"0s", false, true}, {"3600.5s", false, true},
		// not a keep at all: both refuse
		{"90 days", false, false}, {"1.5d", false, false}, {"2d12h", false, false}, {"d", false, false},
		{"never", false, false}, {"Forever", false, false}, {"", false, false}, {"-2h", false, false},
		{"+2h", false, false}, {"36H", false, false}, {"3600", false, false},
	} {
		src := historyManifest("single", fmt.Sprintf("    history: {keep: %q}\n", tc.keep))
		_, lerr := Load("domains.yaml", []byte(src))
		serr := s.Validate(yamlText(t, src))
		if (lerr == nil) != tc.loader {
			t.Errorf("keep %q: loader accepts it: %v, want %v (%v)", tc.keep, lerr == nil, tc.loader, lerr)
		}
		if (serr == nil) != tc.schema {
			t.Errorf("keep %q: JSON Schema accepts it: %v, want %v (%v)", tc.keep, serr == nil, tc.schema, serr)
		}
	}
	for _, block := range []string{"{}", "{keep: forever, ttl: 1h}", "{keep: [90d]}", "{keep: 3600}", "forever", "{keep: 90 days}", "{keep: never}"} {
		src := historyManifest("bucket", "    history: "+block+"\n")
		if err := s.Validate(yamlText(t, src)); err == nil {
			t.Errorf("history: %s passed the JSON Schema", block)
		}
		if _, err := Load("domains.yaml", []byte(src)); err == nil {
			t.Errorf("history: %s passed the loader", block)
		}
	}
}

// A history built in code resolves like a parsed one; without keep it is
// refused; Spec.Schema hands out a copy of it.
func TestHistoryBuiltInCode(t *testing.T) {
	m := &Manifest{File: "code", Version: 1, Domains: []*Domain{{
		Name: "x", Collection: "x-items", Family: "single",
		Key:     []*KeyField{{Name: "s", Type: "string"}},
		Redis:   Redis{Prefix: "x_cache"},
		Payload: Payload{Type: "string"},
		History: &HistorySpec{Keep: "90d"},
	}}}
	s, err := Resolve(m)
	if err != nil {
		t.Fatal(err)
	}
	if h := s.Schema("x").History; h == nil || h.Keep != 90*24*time.Hour {
		t.Fatalf("History = %+v", h)
	}
	s.Schema("x").History.Keep = time.Hour
	if h := s.Schema("x").History; h.Keep != 90*24*time.Hour {
		t.Fatal("Spec.Schema exposes the spec's own History")
	}
	if m.Domains[0].History.Keep != "90d" {
		t.Fatal("Resolve changed the manifest's history")
	}
	m.Domains[0].History = &HistorySpec{}
	_, err = Resolve(m)
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || !strings.Contains(es[0].Msg, "a history block needs keep") {
		t.Fatalf("Resolve = %v", err)
	}
}
