package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/tests/testenv"
)

const manifest = `version: 1
domains:
  - name: bar
    collection: bar-items
    family: series
    key:
      - {name: exchange, type: string}
      - {name: symbol, type: string}
      - {name: interval, type: string}
      - {name: timestamp, type: float64}
    redis: {prefix: bar_cache}
    payload: {type: Bar, inline: true}
    series: {axis: timestamp, step: interval}
    shard: {fields: [exchange, symbol, interval]}
  - name: note
    collection: note-items
    family: single
    key:
      - {name: id, type: string}
    redis: {prefix: note_cache}
    payload: {type: string}
types:
  - name: Bar
    fields:
      - {name: timestamp, type: float64}
      - {name: close, type: float64}
`

// plan against the real server: what is missing is planned and changed
// only with -apply, after which nothing is left to do; a conflicting index
// is reported for a person (exit 5) and left alone; a shard key on a server
// that is not a sharded cluster is skipped, saying why.
func TestPlanAgainstTheServer(t *testing.T) {
	mongoURI, _ := testenv.URIs(t)
	db := "pgops_" + testenv.ID()
	u, err := url.Parse(mongoURI)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	t.Setenv("CC_MONGO_CONNECTION_STRING", u.String())
	client, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		_ = client.Database(db).Drop(ctx)
		_ = client.Disconnect(ctx)
	})
	dir := t.TempDir()
	file := filepath.Join(dir, "domains.yaml")
	if err := os.WriteFile(file, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	planned := func(args ...string) (string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"plan", "-manifest", file}, args...), &out, &errb)
		return out.String() + errb.String(), code
	}

	out, code := planned()
	if code != exitPending || !strings.Contains(out, "create   bar-items exchange_1_symbol_1_interval_1_timestamp_1 {exchange: 1, symbol: 1, interval: 1, timestamp: 1} unique") ||
		!strings.Contains(out, "skip     bar-items shard key {exchange: 1, symbol: 1, interval: 1}") || strings.Contains(out, "note-items shard key") {
		t.Fatalf("first plan, exit %d:\n%s", code, out)
	}
	if n, _ := client.Database(db).ListCollectionNames(ctx, bson.D{}); len(n) != 0 {
		t.Fatalf("plan without -apply created %v", n)
	}
	out, code = planned("-apply")
	if code != exitOK || strings.Contains(out, "applied; the plan now:\ncreate") || !strings.Contains(out, "ok       note-items id_1 {id: 1} unique") {
		t.Fatalf("plan -apply, exit %d:\n%s", code, out)
	}
	if out, code = planned(); code != exitOK || strings.Contains(out, "create") {
		t.Fatalf("plan after -apply, exit %d:\n%s", code, out)
	}

	// An index under one of our names with another definition.
	other := client.Database(db).Collection("other-items")
	if _, err := other.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "id", Value: -1}}, Options: options.Index().SetName("id_1")}); err != nil {
		t.Fatal(err)
	}
	conflicting := strings.Replace(manifest, "note-items", "other-items", 1)
	if err := os.WriteFile(file, []byte(conflicting), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = planned("-apply")
	if code != exitConflict || !strings.Contains(out, "conflict other-items id_1 {id: 1} unique") {
		t.Fatalf("a conflicting index, exit %d:\n%s", code, out)
	}
	specs, err := other.Indexes().ListSpecifications(ctx)
	if err != nil || len(specs) != 2 {
		t.Fatalf("the conflicting collection's indexes changed: %v, %v", specs, err)
	}

	if err := os.WriteFile(file, []byte("version: 1\ndomains: [{name: x}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := planned(); code != exitManifest {
		t.Fatalf("a bad manifest, exit %d:\n%s", code, out)
	}
	var none bytes.Buffer
	if code := run(ctx, nil, &none, &none); code != exitUsage {
		t.Fatalf("no subcommand, exit %d", code)
	}
}
