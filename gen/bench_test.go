package gen

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// manifestOf returns a manifest of n domains, one of each family in turn.
func manifestOf(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\ntypes:\n  - name: Row\n    fields:\n")
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&b, "      - {name: f%d, type: float64}\n", i)
	}
	b.WriteString("      - {name: id, type: string}\n      - {name: timestamp, type: float64}\ndomains:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: d%03d\n    collection: d%03d-items\n    redis: {prefix: d%03d_cache}\n", i, i, i)
		switch i % 4 {
		case 0:
			b.WriteString("    family: single\n    key: [{name: a, type: string}, {name: b, type: string}]\n    when: true\n    payload: {type: Row, nullable: true}\n")
		case 1:
			b.WriteString("    family: bucket\n    key: [{name: bucket, type: string}, {name: entry, type: string}]\n    removed: true\n    payload: {type: Row}\n")
		case 2:
			b.WriteString("    family: list\n    key: [{name: backtest, type: bool, words: [backtest, live]}, {name: itemId, type: string}]\n    payload: {type: Row}\n    list: {id: id, read_limit: 100}\n")
		case 3:
			b.WriteString("    family: series\n    key: [{name: venue, type: string}, {name: interval, type: string}, {name: timestamp, type: float64}]\n    payload: {type: Row, inline: true}\n    series: {axis: timestamp, step: interval}\n")
		}
	}
	return []byte(b.String())
}

func TestSyntheticManifestIsValid(t *testing.T) {
	m, err := Load("domains.yaml", manifestOf(200))
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(m, Options{ImportPath: "example.com/big"})
	if err != nil || len(files) != 202 {
		t.Fatalf("%d files, %v", len(files), err)
	}
}

// BenchmarkGenerate measures loading, validating and generating a manifest:
// the shipped one, and one of 200 domains, so the cost as manifests grow is
// known.
func BenchmarkGenerate(b *testing.B) {
	shipped, err := os.ReadFile("../domains.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{{"shipped", shipped}, {"200-domains", manifestOf(200)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				m, err := Load("domains.yaml", c.data)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Generate(m, Options{ImportPath: "example.com/x"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
