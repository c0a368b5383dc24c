package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/persistgen/persistgen/internal/testenv"
)

// docs/generator.md's walkthrough for adding a domain, done by a test: a copy of
// domains.yaml gains a seventeenth domain, `persistgen generate` writes the
// package, and a program that uses the new repository runs against the
// servers.
func TestAddingASeventeenthDomain(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs a module")
	}
	mongoURI, redisURL := testenv.URIs(t)
	root := testenv.Root(t)
	mod := testenv.TempModule(t, "example.com/walkthrough")

	manifest, err := os.ReadFile(filepath.Join(root, "domains.yaml"))
	must(t, err)
	// Step 1: edit domains.yaml.
	manifest = []byte(strings.Replace(string(manifest), "\ndomains:\n", `
  - name: Alert
    doc: Alert is a price alert a strategy set.
    fields:
      - {name: price, type: float64}
      - {name: above, type: bool}

domains:
  - name: alert
    doc: price alerts per strategy and symbol
    collection: alert-items
    family: single
    key:
      - {name: strategyName, type: string}
      - {name: symbol, type: string}
    redis: {prefix: alert_cache}
    when: true
    payload: {type: Alert, nullable: true}
`, 1))
	must(t, os.WriteFile(filepath.Join(mod, "domains.yaml"), manifest, 0o644))

	// Step 2: generate (what `go generate ./...` runs).
	out := testenv.Go(t, mod, nil, "run", "github.com/persistgen/persistgen/cmd/persistgen", "generate", "-manifest", "domains.yaml", "-out", "repo")
	if !strings.Contains(out, "wrote repo/alert.go") {
		t.Fatalf("generate did not write alert.go:\n%s", out)
	}

	// Step 3: use it.
	id := testenv.ID()
	program := `package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"example.com/walkthrough/repo"
	"github.com/persistgen/persistgen/runtime"
)

func main() {
	ctx := context.Background()
	conn, err := runtime.Open(runtime.Config{MongoURI: os.Getenv("MONGO"), Database: "pgt_walk_` + id + `",
		RedisURL: os.Getenv("REDIS"), KeyPrefix: "pgt:walk_` + id + `:"})
	check(err)
	defer func() { check(conn.Database().Drop(ctx)); conn.Close(ctx) }()
	check(repo.EnsureIndexes(ctx, conn))
	repos, err := repo.Open(conn)
	check(err)
	k := repo.AlertKey{StrategyName: "macd", Symbol: "BTCUSDT"}
	check(repos.Alert.Put(ctx, k, &repo.Alert{Price: 70000, Above: true}, time.UnixMilli(1000)))
	got, ok, err := repos.Alert.Get(ctx, k)
	check(err)
	_, early, err := repos.Alert.GetAsOf(ctx, k, time.UnixMilli(999))
	check(err)
	rk, err := k.RedisKey()
	check(err)
	fmt.Printf("alert ok=%v price=%v above=%v early=%v key=%s domains=%d\n", ok, got.Price, got.Above, early, rk, len(repo.Schemas()))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`
	must(t, os.WriteFile(filepath.Join(mod, "main.go"), []byte(program), 0o644))
	out = testenv.Go(t, mod, []string{"MONGO=" + mongoURI, "REDIS=" + redisURL}, "run", ".")
	want := "alert ok=true price=70000 above=true early=false key=alert_cache:macd:BTCUSDT domains=17"
	if !strings.Contains(out, want) {
		t.Fatalf("program printed:\n%s\nwant %s", out, want)
	}
}
