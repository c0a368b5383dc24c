// Package runtime is persistgen's generic engine: the code generated from
// domains.yaml is a thin typed layer over it.
//
// A Conn holds the MongoDB client and database, the Redis client, a
// log/slog logger (silent by default) and round-trip counters. Open it from
// a Config (or ConfigFromEnv, which reads upstream's CC_* variables); the
// first operation waits for both servers (Ready), later ones pay one atomic
// load for that.
//
// A Repo[K, P] stores one domain, described as data by a Schema: MongoDB is
// the source of truth (one collection, a unique index equal to the key), and
// Redis maps each key to its document's _id. Reads try the identity first,
// writes are one atomic upsert followed by setting the identity, and Redis is
// only an accelerator: when it fails, operations go on against MongoDB.
//
//	conn, err := runtime.Open(runtime.ConfigFromEnv())
//	defer conn.Close(ctx)
//	signals, err := runtime.NewRepo[SignalKey, *SignalRow](conn, schema)
//	err = conn.EnsureIndexes(ctx, schema)
//	err = signals.Put(ctx, key, row, time.Time{})
//	rec, err := signals.Get(ctx, key) // errors.Is(err, runtime.ErrNotFound) when absent
//
// Every error is an *OpError naming the operation, the domain and, for a
// one-key call, the key (a batch carries a *BatchError with each item's
// outcome), and wraps ErrNotFound, ErrInvalidKey, ErrInvalidArgument, ErrUnavailable,
// ErrIndexConflict or ErrSchema. Round trips are counted per operation in
// Conn.Stats and per call with WithTrace.
package runtime
