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
	var sum []byte
	// The checkout's own requirements are repeated, so that a package of the
	// module may import them directly (the driver, go-cmp) without the go
	// command looking up their dependencies' older versions, offline.
	rootMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var reqs strings.Builder
	inBlock := false
	for _, line := range strings.Split(string(rootMod), "\n") {
		switch {
		case strings.HasPrefix(line, "require ("):
			inBlock = true
		case inBlock && strings.HasPrefix(line, ")"):
			inBlock = false
		case inBlock && strings.TrimSpace(line) != "":
			reqs.WriteString(line + "\n")
		}
	}
	gomod := "module " + path + "\n\ngo 1.26\n\nrequire github.com/persistgen/persistgen v0.0.0\n\nrequire (\n" + reqs.String() + ")\n\nreplace github.com/persistgen/persistgen => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err = os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Go runs the go command in dir (see GoErr) and returns its combined
// output; a failure fails the test with that output.
func Go(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	out, err := GoErr(dir, env, args...)
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return out
}

// GoErr runs the go command in dir, offline, and returns its combined
// output and error. When the module cache lacks a go.mod file the module
// graph needs (a dependency's old requirement, which this checkout's own
// builds never read), it is fetched once through the configured GOPROXY and
// the command rerun.
func GoErr(dir string, env []string, args ...string) (string, error) {
	run := func(proxy string) ([]byte, error) {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY="+proxy, "GOWORK=off"), env...)
		return cmd.CombinedOutput()
	}
	out, err := run("off")
	if err != nil && strings.Contains(string(out), "module lookup disabled by GOPROXY=off") {
		if proxy := os.Getenv("GOPROXY"); proxy != "off" {
			if proxy == "" {
				proxy = "https://proxy.golang.org,direct"
			}
			out, err = run(proxy)
		}
	}
	return string(out), err
}
