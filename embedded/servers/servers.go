// Package servers starts in-process stand-ins for the servers persistgen talks
// to: FerretDB (a MongoDB-wire server over PostgreSQL or SQLite) and miniredis
// (a Redis-protocol server). They live in this module of their own so that the
// root module's go.mod never carries their dependency trees.
package servers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/alicebob/miniredis/v2"
)

// MongoOptions chooses the backend of an embedded FerretDB.
type MongoOptions struct {
	// Listen is the TCP address, "127.0.0.1:0" (a free port) when empty.
	Listen string
	// PostgreSQLURL selects the PostgreSQL backend when set.
	PostgreSQLURL string
	// SQLiteDir selects the SQLite backend (a directory, created if needed)
	// when PostgreSQLURL is empty.
	SQLiteDir string
	// Logger receives FerretDB's own logs; discarded when nil.
	Logger *slog.Logger
}

// Mongo is a running embedded FerretDB.
type Mongo struct {
	URI    string
	cancel context.CancelFunc
	done   chan error
}

// StartMongo starts FerretDB and returns once it accepts connections.
func StartMongo(ctx context.Context, o MongoOptions) (*Mongo, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: o.Listen},
		Logger:   logger,
	}
	switch {
	case o.PostgreSQLURL != "":
		cfg.Handler = "postgresql"
		cfg.PostgreSQLURL = o.PostgreSQLURL
	case o.SQLiteDir != "":
		if err := os.MkdirAll(o.SQLiteDir, 0o755); err != nil {
			return nil, fmt.Errorf("ferretdb: sqlite directory: %w", err)
		}
		cfg.Handler = "sqlite"
		cfg.SQLiteURL = "file:" + o.SQLiteDir + "/"
	default:
		return nil, errors.New("ferretdb: set PostgreSQLURL or SQLiteDir")
	}
	f, err := ferretdb.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("ferretdb: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m := &Mongo{cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- f.Run(runCtx) }()

	// ferretdb.New has already bound the listener; the URI is final.
	m.URI = f.MongoDBURI()
	return m, nil
}

// Stop stops the server and waits for it to finish.
func (m *Mongo) Stop() {
	m.cancel()
	<-m.done
}

// Redis is a running embedded Redis-protocol server (miniredis).
type Redis struct {
	Addr string
	mr   *miniredis.Miniredis
}

// StartRedis starts miniredis on a free loopback port.
func StartRedis() (*Redis, error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		return nil, fmt.Errorf("miniredis: %w", err)
	}
	return &Redis{Addr: mr.Addr(), mr: mr}, nil
}

// Stop stops the server.
func (r *Redis) Stop() { r.mr.Close() }
