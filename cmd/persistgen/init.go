package main

import (
	"errors"
	"fmt"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/persistgen/persistgen/gen"
)

// starterManifest is what `persistgen init` writes: one example domain of
// each family, each line explained, valid as it stands (the test generates
// and runs it), for a team to rename and extend.
const starterManifest = `# yaml-language-server: $schema=persistgen.schema.json
# persistgen manifest: the data domains of this module. Edit it, then run
#   go generate ./...
# which rewrites the package below (only files whose content changed).
# Every field is described in persistgen.schema.json (editors with the YAML
# language server complete and check it as you type).
version: 1
package: %[1]s

# Payload types: Go structs generated from these fields (BSON names as
# written; Go names derived). Types: string, bool, int64, float64, "*T"
# (nullable), "[]T", "map[string]T", any.
types:
  - name: Position
    doc: Position is a strategy's open position in one symbol.
    fields:
      - {name: side, type: string, doc: long or short}
      - {name: quantity, type: float64}
      - {name: entryPrice, type: float64}
      - {name: stopLoss, type: "*float64", optional: true}

  - name: Bar
    doc: Bar is one OHLCV bar; Timestamp is its open time in epoch milliseconds.
    fields:
      - {name: timestamp, type: float64}
      - {name: open, type: float64}
      - {name: high, type: float64}
      - {name: low, type: float64}
      - {name: close, type: float64}
      - {name: volume, type: float64}

  - name: Quote
    doc: Quote is a cached answer of an expensive call (a price feed, say).
    fields:
      - {name: price, type: float64}
      - {name: source, type: string}

  - name: Fill
    doc: Fill is one execution report, appended to a feed.
    fields:
      - {name: id, type: string}
      - {name: price, type: float64}
      - {name: quantity, type: float64}

domains:
  # family single: one current row per key, last writer wins; Get, Put,
  # Remove, and GetAsOf(t) when "when" is on (no read sees a row written
  # after t: a backtest never reads its future).
  - name: position
    doc: the open position of each strategy and symbol
    collection: position-items
    family: single
    key:
      - {name: strategyName, type: string}
      - {name: symbol, type: string}
    redis: {prefix: position_cache}
    when: true
    payload: {type: Position, nullable: true}
    # cache: {mode: value, writers: persistgen-only, ttl: 1m}  # 1 Redis round trip a warm read; see persistgen's docs/cache-modes.md

  # family series: an immutable time series, written once per element (first
  # writer wins) and read in windows by one range query.
  - name: bar
    doc: OHLCV bars per exchange, symbol and interval
    collection: bar-items
    family: series
    key:
      - {name: exchangeName, type: string}
      - {name: symbol, type: string}
      - {name: interval, type: string}
      - {name: timestamp, type: float64}
    redis: {prefix: bar_cache}
    payload: {type: Bar, inline: true}
    series: {axis: timestamp, step: interval}
    cache: {mode: none}  # windows are range queries: no Redis key per bar

  # family bucket: entries grouped under a bucket, removable (soft delete),
  # listed per bucket: caches of function results, per-run scratch state.
  - name: quote
    doc: cached answers of expensive calls, per bucket and entry
    collection: quote-items
    family: bucket
    key:
      - {name: bucket, type: string}
      - {name: entryKey, type: string}
    redis: {prefix: quote_cache}
    removed: true
    payload: {type: Quote}

  # family list: an append-only feed read newest first, up to read_limit.
  - name: fill
    doc: the execution reports of live and backtest runs
    collection: fill-items
    family: list
    key:
      - {name: backtest, type: bool, words: [backtest, live]}
      - {name: fillId, type: string}
    redis: {prefix: fill_cache}
    payload: {type: Fill}
    list: {id: id, read_limit: 100}
`

// generateFile is the go:generate directive's file, in the generated
// package's directory (hand-written: generate leaves it alone). Its name
// sorts last, since go generate would fail on a generated file that a
// regeneration deleted before go generate scanned it.
const generateFile = `package %[1]s

// The directive lives in the file go generate scans last: persistgen deletes
// generated files the manifest no longer produces, and go generate would fail
// on a deleted file it had yet to scan.

//go:` + /* split: go generate would run this line of init.go itself */ `generate go tool persistgen generate -manifest %[2]s -out .
`

// runInit writes the starter manifest, its JSON Schema and the generated
// package's go:generate file, refusing to overwrite any of them.
func runInit(manifest, out string, stdout, stderr io.Writer) int {
	absOut, err := filepath.Abs(out)
	if err == nil {
		manifest, err = filepath.Abs(manifest)
	}
	if err != nil {
		fmt.Fprintf(stderr, "persistgen init: %v\n", err)
		return exitIO
	}
	pkg := filepath.Base(absOut)
	if !token.IsIdentifier(pkg) || strings.ToLower(pkg) != pkg || pkg == "main" || pkg == "_" {
		fmt.Fprintf(stderr, "persistgen init: -out %q: its last element %q is not a Go package name; choose a directory such as repo\n", out, pkg)
		return exitUsage
	}
	// go generate ./... never enters these: the package would not be
	// generated. (Checked below the working directory, where ./... starts.)
	under := filepath.Base(absOut)
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, absOut); err == nil && r != "." && !strings.HasPrefix(r, "..") {
			under = r
		}
	}
	for _, part := range strings.Split(filepath.ToSlash(under), "/") {
		if part == "testdata" || part == "vendor" || strings.HasPrefix(part, "_") || strings.HasPrefix(part, ".") {
			fmt.Fprintf(stderr, "persistgen init: -out %q: go generate ./... skips directories named testdata or vendor, or starting with _ or .; choose another\n", out)
			return exitUsage
		}
	}
	if st, err := os.Stat(filepath.Dir(manifest)); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "persistgen init: -manifest %s: its directory does not exist; create it first\n", manifest)
		return exitIO
	}
	if st, err := os.Stat(absOut); err == nil && !st.IsDir() {
		fmt.Fprintf(stderr, "persistgen init: -out %s is a file, not a directory\n", out)
		return exitIO
	}
	rel, err := filepath.Rel(absOut, manifest)
	if err != nil {
		fmt.Fprintf(stderr, "persistgen init: %v\n", err)
		return exitUsage
	}
	// go generate splits its line at spaces unless the word is quoted.
	relArg := filepath.ToSlash(rel)
	if strings.ContainsAny(relArg, " \t\"") {
		relArg = strconv.Quote(relArg)
	}
	schemaPath := filepath.Join(filepath.Dir(manifest), "persistgen.schema.json")
	genPath := filepath.Join(absOut, "zz_generate.go")
	files := []struct {
		path string
		data []byte
	}{
		{manifest, fmt.Appendf(nil, starterManifest, pkg)},
		{schemaPath, gen.JSONSchema()},
		{genPath, fmt.Appendf(nil, generateFile, pkg, relArg)},
	}
	var exist []string
	for _, f := range files {
		if _, err := os.Stat(f.path); err == nil {
			exist = append(exist, f.path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(stderr, "persistgen init: %v\n", err)
			return exitIO
		}
	}
	if len(exist) > 0 {
		for i := range exist {
			exist[i] = display(exist[i])
		}
		fmt.Fprintf(stderr, "persistgen init: %s already exist(s); init writes nothing over a file (move it away, or edit it instead)\n", strings.Join(exist, ", "))
		return exitIO
	}
	if err := os.MkdirAll(absOut, 0o755); err != nil {
		fmt.Fprintf(stderr, "persistgen init: %v\n", err)
		return exitIO
	}
	for _, f := range files {
		// O_EXCL: a file that appeared since the check is not overwritten.
		w, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, err = w.Write(f.data)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "persistgen init: %v\n", err)
			return exitIO
		}
		fmt.Fprintf(stdout, "wrote %s\n", display(f.path))
	}
	fmt.Fprintf(stdout, "next: go generate ./...   (needs the tool: go get -tool github.com/persistgen/persistgen/cmd/persistgen)\n")
	return exitOK
}

// display shows a path relative to the working directory when it is under it.
func display(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return path
}
