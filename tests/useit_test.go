package tests

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/internal/testenv"
)

// The README's "Use it in your project", step by step, in a scratch module
// against the test servers: the commands of its first block, then its
// main.go verbatim, then go run with the connection string. One departure,
// since this module is not published: before go get, the scratch module
// is pointed at this checkout (a replace directive) with its go.sum, so
// that the steps run offline.
func TestUseItInYourProject(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs a module")
	}
	mongoURI, redisURL := testenv.URIs(t)
	root := testenv.Root(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	must(t, err)
	section := string(readme)
	start := strings.Index(section, "## Use it in your project\n")
	if start < 0 {
		t.Fatal(`README has no "## Use it in your project" section`)
	}
	section = section[start+1:]
	section = section[:strings.Index(section, "\n## ")]
	blocks := regexp.MustCompile("(?s)```(sh|go)\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) != 3 || blocks[0][1] != "sh" || blocks[1][1] != "go" || blocks[2][1] != "sh" {
		t.Fatalf("the section's code blocks: want commands, main.go, then the run; got %d", len(blocks))
	}
	var steps []string
	for _, line := range strings.Split(blocks[0][2], "\n") {
		if cmd, _, _ := strings.Cut(line, "#"); strings.TrimSpace(cmd) != "" {
			steps = append(steps, strings.TrimSpace(cmd))
		}
	}
	want := []string{"go mod init example.com/mybot", "go get -tool github.com/persistgen/persistgen/cmd/persistgen", "go tool persistgen init", "go generate ./..."}
	if strings.Join(steps, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the README's steps are\n%s\nand this test runs\n%s\nchange both together", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
	dir := t.TempDir()
	// Offline: checksums come from this checkout's go.sum and, for modules
	// it does not list (a dependency's test dependencies, which go mod tidy
	// reads), from the module cache, since the checksum database is out of
	// reach here.
	offline := []string{"GOSUMDB=off"}
	for _, step := range steps {
		args := strings.Fields(step)[1:]
		if args[0] == "get" {
			testenv.Go(t, dir, nil, "mod", "edit", "-require", "github.com/persistgen/persistgen@v0.0.0", "-replace", "github.com/persistgen/persistgen="+root)
			sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
			must(t, err)
			must(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
		}
		out := testenv.Go(t, dir, offline, args...)
		if args[0] == "tool" && !strings.Contains(out, "wrote domains.yaml") {
			t.Fatalf("persistgen init printed:\n%s", out)
		}
	}
	for _, f := range []string{"domains.yaml", "persistgen.schema.json", "repo/zz_generate.go", "repo/position.go", "repo/bar.go", "repo/quote.go", "repo/fill.go", "repo/registry.go"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("after the steps, %s: %v", f, err)
		}
	}
	// init refuses to write over what it wrote.
	if out, err := testenv.GoErr(dir, offline, "tool", "persistgen", "init"); err == nil || !strings.Contains(out, "already exist") {
		t.Fatalf("a second init: %v\n%s", err, out)
	}
	must(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(blocks[1][2]), 0o644))
	testenv.Go(t, dir, offline, "mod", "tidy")

	u, err := url.Parse(mongoURI)
	must(t, err)
	q := u.Query()
	if u.User != nil && q.Get("authSource") == "" {
		src := strings.TrimPrefix(u.Path, "/")
		if src == "" {
			src = "admin"
		}
		q.Set("authSource", src)
	}
	db := "pgt_use_" + testenv.ID()
	u.Path, u.RawQuery = "/"+db, q.Encode()
	ru, err := url.Parse(redisURL)
	must(t, err)
	env := []string{"CC_MONGO_CONNECTION_STRING=" + u.String(), "CC_REDIS_HOST=" + ru.Hostname(), "CC_REDIS_PORT=" + ru.Port()}
	if pw, ok := ru.User.Password(); ok {
		env = append(env, "CC_REDIS_USER="+ru.User.Username(), "CC_REDIS_PASSWORD="+pw)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if c, err := mongo.Connect(options.Client().ApplyURI(u.String())); err == nil {
			_ = c.Database(db).Drop(ctx)
			_ = c.Disconnect(ctx)
		}
		// The program's identity key (no KeyPrefix, database 0).
		o, err := redis.ParseURL(redisURL)
		if err == nil {
			o.DB = 0
			r := redis.NewClient(o)
			_ = r.Del(ctx, "position_cache:macd:BTCUSDT").Err()
			_ = r.Close()
		}
	})
	out := testenv.Go(t, dir, append(env, offline...), "run", ".")
	if !strings.Contains(out, "found: true long 0.5 70000") {
		t.Fatalf("the README's program printed:\n%s\nwant found: true long 0.5 70000 (as the README says)", out)
	}
	if !strings.Contains(blocks[2][2], "found: true long 0.5 70000") {
		t.Fatal("the README's run block does not show what the program prints")
	}
}
