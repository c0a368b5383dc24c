// Command demo replays a small synthetic backtest through persistgen's
// runtime: candles written in batches and read back in windows, a moving
// average strategy whose signals and memory are written with the simulated
// clock, and checks of read-after-write and look-ahead on every step.
//
// By default it starts an embedded FerretDB (SQLite, in a temporary
// directory or -data DIR) and an embedded Redis-protocol server, so nothing
// needs installing. With CC_MONGO_CONNECTION_STRING set it uses upstream's
// environment variables (CC_REDIS_HOST, CC_REDIS_PORT, ...) instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/persistgen/persistgen/embedded/servers"
	"github.com/persistgen/persistgen/runtime"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type options struct {
	dataDir string
	symbols []string
	hours   int
	out     io.Writer
}

func run() error {
	var o options
	flag.StringVar(&o.dataDir, "data", "", "directory for the embedded MongoDB-wire server's data (default: a temporary directory, removed at exit)")
	flag.IntVar(&o.hours, "hours", 12, "simulated hours of 1-minute candles per symbol")
	flag.Parse()
	o.symbols = []string{"BTCUSDT", "ETHUSDT"}
	o.out = os.Stdout
	if o.hours < 2 {
		return errors.New("-hours must be at least 2")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	cfg, cleanup, err := pickServers(ctx, o)
	if err != nil {
		return err
	}
	defer cleanup()
	conn, err := runtime.Open(cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return replay(ctx, conn, o)
}

// pickServers returns the Config to use: upstream's environment when it names a
// MongoDB, else embedded servers.
func pickServers(ctx context.Context, o options) (runtime.Config, func(), error) {
	if os.Getenv("CC_MONGO_CONNECTION_STRING") != "" {
		cfg := runtime.ConfigFromEnv()
		fmt.Fprintf(o.out, "servers: from the environment (MongoDB %s)\n", cfg.MongoURI)
		return cfg, func() {}, nil
	}
	dir, remove := o.dataDir, false
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "persistgen-demo-"); err != nil {
			return runtime.Config{}, nil, err
		}
		remove = true
	}
	m, err := servers.StartMongo(ctx, servers.MongoOptions{SQLiteDir: dir})
	if err != nil {
		return runtime.Config{}, nil, err
	}
	r, err := servers.StartRedis()
	if err != nil {
		m.Stop()
		return runtime.Config{}, nil, err
	}
	fmt.Fprintf(o.out, "servers: embedded FerretDB on SQLite in %s, embedded Redis at %s\n", dir, r.Addr)
	cleanup := func() {
		r.Stop()
		m.Stop()
		if remove {
			_ = os.RemoveAll(dir)
		}
	}
	return runtime.Config{MongoURI: m.URI + "backtest-kit", RedisAddr: r.Addr}, cleanup, nil
}
