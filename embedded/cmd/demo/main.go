// Command demo replays a synthetic backtest, then a short live session,
// through all sixteen generated repositories: candles written in batches and
// read back in windows, a moving-average strategy that opens and closes
// signals, schedules, risk positions, partial and breakeven levels, storage
// and notification feeds, log lines, measure and interval caches, memory,
// recent, state and session rows. Every write is read back
// (read-after-write) and every timed row is checked against the simulated
// clock (look-ahead). It ends with a table of operations, round trips per
// operation, cache hit rate and errors per domain, and exits non-zero if any
// check failed.
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
	"strings"
	"time"

	"github.com/persistgen/persistgen/embedded/servers"
	"github.com/persistgen/persistgen/runtime"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := runContext(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type options struct {
	dataDir   string
	symbols   []string
	days      int
	every     time.Duration
	metrics   string
	month     bool
	monthDays int
	out       io.Writer
	stderr    io.Writer      // the progress bars (on a terminal only)
	cfg       runtime.Config // the servers', for the Conns the figures need
}

func run(args []string, out io.Writer) error {
	return runContext(context.Background(), args, out, io.Discard)
}

// runContext runs the demo until it is done, or ctx ends; with -metrics,
// it then serves the metrics until ctx ends.
func runContext(ctx context.Context, args []string, out, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	o := options{out: out, stderr: stderr}
	fs.StringVar(&o.dataDir, "data", "", "directory for the embedded MongoDB-wire server's data (default: a temporary directory, removed at exit)")
	symbols := fs.String("symbols", "BTCUSDT,ETHUSDT,SOLUSDT", "comma-separated symbols")
	fs.IntVar(&o.days, "days", 3, "simulated days of 1-minute candles per symbol")
	fs.DurationVar(&o.every, "every", 4*time.Hour, "simulated time between two strategy decisions (a window read each); smaller is longer")
	fs.StringVar(&o.metrics, "metrics", "", "serve OpenTelemetry metrics for Prometheus at http://ADDR/metrics (host:port), and keep serving them after the replay until interrupted")
	fs.BoolVar(&o.month, "month", false, "instead of the replay, backtest-kit's month: 31 days of one-minute candles for the first symbol written, then every simulated minute read the way backtest-kit reads it, with ms and round trips per minute (a progress bar on a terminal)")
	fs.IntVar(&o.monthDays, "month-days", monthDaysDefault, "days in the -month run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.symbols = strings.Split(*symbols, ",")
	switch {
	case o.days < 1:
		return errors.New("-days must be at least 1")
	case o.monthDays < 1:
		return errors.New("-month-days must be at least 1")
	case o.every < time.Hour || o.every%time.Minute != 0:
		return errors.New("-every must be whole minutes, at least 1h (the strategy reads a one-hour window)")
	}

	var m *metrics
	if o.metrics != "" { // a bad or taken address fails before any server starts
		var err error
		if m, err = startMetrics(o.metrics, o.out); err != nil {
			return err
		}
		defer m.stop()
	}
	cfg, cleanup, err := pickServers(ctx, o)
	if err != nil {
		return err
	}
	defer cleanup()
	if m != nil {
		cfg.Observer = m.observer
	}
	o.cfg = cfg
	conn, err := runtime.Open(cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if m != nil {
		if err := m.register(conn); err != nil {
			return err
		}
	}
	if o.month {
		err = replayMonth(ctx, conn, o)
	} else {
		err = replay(ctx, conn, o)
	}
	if err != nil || m == nil {
		return err
	}
	m.hold(ctx, o.out)
	return nil
}

// pickServers returns the Config to use: upstream's environment when it
// names a MongoDB, else embedded servers.
func pickServers(ctx context.Context, o options) (runtime.Config, func(), error) {
	if os.Getenv("CC_MONGO_CONNECTION_STRING") != "" {
		cfg := runtime.ConfigFromEnv()
		// Connection strings may carry passwords: only redacted ones are shown.
		fmt.Fprintf(o.out, "servers: from the environment (MongoDB %s, Redis %s)\n", runtime.RedactURI(cfg.MongoURI), cfg.RedisAddr)
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
