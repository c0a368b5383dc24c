package gen

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/persistgen/persistgen/tests/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Valid manifests: testdata/valid/CASE/domains.yaml generates exactly
// testdata/valid/CASE/want/.
func TestGoldenValid(t *testing.T) {
	cases, err := filepath.Glob("testdata/valid/*/domains.yaml")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, manifest := range cases {
		dir := filepath.Dir(manifest)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			files := generateFile(t, manifest, "example.com/golden/"+filepath.Base(dir))
			want := filepath.Join(dir, "want")
			if *update {
				if _, err := Write(want, files); err != nil {
					t.Fatal(err)
				}
			}
			got := map[string]string{}
			for n, b := range files {
				got[n] = string(b)
			}
			if diff := cmp.Diff(readTree(t, want), got); diff != "" {
				t.Fatalf("generated tree differs from %s (-want +got); run go test ./gen -update after checking:\n%s", want, diff)
			}
		})
	}
}

// Every valid golden compiles, in a module of its own that uses this
// checkout's runtime.
func TestGoldenValidCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	cases, _ := filepath.Glob("testdata/valid/*/want")
	for _, want := range cases {
		name := filepath.Base(filepath.Dir(want))
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			mod := testenv.TempModule(t, "example.com/golden")
			copyTree(t, want, filepath.Join(mod, name))
			testenv.Go(t, mod, nil, "build", "./...")
			testenv.Go(t, mod, nil, "vet", "./...")
		})
	}
}

// Invalid manifests: testdata/invalid/CASE.yaml fails with exactly
// testdata/invalid/CASE.err.
func TestGoldenInvalid(t *testing.T) {
	cases, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(cases) == 0 {
		t.Fatal("no invalid cases")
	}
	for _, manifest := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(manifest), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(manifest)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Load("domains.yaml", data)
			if err == nil {
				t.Fatal("loaded an invalid manifest")
			}
			golden := strings.TrimSuffix(manifest, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatalf("%v (run go test ./gen -update to create it)", rerr)
			}
			if diff := cmp.Diff(string(want), err.Error()+"\n"); diff != "" {
				t.Fatalf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// The committed repo/ is exactly what domains.yaml produces, so plain go
// test catches stale generated code.
func TestRepoIsInSyncWithManifest(t *testing.T) {
	files := generateFile(t, "../domains.yaml", "github.com/persistgen/persistgen/repo")
	r, err := Compare("../repo", files)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Clean() {
		t.Fatalf("repo/ is out of date with domains.yaml; run go generate ./...:\n%s", r)
	}
}

func generateFile(t *testing.T, manifest, importPath string) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load("domains.yaml", data)
	if err != nil {
		t.Fatalf("%s: %v", manifest, err)
	}
	files, err := Generate(m, Options{ImportPath: importPath})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("%v (run go test ./gen -update to create it)", err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, b := range readTree(t, from) {
		if err := os.WriteFile(filepath.Join(to, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
