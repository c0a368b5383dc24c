// Command persistgen generates typed MongoDB+Redis repositories from a
// manifest of data domains.
//
//	persistgen init     [-manifest domains.yaml] [-out repo]
//	persistgen generate [-manifest domains.yaml] [-out repo] [-import PATH]
//	persistgen check    [-manifest domains.yaml] [-out repo] [-import PATH]
//	persistgen validate [-manifest domains.yaml]
//	persistgen acl      [-manifest domains.yaml] [-user persistgen] [-key-prefix P] [-database DB]
//
// Exit codes: 0 success; 1 check found generated code out of date; 2 bad
// usage; 3 the manifest is invalid; 4 a file could not be read or written.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/persistgen/persistgen/gen"
	"github.com/persistgen/persistgen/schema"
)

const (
	exitOK       = 0
	exitDrift    = 1
	exitUsage    = 2
	exitManifest = 3
	exitIO       = 4
)

const usage = `persistgen turns a manifest of data domains (domains.yaml) into typed,
MongoDB-backed, Redis-cached Go repositories.

Usage:
  persistgen init [flags]       start a manifest in this module: a starter domains.yaml (one
                                example domain of each family), its JSON Schema for editors
                                (persistgen.schema.json) and the go:generate file in -out;
                                refuses to overwrite any file
  persistgen generate [flags]   write the generated package: only files whose content
                                changed are rewritten, and generated files the manifest
                                no longer produces are deleted
  persistgen check [flags]      exit 1 and list changed, missing and stale files when the
                                generated package is not what the manifest produces
                                (the drift check for CI); writes nothing
  persistgen validate [flags]   check the manifest only; every error is reported as
                                FILE:LINE:COL: what is wrong; how to fix it
  persistgen acl [flags]        print what a least-privileged user needs for the manifest:
                                the Redis ACL (its identity keys, the commands the runtime
                                sends, no channels) and a MongoDB role (per collection
                                actions)

Flags:
  -manifest FILE   the manifest (default domains.yaml)
  -out DIR         the generated package's directory (default repo)
  -import PATH     its Go import path (default: derived from the enclosing go.mod)
  -user NAME       acl: the Redis user (default persistgen)
  -key-prefix P    acl: the Conn's KeyPrefix, if it sets one (default none)
  -database DB     acl: the MongoDB database (default backtest-kit)

Exit codes: 0 ok, 1 out of date (check), 2 bad usage, 3 invalid manifest, 4 I/O error.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd := args[0]
	fs := flag.NewFlagSet("persistgen "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	manifest := fs.String("manifest", "domains.yaml", "the manifest")
	out := fs.String("out", "repo", "the generated package's directory")
	importPath := fs.String("import", "", "the generated package's import path")
	aclUser := fs.String("user", "persistgen", "acl: the Redis user")
	keyPrefix := fs.String("key-prefix", "", "acl: the Conn's KeyPrefix")
	database := fs.String("database", "backtest-kit", "acl: the MongoDB database")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "persistgen %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return exitUsage
	}
	switch cmd {
	case "init":
		return runInit(*manifest, *out, stdout, stderr)
	case "generate", "check", "validate", "acl":
	default:
		fmt.Fprintf(stderr, "persistgen: unknown command %q; run persistgen --help\n", cmd)
		return exitUsage
	}

	data, err := os.ReadFile(*manifest)
	if err != nil {
		fmt.Fprintf(stderr, "persistgen: %v\n", err)
		return exitIO
	}
	m, err := gen.Load(filepath.Base(*manifest), data)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitManifest
	}
	if cmd == "acl" {
		for name, v := range map[string]string{"-user": *aclUser, "-key-prefix": *keyPrefix, "-database": *database} {
			if strings.ContainsFunc(v, unicode.IsSpace) || (name != "-key-prefix" && v == "") {
				fmt.Fprintf(stderr, "persistgen acl: %s %q: give a non-empty value without spaces (it goes into an ACL rule)\n", name, v)
				return exitUsage
			}
		}
		var schemas []*schema.Schema
		for _, d := range m.Domains() {
			schemas = append(schemas, m.Schema(d))
		}
		fmt.Fprintf(stdout, "# Redis ACL for the %d domains of %s: their keys (per cache mode) and the commands\n", len(schemas), *manifest)
		fmt.Fprintf(stdout, "# the runtime sends, nothing else. Replace PASSWORD (or put the rule in an ACL file).\n")
		fmt.Fprintf(stdout, "ACL SETUSER %s on >PASSWORD %s\n\n", *aclUser, schema.RedisACL(*keyPrefix, schemas...))
		fmt.Fprintf(stdout, "// MongoDB role for database %s: the actions the runtime needs on each domain's\n", *database)
		fmt.Fprintf(stdout, "// collection and on the capability probe's; grant it to the application's user.\n")
		fmt.Fprintln(stdout, schema.MongoRole(*aclUser, *database, schemas...))
		return exitOK
	}
	if cmd == "validate" {
		fmt.Fprintf(stdout, "%s: %d domains, %d types: valid\n", *manifest, len(m.Domains()), len(m.Types()))
		return exitOK
	}
	if *importPath == "" {
		if *importPath, err = derivedImportPath(*out); err != nil {
			fmt.Fprintf(stderr, "persistgen: %v; pass -import\n", err)
			return exitUsage
		}
	}
	files, err := gen.Generate(m, gen.Options{ImportPath: *importPath, Manifest: headerManifest(*manifest, *out)})
	if err != nil {
		fmt.Fprintf(stderr, "persistgen: %v\n", err)
		return exitManifest
	}
	if cmd == "check" {
		r, err := gen.Compare(*out, files)
		if err != nil {
			fmt.Fprintf(stderr, "persistgen: %v\n", err)
			return exitIO
		}
		if !r.Clean() {
			fmt.Fprintf(stderr, "%s is out of date with %s; run `go generate ./...` (or persistgen generate):\n%s", *out, *manifest, r)
			return exitDrift
		}
		return exitOK
	}
	r, err := gen.Write(*out, files)
	if err != nil {
		fmt.Fprintf(stderr, "persistgen: %v\n", err)
		return exitIO
	}
	for _, n := range append(append([]string(nil), r.Changed...), r.Missing...) {
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*out, n))
	}
	for _, n := range r.Stale {
		fmt.Fprintf(stdout, "deleted %s\n", filepath.Join(*out, n))
	}
	return exitOK
}

// derivedImportPath finds the go.mod above dir and joins its module path
// with dir's path below it.
func derivedImportPath(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if mod, err := modulePath(filepath.Join(d, "go.mod")); err == nil {
			rel, err := filepath.Rel(d, abs)
			if err != nil {
				return "", err
			}
			if rel == "." {
				return mod, nil
			}
			return mod + "/" + filepath.ToSlash(rel), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", abs)
		}
	}
}

func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.Trim(strings.TrimSpace(strings.TrimPrefix(line, "module")), `"`), nil
		}
	}
	return "", fmt.Errorf("%s has no module line", gomod)
}

// headerManifest names the manifest in the generated files' header: the
// path from the generated package's directory to it (../domains.yaml, as
// repo/'s go:generate line gives it), the same whichever directory
// persistgen runs in; its base name when the manifest is outside the
// module holding that directory, where the path would depend on the
// machine's layout.
func headerManifest(manifest, out string) string {
	base := filepath.Base(manifest)
	absManifest, err1 := filepath.Abs(manifest)
	absOut, err2 := filepath.Abs(out)
	if err1 != nil || err2 != nil {
		return base
	}
	for d := absOut; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if r, err := filepath.Rel(d, absManifest); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				return base
			}
			break
		}
		if filepath.Dir(d) == d {
			return base
		}
	}
	rel, err := filepath.Rel(absOut, absManifest)
	if err != nil {
		return base
	}
	return filepath.ToSlash(rel)
}
