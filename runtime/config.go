package runtime

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultMongoURI is upstream's default connection string.
const DefaultMongoURI = "mongodb://localhost:27017/backtest-kit?wtimeoutMS=15000"

// DefaultDatabase is used when the connection string names no database.
const DefaultDatabase = "backtest-kit"

// Config configures a Conn. The zero value works against MongoDB and Redis
// on localhost with upstream's defaults; ConfigFromEnv reads upstream's
// environment variables into it.
type Config struct {
	// MongoURI is the MongoDB connection string (DefaultMongoURI when empty).
	MongoURI string
	// Database overrides the database named in MongoURI (DefaultDatabase
	// when neither names one).
	Database string
	// MongoPasswordFile names a file holding the password of the user in
	// MongoURI (CC_MONGO_PASSWORD_FILE), so that the connection string in
	// the environment carries none: a Docker or Kubernetes secret. Read by
	// Open; a trailing newline is dropped.
	MongoPasswordFile string

	// RedisURL, when set, configures Redis from a redis:// URL (rediss:// for
	// TLS) and takes precedence over RedisAddr, RedisUsername, RedisPassword
	// and RedisDB.
	RedisURL string
	// RedisAddr is host:port (127.0.0.1:6379 when empty).
	RedisAddr     string
	RedisUsername string
	RedisPassword string
	RedisDB       int
	// RedisPasswordFile names a file holding RedisPassword
	// (CC_REDIS_PASSWORD_FILE); it wins over RedisPassword and the URL's.
	RedisPasswordFile string
	// RedisTLS connects to Redis over TLS, trusting the system's CAs, or
	// RedisTLSCAFile's when set (CC_REDIS_TLS=true, CC_REDIS_TLS_CA). A
	// client certificate is RedisTLSCertFile and RedisTLSKeyFile
	// (CC_REDIS_TLS_CERT, CC_REDIS_TLS_KEY). RedisTLSConfig, when set, is
	// used as is and implies RedisTLS. The files are read by Open.
	RedisTLS                          bool
	RedisTLSCAFile                    string
	RedisTLSCertFile, RedisTLSKeyFile string
	RedisTLSConfig                    *tls.Config
	// RedisClusterAddrs, when set, makes the Conn talk to a Redis Cluster
	// through these seed nodes (host:port; CC_REDIS_CLUSTER, comma
	// separated), with the credentials and TLS of the fields above (or of
	// RedisURL); RedisAddr and the URL's host are then not used, and the
	// database must be 0. Every script the runtime runs touches one key,
	// and every value key is a hash tag, so all work on a cluster.
	RedisClusterAddrs []string
	// Redis, when set, is used instead of a client built from the fields
	// above: a *redis.Client, *redis.ClusterClient or *redis.Ring. The Conn
	// adds its accounting hook to it and does not close it.
	Redis RedisClient
	// DisableRedis runs without the identity cache: every read goes to MongoDB.
	DisableRedis bool
	// KeyPrefix is put in front of every Redis key (a namespace, e.g. for
	// tests or several deployments sharing one Redis). Empty by default, which
	// keeps the keys identical to upstream's.
	KeyPrefix string

	// ReadyTimeout bounds the wait for each server on the first operation
	// (15s when zero).
	ReadyTimeout time.Duration
	// RedisRequired makes the first operation fail when Redis does not answer
	// within ReadyTimeout. By default a Redis that is down is logged and the
	// runtime works against MongoDB alone until Redis answers again.
	RedisRequired bool
	// RedisTimeout bounds each Redis round trip of a client the Conn builds
	// (500ms when zero). A slow Redis is treated as a down one.
	RedisTimeout time.Duration
	// RedisRetryAfter is how long the cache is bypassed after a Redis failure
	// before it is tried again (1s when zero).
	RedisRetryAfter time.Duration
	// OpTimeout bounds each MongoDB call the runtime makes (10s when zero;
	// negative: no bound but the caller's context), so that a server that
	// stops answering cannot hold an operation forever: the call fails with
	// an error wrapping ErrUnavailable that says so. A batch write's call is
	// allowed OpTimeout for every 1,000 items it carries; each batch of a
	// streamed list gets its own OpTimeout.
	OpTimeout time.Duration

	// WriteChunk is the most operations one bulk write carries. Zero
	// chooses Capabilities.MaxBulk: the server's maxWriteBatchSize (100,000
	// on MongoDB and FerretDB v2), or 10 on a server whose bulk results are
	// inexact (FerretDB v1, which hangs when more than about 50 matched
	// updates are in flight across all its clients; a Conn sends one bulk
	// write at a time there, so 10 leaves room for four writers).
	WriteChunk int
	// Capabilities, when set, is what the server can do, and the Conn does
	// not probe (see ProbeCollection): for a deployment that grants no write
	// on the probe collection, or a read-only one. MaxBulk 0 means what the
	// probe would choose: 100,000 with BulkResults, else 10.
	Capabilities *Capabilities
	// ReadChunk is the most keys one batch read query carries (1000 when zero).
	ReadChunk int
	// ListBatch is the cursor batch size of an unlimited list (1000 when zero).
	ListBatch int
	// TupleForm is how tuple payloads (upstream's [key, value] pairs) are
	// written: TupleArray (upstream's shape), TupleDocument ({key, value}
	// documents) or TupleAuto (the zero value): arrays where the server
	// stores nested arrays (Capabilities.NestedArrays), documents where it
	// does not (FerretDB v1). Reads accept both forms.
	TupleForm TupleForm
	// Observer, when set, watches every repository operation and MongoDB
	// command (spans, latencies): see Observer and package telemetry. Nil,
	// the default, costs nothing but a nil check.
	Observer Observer
	// DisableAutoIndexes stops the Conn creating a collection's missing
	// indexes before its first write. Without it, the Conn creates them
	// (create-only, as EnsureIndexes: once per collection); with it, or
	// where the user may not create indexes, a write to a collection
	// whose unique index is missing fails with ErrIndexMissing instead of
	// leaving duplicate rows behind racing upserts.
	DisableAutoIndexes bool
	// LocalCacheEntries bounds the in-process tier of the local cache mode:
	// how many rows (of all local-mode domains together) the Conn keeps,
	// the least recently used evicted first (DefaultLocalCacheEntries,
	// 10,000, when zero). Each holds one row's BSON document. Negative:
	// no in-process tier; local-mode domains then work as value mode.
	LocalCacheEntries int
	// SeriesCacheBytes bounds the in-process tier of the series cache mode:
	// the bytes of elements (and their bookkeeping) the Conn keeps for all
	// its series-mode domains together, whole blocks of 1,024 positions
	// evicted least recently used first (DefaultSeriesCacheBytes, 64 MiB,
	// when zero). Negative: no tier; every window reads MongoDB.
	SeriesCacheBytes int64
	// SeriesReadAhead, when positive, overrides every series-mode domain's
	// read-ahead (Schema.SeriesReadAhead): how many elements past a
	// window's end a window read that goes to MongoDB fetches with it.
	// Negative: none (only what a window asks for).
	SeriesReadAhead int
	// UpsertRetries bounds the retries of a write that lost a race to
	// another writer of the same key (a duplicate key error, or DocumentDB's
	// deadlock and exclusion-constraint errors; see raceOf), each after a
	// jittered wait growing to 256 ms (32 when zero: about six seconds of
	// waiting at most; DocumentDB's deadlocks between writers of the same
	// keys in bulk can repeat more than 16 times on a busy machine).
	UpsertRetries int

	// Logger receives warnings (Redis failures, healed identities). Silent
	// when nil.
	Logger *slog.Logger
	// Now is the clock for createDate and updatedDate (time.Now when nil).
	Now func() time.Time
}

// TupleForm chooses how tuples are stored; see Config.TupleForm.
type TupleForm string

const (
	TupleAuto     TupleForm = ""
	TupleArray    TupleForm = "array"
	TupleDocument TupleForm = "document"
)

// ConfigFromEnv returns a Config filled from upstream's environment
// variables: CC_MONGO_CONNECTION_STRING (TLS through its tls and tlsCAFile
// options), CC_REDIS_HOST, CC_REDIS_PORT, CC_REDIS_USER and
// CC_REDIS_PASSWORD, and in the same style CC_REDIS_TLS (true or 1),
// CC_REDIS_TLS_CA, CC_REDIS_TLS_CERT and CC_REDIS_TLS_KEY (PEM files), and
// CC_MONGO_PASSWORD_FILE and CC_REDIS_PASSWORD_FILE (secrets in files).
// Unset variables keep the defaults.
func ConfigFromEnv() Config {
	return configFrom(os.LookupEnv)
}

func configFrom(lookup func(string) (string, bool)) Config {
	var c Config
	if v, ok := lookup("CC_MONGO_CONNECTION_STRING"); ok && v != "" {
		c.MongoURI = v
	}
	host, port := "127.0.0.1", "6379"
	if v, ok := lookup("CC_REDIS_HOST"); ok && v != "" {
		host = v
	}
	if v, ok := lookup("CC_REDIS_PORT"); ok && v != "" {
		port = v
	}
	c.RedisAddr = host + ":" + port
	c.RedisUsername, _ = lookup("CC_REDIS_USER")
	c.RedisPassword, _ = lookup("CC_REDIS_PASSWORD")
	c.MongoPasswordFile, _ = lookup("CC_MONGO_PASSWORD_FILE")
	c.RedisPasswordFile, _ = lookup("CC_REDIS_PASSWORD_FILE")
	if v, _ := lookup("CC_REDIS_TLS"); v == "1" || strings.EqualFold(v, "true") {
		c.RedisTLS = true
	}
	if v, _ := lookup("CC_REDIS_CLUSTER"); strings.TrimSpace(v) != "" {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.RedisClusterAddrs = append(c.RedisClusterAddrs, a)
			}
		}
	}
	c.RedisTLSCAFile, _ = lookup("CC_REDIS_TLS_CA")
	c.RedisTLSCertFile, _ = lookup("CC_REDIS_TLS_CERT")
	c.RedisTLSKeyFile, _ = lookup("CC_REDIS_TLS_KEY")
	if c.RedisTLSCAFile != "" || c.RedisTLSCertFile != "" || c.RedisTLSKeyFile != "" {
		c.RedisTLS = true
	}
	return c
}

func (c Config) withDefaults() Config {
	if c.MongoURI == "" {
		c.MongoURI = DefaultMongoURI
	}
	if c.RedisAddr == "" {
		c.RedisAddr = "127.0.0.1:6379"
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 15 * time.Second
	}
	if c.RedisTimeout <= 0 {
		c.RedisTimeout = 500 * time.Millisecond
	}
	if c.RedisRetryAfter <= 0 {
		c.RedisRetryAfter = time.Second
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = 10 * time.Second
	}
	if c.ReadChunk <= 0 {
		c.ReadChunk = 1000
	}
	if c.ListBatch <= 0 {
		c.ListBatch = 1000
	}
	if c.UpsertRetries <= 0 {
		c.UpsertRetries = 32
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) redisOptions() (*redis.Options, error) {
	var o *redis.Options
	if c.RedisURL != "" {
		var err error
		if o, err = redis.ParseURL(c.RedisURL); err != nil {
			return nil, errorf(ErrInvalidArgument, "RedisURL %q: %s; use redis://[user:password@]host:port/db (rediss:// for TLS)", RedactURI(c.RedisURL), parseDetail(c.RedisURL, err))
		}
	} else {
		o = &redis.Options{Addr: c.RedisAddr, Username: c.RedisUsername, Password: c.RedisPassword, DB: c.RedisDB}
	}
	if err := c.redisTLS(o); err != nil {
		return nil, err
	}
	if c.RedisPasswordFile != "" {
		pw, err := readSecret(c.RedisPasswordFile, "CC_REDIS_PASSWORD_FILE")
		if err != nil {
			return nil, err
		}
		o.Password = pw
	}
	o.DialTimeout = c.RedisTimeout
	o.ReadTimeout = c.RedisTimeout
	o.WriteTimeout = c.RedisTimeout
	o.PoolTimeout = c.RedisTimeout
	o.MaxRetries = -1   // a failed round trip falls back to MongoDB at once
	o.DialerRetries = 1 // and so does a failed dial (go-redis tries 5 times by default)
	o.DisableIdentity = true
	return o, nil
}

// redisCluster builds a cluster client from o's credentials, TLS and
// timeouts and the seed addresses.
func (c Config) redisCluster(o *redis.Options) (*redis.ClusterClient, error) {
	if o.DB != 0 {
		return nil, errorf(ErrInvalidArgument, "Redis database %d with RedisClusterAddrs: a Redis Cluster has database 0 only; remove the database from the URL or RedisDB", o.DB)
	}
	for _, a := range c.RedisClusterAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, errorf(ErrInvalidArgument, "Redis Cluster address %q: %v; write host:port (CC_REDIS_CLUSTER=host1:port1,host2:port2)", a, err)
		}
	}
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: c.RedisClusterAddrs, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, PoolTimeout: o.PoolTimeout,
		MaxRetries: o.MaxRetries, DisableIdentity: true,
	}), nil
}

// redisTLS sets o's TLS configuration from the RedisTLS fields.
func (c Config) redisTLS(o *redis.Options) error {
	switch {
	case c.RedisTLSConfig != nil:
		o.TLSConfig = c.RedisTLSConfig.Clone()
		return nil
	case !c.RedisTLS && c.RedisTLSCAFile == "" && c.RedisTLSCertFile == "" && c.RedisTLSKeyFile == "":
		return nil // plain, or rediss:// as ParseURL set it
	}
	if o.TLSConfig == nil {
		host, _, _ := net.SplitHostPort(o.Addr)
		o.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	if c.RedisTLSCAFile != "" {
		pem, err := os.ReadFile(c.RedisTLSCAFile)
		if err != nil {
			return errorf(ErrInvalidArgument, "Redis TLS CA file (CC_REDIS_TLS_CA): %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return errorf(ErrInvalidArgument, "Redis TLS CA file %s (CC_REDIS_TLS_CA) holds no PEM certificate", c.RedisTLSCAFile)
		}
		o.TLSConfig.RootCAs = pool
	}
	if (c.RedisTLSCertFile == "") != (c.RedisTLSKeyFile == "") {
		return errorf(ErrInvalidArgument, "a Redis TLS client certificate needs both its certificate (CC_REDIS_TLS_CERT) and its key (CC_REDIS_TLS_KEY); only one is set")
	}
	if c.RedisTLSCertFile != "" || c.RedisTLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.RedisTLSCertFile, c.RedisTLSKeyFile)
		if err != nil {
			return errorf(ErrInvalidArgument, "Redis TLS client certificate (CC_REDIS_TLS_CERT, CC_REDIS_TLS_KEY): %v", err)
		}
		o.TLSConfig.Certificates = []tls.Certificate{cert}
	}
	return nil
}

// parseDetail is a parser's complaint about a connection string, unless
// the string holds a password: parsers quote the string, or pieces of it,
// so then the complaint is withheld.
func parseDetail(uri string, err error) string {
	if len(uriSecrets(uri)) > 0 {
		return "it does not parse (the parser's message is withheld, as the string holds a password: check for unescaped '@', ':', '/', '?', '#' or '%' in the password)"
	}
	return err.Error()
}

// readSecret reads a password from a file, without its trailing newline.
func readSecret(path, variable string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", errorf(ErrInvalidArgument, "password file (%s): %v", variable, err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", errorf(ErrInvalidArgument, "password file %s (%s) is empty", path, variable)
	}
	return pw, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
