package gen

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: no input panics the loader or the generator, and every rejection
// is a list of errors that each carry a position.
func FuzzLoad(f *testing.F) {
	paths, _ := filepath.Glob("testdata/scenarios/*/domains.yaml")
	for _, p := range append(paths, "../domains.yaml") {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(base))
	f.Add([]byte(""))
	f.Add([]byte("version: 1\ndomains: [{name: x}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load("domains.yaml", data)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("rejection is not Errors: %v", err)
			}
			for _, e := range es {
				if e.Line < 1 || e.Col < 1 || e.Msg == "" {
					t.Fatalf("error without a position or text: %#v", e)
				}
			}
			return
		}
		if _, err := Generate(m, Options{ImportPath: "example.com/fuzz"}); err != nil {
			t.Fatalf("a valid manifest did not generate: %v", err)
		}
	})
}
