package gen

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Report says how a directory differs from a generated tree.
type Report struct {
	Changed []string // present with other content
	Missing []string // generated but absent
	Stale   []string // generated earlier (carry the header) but no longer produced
}

// Clean reports whether the directory matches the tree.
func (r Report) Clean() bool { return len(r.Changed)+len(r.Missing)+len(r.Stale) == 0 }

func (r Report) String() string {
	var b strings.Builder
	for _, x := range []struct {
		what  string
		names []string
	}{{"changed", r.Changed}, {"missing", r.Missing}, {"stale", r.Stale}} {
		for _, n := range x.names {
			fmt.Fprintf(&b, "%s: %s\n", x.what, n)
		}
	}
	return b.String()
}

// Compare reads dir and reports how it differs from files. Only files that
// start with the generated header count as stale; hand-written files in
// the directory are never touched.
func Compare(dir string, files map[string][]byte) (Report, error) {
	var r Report
	for _, name := range Names(files) {
		have, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case os.IsNotExist(err):
			r.Missing = append(r.Missing, name)
		case err != nil:
			return r, err
		case !bytes.Equal(have, files[name]):
			r.Changed = append(r.Changed, name)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return r, err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || files[name] != nil {
			continue
		}
		if generated, err := isGenerated(filepath.Join(dir, name)); err != nil {
			return r, err
		} else if generated {
			r.Stale = append(r.Stale, name)
		}
	}
	sort.Strings(r.Stale)
	return r, nil
}

func isGenerated(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	return bytes.HasPrefix(data, []byte("// "+Header+"\n")), nil
}

// Write brings dir in line with files: it writes changed and missing files
// and deletes stale ones, leaving unchanged files untouched. It returns what
// it did.
func Write(dir string, files map[string][]byte) (Report, error) {
	r, err := Compare(dir, files)
	if err != nil {
		return r, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	for _, name := range append(append([]string(nil), r.Changed...), r.Missing...) {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return r, err
		}
	}
	for _, name := range r.Stale {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return r, err
		}
	}
	return r, nil
}
