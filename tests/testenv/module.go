package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Root is the directory of this checkout's go.mod.
func Root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the checkout")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// TempModule makes a module named path that requires this checkout through
// a replace directive, with this checkout's go.sum, so that it builds offline
// from the module cache.
func TempModule(t testing.TB, path string) string {
	t.Helper()
	root := Root(t)
	dir := t.TempDir()
	gomod := "module " + path + "\n\ngo 1.26\n\nrequire github.com/persistgen/persistgen v0.0.0\n\nreplace github.com/persistgen/persistgen => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Go runs the go command in dir, offline, and returns its combined output;
// a failure fails the test with that output.
func Go(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}
