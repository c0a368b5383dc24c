// Command persistgen-ops is the operator's side of persistgen: it talks to
// the live servers (the generator, persistgen, never does, so that the
// tool a project pins in its go.mod pulls in no database driver).
//
//	persistgen-ops plan [-manifest domains.yaml] [-apply]
//
// plan compares the live deployment with the manifest: the indexes every
// domain needs (create, ok, other: present under another name, conflict)
// and, for domains with a shard key, the collection's sharding (shard, ok,
// conflict, or skip where the server is not a sharded cluster). It changes
// nothing unless -apply is given, and then only creates indexes and shards
// collections: it never drops or changes one.
//
// It reads the servers from the same CC_* variables as the runtime
// (CC_MONGO_CONNECTION_STRING, CC_MONGO_PASSWORD_FILE...); Redis is not
// used. Exit codes: 0 nothing to do; 1 the plan has steps to apply (after
// -apply: none left); 2 bad usage; 3 the manifest is invalid; 4 a file
// could not be read; 5 a conflict needs a person; 6 a server failed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

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
  persistgen-ops plan [-manifest domains.yaml] [-apply]

The servers come from the CC_* variables, as for the runtime.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "plan" {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	manifest := fs.String("manifest", "domains.yaml", "the manifest")
	apply := fs.Bool("apply", false, "create the missing indexes and shard the collections to shard")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the server")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		fmt.Fprint(stderr, usage)
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
	cfg := runtime.ConfigFromEnv()
	cfg.DisableRedis = true
	// No capability probe: it writes a probe collection, and a plan
	// changes nothing unless asked (it needs no capability either).
	cfg.Capabilities = &runtime.Capabilities{}
	cfg.ReadyTimeout = *timeout
	conn, err := runtime.Open(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "persistgen-ops: %v\n", err)
		return exitServer
	}
	defer conn.Close(context.Background())
	ctx, cancel := context.WithTimeout(ctx, *timeout+time.Minute)
	defer cancel()
	steps, code := plan(ctx, conn, schemas, stdout, stderr)
	if !*apply || code != exitPending { // nothing to do, a conflict or a failure: nothing is applied
		return code
	}
	if err := conn.ApplyPlan(ctx, steps); err != nil {
		fmt.Fprintf(stderr, "persistgen-ops: %v\n", err)
		return exitServer
	}
	fmt.Fprintln(stdout, "applied; the plan now:")
	_, code = plan(ctx, conn, schemas, stdout, stderr)
	return code
}

// plan prints the plan, one step a line, and its exit code.
func plan(ctx context.Context, conn *runtime.Conn, schemas []*runtime.Schema, stdout, stderr io.Writer) ([]runtime.PlanStep, int) {
	ix, err := conn.PlanIndexes(ctx, schemas...)
	if err != nil {
		fmt.Fprintf(stderr, "persistgen-ops: %v\n", err)
		return nil, exitServer
	}
	sh, err := conn.PlanSharding(ctx, schemas...)
	if err != nil {
		fmt.Fprintf(stderr, "persistgen-ops: %v\n", err)
		return nil, exitServer
	}
	steps := append(ix, sh...)
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
