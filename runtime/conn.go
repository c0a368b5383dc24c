package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/persistgen/persistgen/internal/cache"
)

// ServerInfo describes the MongoDB-wire server, known once Ready succeeded.
type ServerInfo struct {
	// Version is the MongoDB version the server reports (FerretDB reports
	// the one it is compatible with).
	Version string
	// Product names the server for messages and reports, e.g. "MongoDB
	// 8.0.4" or "FerretDB v2.5.0 (MongoDB 7.0.77 compatible)". The runtime
	// never branches on it: it branches on Capabilities.
	Product string
	// Capabilities is what the server was found to do.
	Capabilities Capabilities
	// ClockOffset is the server's clock less this process's (Config.Now),
	// measured once when the Conn first reached the server: history's
	// recorded times are this process's clock moved by it (zero where the
	// server does not report its time).
	ClockOffset time.Duration
}

// Conn holds the MongoDB client and database, the Redis client, the logger
// and the counters. It is safe for concurrent use; every repository built on
// it shares them. Create it with Open, release it with Close.
type Conn struct {
	cfg       Config
	client    *mongo.Client
	db        *mongo.Database
	mongoAddr string
	mongoUser string
	rdb       RedisClient
	ownsRedis bool
	redisAddr string
	redisUser string
	// secrets are the passwords of the configuration: no error or log line
	// the Conn produces shows them.
	secrets scrubber
	// breaker absorbs Redis failures for every cache mode; values is the
	// Conn's part of the value and local modes (both nil without Redis).
	breaker *cache.Breaker
	values  *cache.Shared
	// series is the in-process tier of the series mode's domains.
	series   *cache.SeriesTier
	log      *slog.Logger
	counters counters
	ids      *idGen

	// colls are the collections this Conn's Repos use, and indexedColls
	// those whose indexes were made sure of (collections.go).
	collsMu      sync.Mutex
	colls        map[string]*collection
	indexedColls map[string]bool

	ready      atomic.Bool
	readyMu    sync.Mutex
	waiting    *readyWait // the wait in progress, if any (under readyMu)
	server     ServerInfo
	writeChunk int
	// bulkSlot, on a server without exact bulk results (FerretDB v1), lets
	// one bulk write of this Conn run at a time: such a server holds a
	// pooled PostgreSQL connection for every matched update, and bulk
	// updates in flight together exhaust its pool and hang it.
	bulkSlot chan struct{}
}

// Open builds a Conn without touching the network: the first operation (or
// an explicit Ready) waits for the servers.
func Open(cfg Config) (*Conn, error) {
	cfg = cfg.withDefaults()
	switch cfg.TupleForm {
	case TupleAuto, TupleArray, TupleDocument:
	default:
		return nil, &OpError{Op: "open", Err: errorf(ErrInvalidArgument, "TupleForm %q: use \"array\", \"document\" or empty (auto)", cfg.TupleForm)}
	}
	if cfg.Capabilities != nil && cfg.Capabilities.MaxBulk < 0 {
		return nil, &OpError{Op: "open", Err: errorf(ErrInvalidArgument, "Capabilities.MaxBulk %d is negative: give the most operations one bulk write may carry, or 0 for the default", cfg.Capabilities.MaxBulk)}
	}
	if cfg.WriteChunk < 0 {
		return nil, &OpError{Op: "open", Err: errorf(ErrInvalidArgument, "WriteChunk %d is negative: give the most operations one bulk write may carry, or 0 for the default", cfg.WriteChunk)}
	}
	if cfg.SeriesReadAhead > maxSeriesReadAhead {
		return nil, &OpError{Op: "open", Err: errorf(ErrInvalidArgument, "SeriesReadAhead %d: at most %d elements past a window's end (0 keeps each domain's read_ahead, a negative value turns read-ahead off)", cfg.SeriesReadAhead, maxSeriesReadAhead)}
	}
	if cfg.RedisURL == "" && cfg.Redis == nil && len(cfg.RedisClusterAddrs) == 0 && strings.ContainsAny(cfg.RedisAddr, "@/") {
		// A URL, perhaps with a password, where a host:port belongs: said
		// without echoing it.
		return nil, &OpError{Op: "open", Err: errorf(ErrInvalidArgument, "the Redis address (CC_REDIS_HOST, Config.RedisAddr) holds a URL or a password, not a host: give the host in CC_REDIS_HOST, the port in CC_REDIS_PORT and the password in CC_REDIS_PASSWORD, or a URL in Config.RedisURL")}
	}
	secrets := scrubber(cfg.secrets())
	cs, err := connstring.ParseAndValidate(cfg.MongoURI)
	if err != nil {
		return nil, secrets.scrubOp(&OpError{Op: "open", Err: errorf(ErrInvalidArgument, "MongoDB connection string %s: %s; set CC_MONGO_CONNECTION_STRING to mongodb://[user:password@]host:port/database", RedactURI(cfg.MongoURI), parseDetail(cfg.MongoURI, err))})
	}
	dbName := cfg.Database
	if dbName == "" {
		dbName = cs.Database
	}
	if dbName == "" {
		dbName = DefaultDatabase
	}
	c := &Conn{cfg: cfg, log: cfg.Logger, mongoAddr: strings.Join(cs.Hosts, ","), mongoUser: cs.Username, ids: newIDGen(), secrets: secrets,
		series: cache.NewSeriesTier(cfg.SeriesCacheBytes)}
	opts := options.Client().ApplyURI(cfg.MongoURI).SetMonitor(c.counters.commandMonitor(cfg.Observer))
	// On a replica set or a sharded cluster a write is acknowledged once a
	// majority holds it (it survives a failover) unless the connection
	// string says otherwise, and reads go to the primary, which has every
	// acknowledged write: read-after-write, on which the caches' promises
	// rest. Retryable writes and reads stay on (the driver's default;
	// retryWrites=false in the string turns them off).
	if opts.WriteConcern == nil || opts.WriteConcern.W == nil {
		wc := writeconcern.Majority()
		if opts.WriteConcern != nil {
			wc.Journal = opts.WriteConcern.Journal
		}
		opts.SetWriteConcern(wc)
	}
	if opts.ReadPreference != nil && opts.ReadPreference.Mode() != readpref.PrimaryMode {
		return nil, secrets.scrubOp(&OpError{Op: "open", Err: errorf(ErrInvalidArgument,
			"MongoDB connection string %s asks for readPreference %s: persistgen reads from the primary only, so that a read sees every write that returned (a secondary may lag); remove readPreference from the connection string",
			RedactURI(cfg.MongoURI), opts.ReadPreference.Mode())})
	}
	opts.SetReadPreference(readpref.Primary())
	if cfg.MongoPasswordFile != "" {
		pw, err := readSecret(cfg.MongoPasswordFile, "CC_MONGO_PASSWORD_FILE")
		if err != nil {
			return nil, &OpError{Op: "open", Err: err}
		}
		if opts.Auth == nil || opts.Auth.Username == "" {
			return nil, &OpError{Op: "open", Err: errorf(ErrInvalidArgument, "a MongoDB password file (CC_MONGO_PASSWORD_FILE) needs a user in the connection string: mongodb://USER@host/database?authSource=admin")}
		}
		opts.Auth.Password, opts.Auth.PasswordSet = pw, true
		c.secrets = append(c.secrets, pw)
	}
	if c.client, err = mongo.Connect(opts); err != nil {
		return nil, secrets.scrubOp(&OpError{Op: "open", Err: errorf(ErrInvalidArgument, "MongoDB client for %s: %s", c.mongoAddr, parseDetail(cfg.MongoURI, err))})
	}
	c.db = c.client.Database(dbName)

	if !cfg.DisableRedis {
		if cfg.Redis != nil {
			c.rdb, c.redisAddr = cfg.Redis, "(caller's client)"
		} else {
			ro, err := cfg.redisOptions()
			if err != nil {
				_ = c.client.Disconnect(context.Background())
				return nil, secrets.scrubOp(&OpError{Op: "open", Err: err})
			}
			if ro.Password != "" {
				c.secrets = append(c.secrets, ro.Password)
			}
			if len(cfg.RedisClusterAddrs) > 0 {
				cc, err := cfg.redisCluster(ro)
				if err != nil {
					_ = c.client.Disconnect(context.Background())
					return nil, secrets.scrubOp(&OpError{Op: "open", Err: err})
				}
				c.rdb, c.ownsRedis, c.redisAddr, c.redisUser = cc, true, "cluster "+strings.Join(cfg.RedisClusterAddrs, ","), ro.Username
			} else {
				c.rdb, c.ownsRedis, c.redisAddr, c.redisUser = redis.NewClient(ro), true, ro.Addr, ro.Username
			}
		}
		c.rdb.AddHook(redisHook{&c.counters})
		c.breaker = cache.NewBreaker(c.rdb, cache.BreakerConfig{RetryAfter: cfg.RedisRetryAfter, Log: c.log, OnFailure: c.counters.redisFailure,
			Explain: func(err error) error { return c.secrets.scrub(c.explainRedis(err)) }})
		c.values = cache.NewShared(c.rdb, c.breaker, cache.SharedConfig{OpTimeout: cfg.OpTimeout, LocalEntries: cfg.LocalCacheEntries})
	}
	return c, nil
}

// Database returns the MongoDB database the Conn writes to.
func (c *Conn) Database() *mongo.Database { return c.db }

// Redis returns the Redis client (nil with DisableRedis). Round trips made
// through it are counted like the runtime's own.
func (c *Conn) Redis() RedisClient { return c.rdb }

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	s := c.counters.snapshot()
	if c.values != nil {
		s.Local.Entries, s.Local.Evictions = c.values.LocalStats()
	}
	s.Series = SeriesStats(c.series.Stats())
	return s
}

// Server describes the MongoDB-wire server (after Ready).
func (c *Conn) Server() ServerInfo {
	// server, writeChunk and bulkSlot are written before ready is set and
	// never again, so once ready is seen they are read without the lock:
	// every write path consults them.
	if c.ready.Load() {
		return c.server
	}
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	return c.server
}

// Capabilities is what the server was found to do (after Ready; the zero
// value before).
func (c *Conn) Capabilities() Capabilities { return c.Server().Capabilities }

// WriteChunk is the most updates one bulk write carries (after Ready).
func (c *Conn) WriteChunk() int {
	if c.ready.Load() {
		return c.writeChunk
	}
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	return c.writeChunk
}

// TuplesAsDocuments reports whether tuples are written as documents (see
// Config.TupleForm); it is known after Ready.
func (c *Conn) TuplesAsDocuments() bool {
	switch c.cfg.TupleForm {
	case TupleArray:
		return false
	case TupleDocument:
		return true
	}
	return !c.Capabilities().NestedArrays
}

// Ready is the infrastructure guard: it waits until MongoDB answers (and its
// capabilities are probed) and Redis answers, each for at most
// Config.ReadyTimeout. Every repository operation calls it; once it has
// succeeded it costs one atomic load. A failed wait returns an error
// wrapping ErrUnavailable that names the server and its address, and the
// next call waits again.
//
// One wait runs at a time, in the background, shared by every caller: a
// caller whose context ends first returns at once with its context's error
// (not ErrUnavailable), while the wait goes on for the others.
func (c *Conn) Ready(ctx context.Context) error {
	if c.ready.Load() {
		return nil
	}
	c.readyMu.Lock()
	if c.ready.Load() {
		c.readyMu.Unlock()
		return nil
	}
	w := c.waiting
	if w == nil {
		w = &readyWait{done: make(chan struct{})}
		c.waiting = w
		// Detached from this caller, whose context may end before the wait
		// does (and from its values: the wait's commands are the Conn's,
		// not the caller's operation's span's); bounded by ReadyTimeout.
		go c.waitReady(untracked(context.Background()), w)
	}
	c.readyMu.Unlock()
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return &OpError{Op: "ready", Err: fmt.Errorf("the caller's context ended while waiting for mongodb at %s: %w", c.mongoAddr, ctx.Err())}
	}
}

// readyWait is one wait for the servers; err is set before done is closed.
type readyWait struct {
	done chan struct{}
	err  error
}

func (c *Conn) waitReady(ctx context.Context, w *readyWait) {
	var wg sync.WaitGroup
	var redisErr error
	if c.rdb != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			redisErr = c.waitRedis(ctx)
		}()
	}
	info, mongoErr := c.waitMongo(ctx)
	wg.Wait()
	switch {
	case mongoErr != nil:
		w.err = c.secrets.scrubOp(&OpError{Op: "ready", Err: mongoErr})
	case redisErr != nil && c.cfg.RedisRequired:
		w.err = c.secrets.scrubOp(&OpError{Op: "ready", Err: redisErr})
	case redisErr != nil:
		c.breaker.Fail(ctx, "Redis cache", "ready", redisErr) // logs why, once
	}
	c.readyMu.Lock()
	if w.err == nil {
		c.setServer(info)
		c.ready.Store(true)
	}
	c.waiting = nil
	c.readyMu.Unlock()
	close(w.done)
}

func (c *Conn) waitMongo(ctx context.Context) (ServerInfo, error) {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	var info ServerInfo
	var last error
	for {
		// Each attempt is bounded, so that a refusal the driver only
		// reports when server selection gives up (a certificate not
		// trusted) is seen within seconds, not after ReadyTimeout.
		pctx, pcancel := context.WithTimeout(wctx, 2*time.Second)
		last = c.client.Ping(pctx, readpref.Primary())
		pcancel()
		switch {
		case mongoAuthCode(last) != 0:
			return info, c.mongoAuthError(last)
		case tlsToPlain(last):
			return info, &causeError{kind: ErrUnavailable, cause: fmt.Errorf(
				"mongodb at %s does not speak TLS on that port (%w); drop tls=true from CC_MONGO_CONNECTION_STRING, or connect to the server's TLS port",
				c.mongoAddr, last)}
		case tlsTrustError(last):
			return info, &causeError{kind: ErrUnavailable, cause: fmt.Errorf(
				"mongodb at %s: the TLS handshake failed on the server's certificate (%w); give the CA that signed it with tlsCAFile in CC_MONGO_CONNECTION_STRING, and connect by the name the certificate carries",
				c.mongoAddr, last)}
		}
		if last == nil {
			if info, last = c.probeServer(wctx); last == nil {
				break
			}
			if mongoAuthCode(last) != 0 {
				return info, c.mongoAuthError(last)
			}
			if !mongo.IsNetworkError(last) && !mongo.IsTimeout(last) && wctx.Err() == nil {
				// The server answered and refused: waiting will not help.
				return info, &causeError{kind: ErrUnavailable, cause: fmt.Errorf("mongodb at %s answered, but %w", c.mongoAddr, last)}
			}
		}
		select {
		case <-wctx.Done():
			return info, &causeError{kind: ErrUnavailable, cause: fmt.Errorf(
				"mongodb at %s did not answer within %s (last error: %v); start it or point CC_MONGO_CONNECTION_STRING at a running server",
				c.mongoAddr, c.cfg.ReadyTimeout, last)}
		case <-time.After(100 * time.Millisecond):
		}
	}
	return info, nil
}

// setServer records what the probe found (under readyMu, before ready is
// set: see Server).
func (c *Conn) setServer(info ServerInfo) {
	c.server = info
	caps := info.Capabilities
	c.writeChunk = c.cfg.WriteChunk
	if c.writeChunk <= 0 {
		c.writeChunk = caps.MaxBulk
	}
	if !caps.BulkResults {
		c.bulkSlot = make(chan struct{}, 1)
	}
	c.log.Debug("persistgen: mongodb server", "addr", c.mongoAddr, "server", info.Product,
		"nested_arrays", caps.NestedArrays, "infinity", caps.Infinity, "findandmodify_projection", caps.FindAndModifyProjection,
		"bulk_results", caps.BulkResults, "max_bulk", caps.MaxBulk, "write_chunk", c.writeChunk)
}

// acquireBulk waits for the right to send a bulk write (only on a server
// without exact bulk results) and returns the function that gives it back.
func (c *Conn) acquireBulk(ctx context.Context) (func(), error) {
	if c.bulkSlot == nil {
		return func() {}, nil
	}
	select {
	case c.bulkSlot <- struct{}{}:
		return func() { <-c.bulkSlot }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Conn) waitRedis(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, c.cfg.ReadyTimeout)
	defer cancel()
	for {
		last := c.rdb.Ping(wctx).Err()
		if last == nil {
			return nil
		}
		if redisAuthKind(last) != "" || tlsTrustError(last) || tlsToPlain(last) {
			return c.explainRedis(last) // the server answered and refused: waiting will not help
		}
		select {
		case <-wctx.Done():
			return &causeError{kind: ErrUnavailable, cause: fmt.Errorf(
				"redis at %s did not answer within %s (last error: %v); start it or set CC_REDIS_HOST and CC_REDIS_PORT",
				c.redisAddr, c.cfg.ReadyTimeout, last)}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// explainRedis turns a Redis refusal (credentials, ACL, certificate) into an
// error that says what to do; other errors are returned as they are.
func (c *Conn) explainRedis(err error) error {
	var explained *causeError
	switch {
	case errors.As(err, &explained):
		return err
	case redisAuthKind(err) != "":
		return c.redisAuthError(err)
	case tlsToPlain(err):
		return &causeError{kind: ErrUnavailable, cause: fmt.Errorf(
			"redis at %s does not speak TLS on that port (%w); unset CC_REDIS_TLS (or use redis:// rather than rediss://), or connect to the server's TLS port",
			c.redisAddr, err)}
	case tlsTrustError(err):
		return &causeError{kind: ErrUnavailable, cause: fmt.Errorf(
			"redis at %s: the TLS handshake failed on the server's certificate (%w); set CC_REDIS_TLS_CA to the CA file that signed it (Config.RedisTLSCAFile), and connect by the name the certificate carries",
			c.redisAddr, err)}
	}
	return err
}

// Close disconnects from MongoDB and closes the Redis client it built.
func (c *Conn) Close(ctx context.Context) error {
	err := c.client.Disconnect(ctx)
	if c.ownsRedis {
		err = errors.Join(err, c.rdb.Close())
	}
	return err
}

// closeTimeout bounds the clean-up calls made after an operation (closing a
// cursor, deleting the probe's documents), also once the caller's context
// has ended: they must neither be skipped by a cancelled context nor hang
// on a server that stopped answering.
const closeTimeout = 2 * time.Second

// closeCursor closes cur, bounded by closeTimeout.
func closeCursor(ctx context.Context, cur *mongo.Cursor) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	_ = cur.Close(cctx)
}

// errOpTimeout is the cause of a call's context that Config.OpTimeout ended.
var errOpTimeout = errors.New("OpTimeout")

// bound is the context of one MongoDB call: the caller's, ended after
// OpTimeout (per 1,000 items for a batch of that many) unless the caller's
// own deadline comes first.
func (c *Conn) bound(ctx context.Context, items int) (context.Context, context.CancelFunc) {
	if c.cfg.OpTimeout < 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, c.cfg.OpTimeout*time.Duration(1+items/1000), errOpTimeout)
}

// callerEnded reports whether the caller's context has ended, or its
// deadline has come: the driver's socket deadline, taken from it, can fire a
// moment before the context's own timer.
func callerEnded(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < time.Millisecond
}

// classify makes a driver error say what happened. When the caller's own
// context ended (ctx is the caller's, not a call's bound), the error wraps
// context.Canceled or context.DeadlineExceeded and not ErrUnavailable: the
// caller gave up, the server did not fail. A server that did not answer (a
// network error, no server to select, Config.OpTimeout) wraps
// ErrUnavailable. Anything else is the server's answer, returned as it is.
func (c *Conn) classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var sse topology.ServerSelectionError
	transport := mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.As(err, &sse) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	if mongoAuthCode(err) != 0 {
		return c.mongoAuthError(err)
	}
	if errors.Is(err, ErrNotInvalidated) {
		return err // MongoDB answered: the write is stored
	}
	if we := (*cache.WaitError)(nil); errors.As(err, &we) {
		return err // the caller gave up waiting for Redis; MongoDB was not asked
	}
	if me := (*cache.MarkError)(nil); errors.As(err, &me) {
		return err // Redis failed a strict write before MongoDB was asked
	}
	switch {
	case errors.Is(err, mongo.ErrClientDisconnected):
		return &causeError{kind: ErrUnavailable, cause: fmt.Errorf("the Conn is closed: %w", err)}
	case !transport:
		return err
	case callerEnded(ctx):
		cause := ctx.Err()
		if cause == nil {
			cause = context.DeadlineExceeded
		}
		return fmt.Errorf("the caller's context ended (%w) before mongodb at %s answered: %v", cause, c.mongoAddr, err)
	case mongo.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		return &causeError{kind: ErrUnavailable, cause: fmt.Errorf("mongodb at %s did not answer within %s (Config.OpTimeout): %w", c.mongoAddr, c.cfg.OpTimeout, err)}
	}
	return &causeError{kind: ErrUnavailable, cause: err}
}
