package gen

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/persistgen/persistgen/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// The scenario corpus, in sqlc's manner: testdata/scenarios/NAME/ holds a
// domains.yaml and either error.txt, the exact errors Load must report, or
// want/, the exact tree Generate must produce. A valid scenario may add
// check_test.go, tests of the generated package's behaviour, run by
// TestScenariosCompileAndBehave.
func TestScenarios(t *testing.T) {
	dirs := scenarioDirs(t)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, "domains.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			spec, err := Load("domains.yaml", data)
			errFile := filepath.Join(dir, "error.txt")
			_, statErr := os.Stat(errFile)
			wantsError := statErr == nil
			if *update && err != nil {
				wantsError = true
				if werr := os.WriteFile(errFile, []byte(err.Error()+"\n"), 0o644); werr != nil {
					t.Fatal(werr)
				}
			}
			if wantsError {
				if err == nil {
					t.Fatalf("Load accepted the manifest; want the errors in %s", errFile)
				}
				want, rerr := os.ReadFile(errFile)
				if rerr != nil {
					t.Fatal(rerr)
				}
				if diff := cmp.Diff(string(want), err.Error()+"\n"); diff != "" {
					t.Fatalf("errors (-want +got); run go test ./gen -run TestScenarios -update after checking:\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v (an invalid scenario needs an error.txt)", err)
			}
			files, err := Generate(spec, Options{ImportPath: "example.com/scenarios/" + filepath.Base(dir)})
			if err != nil {
				t.Fatal(err)
			}
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
				t.Fatalf("generated tree differs from %s (-want +got); run go test ./gen -run TestScenarios -update after checking:\n%s", want, diff)
			}
		})
	}
}

// Every valid scenario's tree compiles, passes vet and passes its own
// check_test.go, in one module that uses this checkout's runtime (no
// servers: the checks exercise keys, schemas and codecs).
func TestScenariosCompileAndBehave(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	mod := testenv.TempModule(t, "example.com/scenarios")
	n := 0
	for _, dir := range scenarioDirs(t) {
		want := filepath.Join(dir, "want")
		if _, err := os.Stat(want); err != nil {
			continue
		}
		pkg := filepath.Join(mod, filepath.Base(dir))
		copyTree(t, want, pkg)
		if b, err := os.ReadFile(filepath.Join(dir, "check_test.go")); err == nil {
			if err := os.WriteFile(filepath.Join(pkg, "check_test.go"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		n++
	}
	if n < 5 {
		t.Fatalf("only %d valid scenarios found", n)
	}
	testenv.Go(t, mod, nil, "vet", "./...")
	out := testenv.Go(t, mod, nil, "test", "-count=1", "./...")
	t.Logf("%d scenarios:\n%s", n, out)
}

func scenarioDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("testdata/scenarios/*")
	if err != nil || len(dirs) < 20 {
		t.Fatalf("the scenario corpus is missing (%d found): %v", len(dirs), err)
	}
	return dirs
}

// The committed repo/ is exactly what domains.yaml produces, so plain go
// test catches stale generated code.
func TestRepoIsInSyncWithManifest(t *testing.T) {
	files := generateFile(t, "../domains.yaml", "github.com/persistgen/persistgen/repo", "../domains.yaml")
	r, err := Compare("../repo", files)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Clean() {
		t.Fatalf("repo/ is out of date with domains.yaml; run go generate ./...:\n%s", r)
	}
}

// generateFile generates from the manifest file, naming it in the header
// as the generated package's directory reaches it (repo/'s go:generate
// line: -manifest ../domains.yaml -out .).
func generateFile(t *testing.T, manifest, importPath, named string) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := Load("domains.yaml", data)
	if err != nil {
		t.Fatalf("%s: %v", manifest, err)
	}
	files, err := Generate(spec, Options{ImportPath: importPath, Manifest: named})
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
