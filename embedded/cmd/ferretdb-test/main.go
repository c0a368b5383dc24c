// Command ferretdb-test runs an embedded FerretDB for the test suite.
//
// With -pg-admin it creates a PostgreSQL database of its own (named
// persistgen_test_<random>), serves on it, and drops it on exit; with
// -sqlite it serves from a directory. It prints "MONGODB_URI=<uri>" on stdout
// once it accepts connections and runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/persistgen/persistgen/embedded/servers"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-test:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on")
	pgAdmin := flag.String("pg-admin", "", "PostgreSQL URL of a database to connect to for CREATE/DROP DATABASE; selects the PostgreSQL backend on a new temporary database")
	sqlite := flag.String("sqlite", "", "SQLite directory (selects the SQLite backend)")
	verbose := flag.Bool("v", false, "log FerretDB's messages to stderr")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var logger *slog.Logger
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	opts := servers.MongoOptions{Listen: *listen, SQLiteDir: *sqlite, Logger: logger}
	if *pgAdmin != "" {
		pgURL, drop, err := tempDatabase(ctx, *pgAdmin)
		if err != nil {
			return err
		}
		defer drop()
		opts.PostgreSQLURL = pgURL
	}
	m, err := servers.StartMongo(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Printf("MONGODB_URI=%s\n", m.URI)
	<-ctx.Done()
	m.Stop()
	return nil
}

// tempDatabase creates a database and returns its URL and a function that
// drops it.
func tempDatabase(ctx context.Context, admin string) (string, func(), error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "persistgen_test_" + hex.EncodeToString(b[:])
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("postgresql at %s: %w", admin, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(cctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, err := pgx.Connect(dctx, admin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ferretdb-test: drop:", err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(dctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "ferretdb-test: drop:", err)
		}
	}
	return u.String(), drop, nil
}
