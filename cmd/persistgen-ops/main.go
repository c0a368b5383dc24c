// Command persistgen-ops is the operator's side of persistgen: it talks to
// the live servers (the generator, persistgen, never does, so that the
// tool a project pins in its go.mod pulls in no database driver).
//
//	persistgen-ops plan    [-manifest domains.yaml] [-apply]
//	persistgen-ops indexes [-manifest domains.yaml] [-apply]
//	persistgen-ops inspect [-manifest domains.yaml] [-as-of T] [-known-at T] [-limit N] [-removed] DOMAIN [KEY PART...]
//	persistgen-ops audit   [-manifest domains.yaml] [-key-prefix P] [-repair] [-quiet] [DOMAIN...]
//
// plan compares the live deployment with the manifest: the indexes every
// domain needs (create, ok, other: present under another name, conflict)
// and, for domains with a shard key, the collection's sharding (shard, ok,
// conflict, or skip where the server is not a sharded cluster). It changes
// nothing unless -apply is given, and then only creates indexes and shards
// collections: it never drops or changes one. indexes is plan for the
// indexes alone (no shard keys).
//
// inspect prints a domain's rows as JSON lines (MongoDB relaxed extended
// JSON), newest first (by when where the domain has one, else by
// updatedDate), under a prefix of the key given in key order, as of a time
// with -as-of (RFC 3339 or epoch ms), removed rows with -removed.
//
// audit checks the Redis identities of identity-mode domains against the
// documents, both ways: identities naming a missing document or another
// key's, identities of the wrong type or value, documents without their
// identity; one tab-separated line per finding on stdout, progress on
// stderr (a bar on a terminal). -repair mends each: an identity set to
// its key's document, or deleted where the key has none.
//
// They read the servers from the same CC_* variables as the runtime
// (CC_MONGO_CONNECTION_STRING, CC_MONGO_PASSWORD_FILE, CC_REDIS_HOST...;
// plan and inspect use no Redis). Nothing is changed unless -apply or
// -repair is given. Exit codes: 0 nothing to do (inspect: rows printed;
// audit: clean, or all repaired); 1 the plan has steps to apply (after
// -apply: none left), or the audit found what it did not repair; 2 bad
// usage; 3 the manifest is invalid; 4 a file could not be read; 5 a
// conflict needs a person; 6 a server failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/persistgen/persistgen/gen"
	"github.com/persistgen/persistgen/runtime"
)

const (
	exitOK       = 0
	exitPending  = 1
	exitUsage    = 2
	exitManifest = 3
	exitIO       = 4
	exitConflict = 5
	exitServer   = 6
)

const usage = `persistgen-ops: the live deployment against the manifest.

Usage:
  persistgen-ops plan    [-manifest domains.yaml] [-apply]
  persistgen-ops indexes [-manifest domains.yaml] [-apply]
  persistgen-ops inspect [-manifest domains.yaml] [-as-of T] [-known-at T] [-limit N] [-removed] DOMAIN [KEY PART...]
  persistgen-ops audit   [-manifest domains.yaml] [-key-prefix P] [-repair] [-quiet] [DOMAIN...]

The servers come from the CC_* variables, as for the runtime. Nothing is
changed unless -apply (plan) or -repair (audit) is given.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || !slices.Contains([]string{"plan", "indexes", "inspect", "audit"}, args[0]) {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	manifest := fs.String("manifest", "domains.yaml", "the manifest")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the servers")
	apply := fs.Bool("apply", false, "plan, indexes: create the missing indexes (plan: and shard the collections to shard)")
	asOf := fs.String("as-of", "", "inspect: only rows whose when is at or before this time (RFC 3339 or epoch ms)")
	knownAt := fs.String("known-at", "", "inspect: the rows as a reader saw them at this time, from the domain's history (RFC 3339 or epoch ms)")
	limit := fs.Int("limit", 20, "inspect: at most this many rows (0: all)")
	removed := fs.Bool("removed", false, "inspect: list removed rows too")
	keyPrefix := fs.String("key-prefix", "", "audit: the Conn's KeyPrefix, if the application sets one")
	repair := fs.Bool("repair", false, "audit: mend what is found")
	quiet := fs.Bool("quiet", false, "audit: no progress on stderr")
	force := fs.Bool("force", false, "audit: repair even where a domain's collection has no documents (every identity would be deleted)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if ((cmd == "plan" || cmd == "indexes") && fs.NArg() > 0) || (cmd == "inspect" && fs.NArg() == 0) {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	// After "--" every argument is a key part, one starting with '-' too
	// ("inspect -- DOMAIN -x" and "inspect DOMAIN -- -x" alike).
	positional := fs.Args()
	free := len(positional) // positional[free:] may start with '-'
	if len(positional) < len(args)-1 && args[len(args)-len(positional)-1] == "--" {
		free = 0
	} else if i := slices.Index(positional, "--"); i >= 0 {
		positional = slices.Delete(slices.Clone(positional), i, i+1)
		free = i
	}
	for i, a := range positional {
		if i < free && strings.HasPrefix(a, "-") && len(a) > 1 && !isNumber(a) {
			fmt.Fprintf(stderr, "persistgen-ops %s: %q after the arguments: flags go before them\n", cmd, a)
			return exitUsage
		}
	}
	if *limit < 0 {
		fmt.Fprintf(stderr, "persistgen-ops %s: -limit %d: give 0 (all rows) or more\n", cmd, *limit)
		return exitUsage
	}
	data, err := os.ReadFile(*manifest)
	if err != nil {
		fmt.Fprintf(stderr, "persistgen-ops: %v\n", err)
		return exitIO
	}
	spec, err := gen.Load(*manifest, data)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitManifest
	}
	var schemas []*runtime.Schema
	for _, d := range spec.Domains() {
		schemas = append(schemas, spec.Schema(d))
	}
	// The domains named on the command line (audit; inspect names one).
	var picked []*runtime.Schema
	names := positional
	if cmd == "inspect" {
		names = names[:1]
	}
	for _, n := range names {
		i := slices.IndexFunc(schemas, func(s *runtime.Schema) bool { return s.Domain == n })
		if i < 0 {
			fmt.Fprintf(stderr, "persistgen-ops %s: no domain %q in %s (its domains: %v)\n", cmd, n, *manifest, spec.Domains())
			return exitUsage
		}
		picked = append(picked, schemas[i])
	}
	var parts []any
	var at, known time.Time
	if cmd == "inspect" && *knownAt != "" {
		if picked[0].History == nil {
			fmt.Fprintf(stderr, "persistgen-ops inspect: %s keeps no history; -known-at applies to domains with a history block\n", picked[0].Domain)
			return exitUsage
		}
		if known, err = parseTime(*knownAt); err != nil {
			fmt.Fprintf(stderr, "persistgen-ops inspect: -known-at: %v\n", err)
			return exitUsage
		}
	}
	if cmd == "inspect" {
		if parts, err = keyParts(picked[0], positional[1:]); err != nil {
			fmt.Fprintf(stderr, "persistgen-ops inspect: %v\n", err)
			return exitUsage
		}
		if *asOf != "" {
			if !picked[0].HasWhen {
				fmt.Fprintf(stderr, "persistgen-ops inspect: %s has no when column; -as-of applies to domains with when: true\n", picked[0].Domain)
				return exitUsage
			}
			if at, err = parseTime(*asOf); err != nil {
				fmt.Fprintf(stderr, "persistgen-ops inspect: %v\n", err)
				return exitUsage
			}
		}
	}

	cfg := runtime.ConfigFromEnv()
	cfg.KeyPrefix = *keyPrefix
	cfg.DisableRedis = cmd != "audit"
	// No capability probe: it writes a probe collection, and these
	// commands change nothing unless asked (they need no capability).
	cfg.Capabilities = &runtime.Capabilities{}
	cfg.ReadyTimeout = *timeout
	conn, err := runtime.Open(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "persistgen-ops: %v\n", err)
		return exitServer
	}
	defer conn.Close(context.Background())
	if err := conn.Ready(ctx); err != nil {
		fmt.Fprintf(stderr, "persistgen-ops: %v\n", err)
		return exitServer
	}

	switch cmd {
	case "inspect":
		if _, err := inspect(ctx, conn, picked[0], parts, at, known, *limit, *removed, stdout); err != nil {
			fmt.Fprintf(stderr, "persistgen-ops inspect: %v\n", err)
			return exitServer
		}
		return exitOK
	case "audit":
		if len(picked) == 0 {
			picked = schemas
		}
		fmt.Fprintf(stderr, "audit: database %s, Redis key prefix %q\n", conn.Database().Name(), *keyPrefix)
		a := &auditor{conn: conn, rdb: conn.Redis(), ns: *keyPrefix, repair: *repair, force: *force, out: stdout, errOut: stderr,
			progress: newProgress(stderr, *quiet), casLua: redis.NewScript(casScript), found: map[string]int{}}
		return runAudit(ctx, a, picked, stderr)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout+time.Minute)
	defer cancel()
	sharding := cmd == "plan"
	steps, code := plan(ctx, conn, schemas, sharding, stdout, stderr)
	if !*apply || code != exitPending { // nothing to do, a conflict or a failure: nothing is applied
		return code
	}
	if err := conn.ApplyPlan(ctx, steps); err != nil {
		fmt.Fprintf(stderr, "persistgen-ops: %v\n", err)
		return exitServer
	}
	fmt.Fprintln(stdout, "applied; the plan now:")
	_, code = plan(ctx, conn, schemas, sharding, stdout, stderr)
	return code
}

// runAudit audits the identity-mode domains among schemas and prints a
// summary on stderr.
func runAudit(ctx context.Context, a *auditor, schemas []*runtime.Schema, stderr io.Writer) int {
	for _, s := range schemas {
		if _, err := a.checkMarkers(ctx, s); err != nil {
			fmt.Fprintf(stderr, "persistgen-ops audit: %v\n", err)
			return exitServer
		}
		if s.History != nil {
			if err := a.auditHistory(ctx, s); err != nil {
				fmt.Fprintf(stderr, "persistgen-ops audit: %v\n", err)
				return exitServer
			}
		}
		if s.Mode() != runtime.CacheIdentity && s.Mode() != runtime.CacheSeries { // series keeps identities too
			fmt.Fprintf(stderr, "audit %s: skipped: cache mode %s keeps no identities\n", s.Domain, s.Mode())
			continue
		}
		if err := a.auditDomain(ctx, s); err != nil {
			fmt.Fprintf(stderr, "persistgen-ops audit: %v\n", err)
			return exitServer
		}
	}
	total := 0
	for _, n := range a.found {
		total += n
	}
	fmt.Fprintf(stderr, "audit: %d found %v, %d repaired, %d left (changed since read, or not repairable here)\n", total, a.found, a.fixed, a.skipped+a.unowned+a.found[findBadKey]+a.found[findDuplicate]+a.found[findMode]+a.found[findGap]+a.found[findVersion]-min(a.found[findVersion], a.historyFixed))
	if total > a.fixed {
		return exitPending
	}
	return exitOK
}

// plan prints the plan, one step a line, and its exit code.
func plan(ctx context.Context, conn *runtime.Conn, schemas []*runtime.Schema, sharding bool, stdout, stderr io.Writer) ([]runtime.PlanStep, int) {
	steps, err := conn.PlanIndexes(ctx, schemas...)
	if err != nil {
		fmt.Fprintf(stderr, "persistgen-ops: %v\n", err)
		return nil, exitServer
	}
	if sharding {
		sh, err := conn.PlanSharding(ctx, schemas...)
		if err != nil {
			fmt.Fprintf(stderr, "persistgen-ops: %v\n", err)
			return nil, exitServer
		}
		steps = append(steps, sh...)
	}
	code := exitOK
	for _, st := range steps {
		line := fmt.Sprintf("%-8s %s %s %s", st.Action, st.Collection, st.Name, st.What)
		if st.Detail != "" {
			line += " (" + st.Detail + ")"
		}
		fmt.Fprintln(stdout, line)
		switch st.Action {
		case runtime.PlanConflict:
			code = exitConflict
		case runtime.PlanCreate, runtime.PlanShard:
			if code == exitOK {
				code = exitPending
			}
		}
	}
	return steps, code
}

// isNumber reports a negative number given as a key part (-7).
func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}
