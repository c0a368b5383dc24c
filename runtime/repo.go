package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/internal/cache"
	"github.com/persistgen/persistgen/schema"
)

// Key is a typed key. KeyValues returns the key's values in unique-index
// order (string, bool, int, int32, int64 or float64). The key type must also
// decode from a stored document with bson.Unmarshal (a struct whose fields
// carry the key's BSON names), so that lists can return typed keys.
type Key interface {
	KeyValues() []any
}

// Record is one stored row.
type Record[K Key, P any] struct {
	ID      bson.ObjectID
	Key     K
	Payload P
	// When is the simulation time of the last write (zero for domains
	// without when).
	When time.Time
	// Removed is true for a soft-removed row (only lists that include
	// removed rows return such a row).
	Removed     bool
	CreateDate  time.Time
	UpdatedDate time.Time
}

// Item is one element of a batch write.
type Item[K Key, P any] struct {
	Key     K
	Payload P
	When    time.Time
}

type opID int

const (
	opGet opID = iota
	opGetAsOf
	opPut
	opInsert
	opRemove
	opExists
	opList
	opGetMany
	opInsertMany
	opPutMany
	opGetAt
	opHistory
	numOps
)

var opNames = [numOps]string{"Get", "GetAsOf", "Put", "Insert", "Remove", "Exists", "List", "GetMany", "InsertMany", "PutMany", "GetAt", "History"}

// Repo is the generic repository of one domain. Generated code wraps it with
// typed, domain-named methods; it can also be used directly.
type Repo[K Key, P any] struct {
	conn *Conn
	s    *compiled
	coll *mongo.Collection
	// cache is the domain's cache mode (internal/cache).
	cache cache.Mode
	// collection is what the Conn makes sure of before the first
	// operation on the collection (collections.go).
	collection *collection
	// clone, where the record's type can be copied (cache.Clonable):
	// local-mode hits hand out copies of a record decoded once rather
	// than decoding each time; nil otherwise.
	clone func(Record[K, P]) Record[K, P]
	// series is the series mode's side (nil in any other mode): its tier,
	// and how to copy an element out of it and weigh one in it.
	series *seriesSide[P]
	ops    [numOps]*opCounters
	enc    func(p P, tuplesAsDocuments bool) any
}

// SetPayloadEncoder makes writes store enc(p, tuplesAsDocuments) instead of
// p. Generated code uses it to write tuples in the form the server accepts
// (Config.TupleForm). Call it before the repository is used.
func (r *Repo[K, P]) SetPayloadEncoder(enc func(p P, tuplesAsDocuments bool) any) { r.enc = enc }

// NewRepo builds the repository of the domain s on c.
func NewRepo[K Key, P any](c *Conn, s *Schema) (*Repo[K, P], error) {
	cs, err := compile(s)
	if err != nil {
		domain := ""
		if s != nil {
			domain = s.Domain
		}
		return nil, &OpError{Op: "NewRepo", Domain: domain, Err: err}
	}
	cl, err := c.claim(s)
	if err != nil {
		return nil, &OpError{Op: "NewRepo", Domain: s.Domain, Err: err}
	}
	r := &Repo[K, P]{conn: c, s: cs, coll: c.db.Collection(s.Collection), cache: cache.None{}, collection: cl}
	switch s.Mode() {
	case schema.CacheIdentity:
		if c.rdb != nil { // without Redis, identity mode has nothing to remember
			r.cache = cache.NewIdentity(c.rdb, c.breaker, c.cfg.KeyPrefix, cs.Compiled)
		}
	case schema.CacheValue, schema.CacheLocal:
		if c.values == nil {
			return nil, &OpError{Op: "NewRepo", Domain: s.Domain, Err: errorf(ErrInvalidArgument,
				"%s uses the %s cache, which every writer must invalidate, and this Conn has no Redis (DisableRedis): give it Redis, or use the identity or none mode", s.Domain, s.Mode())}
		}
		r.cache = c.values.Value(cache.ValueDomain{Mode: s.Mode(), KeyPrefix: c.cfg.KeyPrefix, RedisPrefix: s.RedisPrefix,
			Database: c.db.Name(), Collection: s.Collection, TTL: s.CacheTTL, LocalTTL: s.LocalTTL, Strict: s.Strict(),
			Counters: c.counters.cache(s.Mode())})
		if cache.Clonable(reflect.TypeFor[Record[K, P]]()) {
			r.clone = cache.NewCloner[Record[K, P]]()
		}
	}
	if s.Mode() == schema.CacheSeries {
		var base cache.Mode = cache.None{}
		if c.rdb != nil {
			base = cache.NewIdentity(c.rdb, c.breaker, c.cfg.KeyPrefix, cs.Compiled)
		}
		side, err := newSeriesSide[P](c, s)
		if err != nil {
			return nil, &OpError{Op: "NewRepo", Domain: s.Domain, Err: err}
		}
		r.cache, r.series = &cache.Series{Mode: base}, side
	}
	for i := range r.ops {
		r.ops[i] = c.counters.op(s.Domain + "." + opNames[i])
	}
	return r, nil
}

// Schema returns the domain description.
func (r *Repo[K, P]) Schema() *Schema { return r.s.Schema }

// Collection returns the MongoDB collection.
func (r *Repo[K, P]) Collection() *mongo.Collection { return r.coll }

// RedisKey returns the Redis identity key of k, including the Conn's
// KeyPrefix.
func (r *Repo[K, P]) RedisKey(k K) (string, error) {
	vals, err := r.s.Values(k.KeyValues())
	if err != nil {
		return "", r.argErr(opGet, nil, err)
	}
	return r.s.RedisKey(r.conn.cfg.KeyPrefix, vals), nil
}

// begin validates the key, counts the call, runs the guard and tags ctx.
func (r *Repo[K, P]) begin(ctx context.Context, op opID, k *K) (context.Context, []any, error) {
	r.ops[op].calls.Add(1)
	var vals []any
	if k != nil {
		var err error
		if vals, err = r.s.Values((*k).KeyValues()); err != nil {
			return ctx, nil, r.opErr(ctx, op, nil, err)
		}
	}
	if err := r.seriesAxis(vals); err != nil {
		return ctx, nil, r.argErr(op, vals, err)
	}
	if r.series != nil && (op == opPut || op == opPutMany || op == opRemove) {
		return ctx, nil, r.argErr(op, vals, errorf(ErrInvalidArgument,
			"%s is an insert-only series (cache mode series: processes keep its elements in memory, trusting that none changes): %s would change stored elements; store new ones with Insert, InsertMany or the series Put (first write wins)",
			r.s.Domain, opNames[op]))
	}
	if err := r.conn.Ready(ctx); err != nil {
		r.ops[op].errors.Add(1)
		return ctx, vals, err
	}
	if err := r.conn.storableKey(vals); err != nil {
		return ctx, nil, r.argErr(op, vals, err)
	}
	if err := r.collection.prepare(ctx, r.conn, writes(op)); err != nil {
		return ctx, vals, r.opErr(ctx, op, vals, err)
	}
	return withOp(ctx, r.ops[op]), vals, nil
}

// writes reports the operations that write.
func writes(op opID) bool {
	switch op {
	case opPut, opInsert, opRemove, opPutMany, opInsertMany:
		return true
	}
	return false
}

// argErr is opErr for an error that did not come from a server (a bad key
// or argument, a document that does not decode).
func (r *Repo[K, P]) argErr(op opID, vals []any, err error) error {
	return r.opErr(context.Background(), op, vals, err)
}

// opErr wraps err with the operation, domain and key, counts it (unless it
// is ErrNotFound) and classifies it against the caller's ctx (see
// Conn.classify).
func (r *Repo[K, P]) opErr(ctx context.Context, op opID, vals []any, err error) error {
	if !errors.Is(err, ErrNotFound) {
		r.ops[op].errors.Add(1)
	}
	return r.conn.secrets.scrubOp(&OpError{Op: opNames[op], Domain: r.s.Domain, Key: clipKey(schema.KeyString(vals)), Err: r.conn.classify(ctx, err)})
}

func (r *Repo[K, P]) hit(op opID)  { r.ops[op].hits.Add(1) }
func (r *Repo[K, P]) miss(op opID) { r.ops[op].misses.Add(1) }

// Get reads the row of k: Redis identity, then find by _id (and key); a stale
// identity falls back to the compound filter; a miss finds by the compound
// filter and backfills the identity. A soft-removed row is ErrNotFound.
func (r *Repo[K, P]) Get(ctx context.Context, k K) (ret Record[K, P], retErr error) {
	ctx, done := r.observe(ctx, opGet)
	defer func() { done(retErr) }()
	var zero Record[K, P]
	ctx, vals, err := r.begin(ctx, opGet, &k)
	if err != nil {
		return zero, err
	}
	key := r.cache.Key(vals)
	l := r.cache.Read(ctx, key)
	if we := (*cache.WaitError)(nil); errors.As(l.Err, &we) {
		we.Addr = r.conn.redisAddr
		return zero, r.opErr(ctx, opGet, vals, we)
	}
	if l.Hit { // a value key names the database, collection and exact key: no check needed
		r.hit(opGet)
		if l.Absent {
			return zero, r.opErr(ctx, opGet, vals, ErrNotFound)
		}
		if l.Decoded != nil && r.clone != nil {
			return r.fromCopy(vals, l)
		}
		return r.visible(opGet, vals, l.Raw)
	}
	filter := r.s.filter(vals)
	if l.HasID {
		// The key fields in the filter make a wrong identity (another
		// engine's colliding key, a recreated document) a miss, never a
		// wrong answer.
		byID := append(bson.D{{Key: FieldID, Value: l.ID}}, filter...)
		raw, err := r.findOne(ctx, byID)
		switch {
		case err == nil:
			r.hit(opGet)
			return r.visible(opGet, vals, raw)
		case !errors.Is(err, mongo.ErrNoDocuments):
			return zero, r.opErr(ctx, opGet, vals, err)
		}
		r.conn.log.Debug("persistgen: stale identity", "key", key)
	}
	r.miss(opGet)
	raw, err := r.findOne(ctx, filter)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		r.cache.Found(ctx, key, l, nil)
		return zero, r.opErr(ctx, opGet, vals, ErrNotFound)
	case err != nil:
		r.cache.Failed(key, l)
		return zero, r.opErr(ctx, opGet, vals, err)
	}
	r.cache.Found(ctx, key, l, raw)
	return r.visible(opGet, vals, raw)
}

// fromCopy answers a local-mode hit: a copy of the record decoded by the
// first hit on the same in-process copy, or decoded now and kept there.
func (r *Repo[K, P]) fromCopy(vals []any, got cache.Lookup) (Record[K, P], error) {
	var zero Record[K, P]
	p := got.Decoded.Load()
	rec, ok := zero, false
	if p != nil {
		rec, ok = (*p).(Record[K, P]) // another Repo of the collection may have another P
	}
	if !ok {
		var err error
		if rec, err = r.decode(got.Raw); err != nil {
			return zero, r.argErr(opGet, vals, err)
		}
		kept := any(rec)
		got.Decoded.Store(&kept)
	}
	if rec.Removed {
		return zero, r.argErr(opGet, vals, ErrNotFound)
	}
	return r.clone(rec), nil
}

// mark begins a write of the rows under keys in the cache (Mode.Begin): a
// strict mode's refusal names Redis's address, and the write must not be
// sent.
func (r *Repo[K, P]) mark(ctx context.Context, keys []string) (cache.Write, error) {
	w, err := r.cache.Begin(ctx, keys)
	if me := (*cache.MarkError)(nil); errors.As(err, &me) {
		me.Addr = r.conn.redisAddr
	}
	if we := (*cache.WaitError)(nil); errors.As(err, &we) {
		we.Addr = r.conn.redisAddr
	}
	return w, err
}

// within bounds a write's MongoDB calls, retries included, by its marks'
// life (cache.Write.Deadline): past it, readers would no longer be kept
// off a row the write may still change.
func within(ctx context.Context, w cache.Write) (context.Context, context.CancelFunc) {
	if dl, ok := w.Deadline(); ok {
		return context.WithDeadlineCause(ctx, dl, errMarkLapsed)
	}
	return ctx, func() {}
}

// errMarkLapsed is the cause of a write's context that its marks' life
// ended.
var errMarkLapsed = errors.New("the write's cache marks lapsed")

// cacheKeys are the cache keys of the rows under keys.
func (r *Repo[K, P]) cacheKeys(keys ...[]any) []string {
	out := make([]string, len(keys))
	for i, vals := range keys {
		out[i] = r.cache.Key(vals)
	}
	return out
}

// CacheKey returns the Redis key that caches k in the domain's cache mode,
// with the Conn's KeyPrefix: the identity key (identity mode), the value
// key (value mode), or "" (mode none). For operators and tests: the
// runtime never needs it.
func (r *Repo[K, P]) CacheKey(k K) (string, error) {
	vals, err := r.s.Values(k.KeyValues())
	if err != nil {
		return "", &OpError{Op: "CacheKey", Domain: r.s.Domain, Err: err}
	}
	switch r.s.Mode() {
	case schema.CacheNone:
		return "", nil
	case schema.CacheIdentity:
		return r.s.RedisKey(r.conn.cfg.KeyPrefix, vals), nil
	}
	return r.cache.Key(vals), nil
}

// findOne is one FindOne, bounded by Config.OpTimeout.
func (r *Repo[K, P]) findOne(ctx context.Context, filter bson.D, opts ...options.Lister[options.FindOneOptions]) (bson.Raw, error) {
	ctx, cancel := r.conn.bound(ctx, 0)
	defer cancel()
	return r.coll.FindOne(ctx, filter, opts...).Raw()
}

// visible decodes raw, reporting a soft-removed row as ErrNotFound.
func (r *Repo[K, P]) visible(op opID, vals []any, raw bson.Raw) (Record[K, P], error) {
	rec, err := r.decode(raw)
	if err != nil {
		return rec, r.argErr(op, vals, err)
	}
	if rec.Removed {
		return Record[K, P]{}, r.argErr(op, vals, ErrNotFound)
	}
	return rec, nil
}

// GetAsOf reads the row of k only if its when is at or before t; the
// database enforces the bound. It goes straight to the compound filter (one
// round trip): the identity cache cannot tell "absent" from "later".
func (r *Repo[K, P]) GetAsOf(ctx context.Context, k K, t time.Time) (ret Record[K, P], retErr error) {
	ctx, done := r.observe(ctx, opGetAsOf)
	defer func() { done(retErr) }()
	var zero Record[K, P]
	ctx, vals, err := r.begin(ctx, opGetAsOf, &k)
	if err != nil {
		return zero, err
	}
	if !r.s.HasWhen {
		return zero, r.opErr(ctx, opGetAsOf, vals, errorf(ErrInvalidArgument, "%s has no when column; use Get", r.s.Domain))
	}
	filter := append(r.s.filter(vals), bson.E{Key: FieldWhen, Value: bson.D{{Key: "$lte", Value: asOfValue(t)}}})
	raw, err := r.findOne(ctx, filter)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return zero, r.opErr(ctx, opGetAsOf, vals, ErrNotFound)
	}
	if err != nil {
		return zero, r.opErr(ctx, opGetAsOf, vals, err)
	}
	return r.visible(opGetAsOf, vals, raw)
}

// Put writes p under k, last writer wins (a smaller when overwrites a larger
// one): one findOneAndUpdate upsert on the compound filter, then the Redis
// identity is set. when is required for domains with a when column and must
// be zero for the others. A duplicate key error from a racing upsert is
// retried and never returned.
func (r *Repo[K, P]) Put(ctx context.Context, k K, p P, when time.Time) (retErr error) {
	ctx, done := r.observe(ctx, opPut)
	defer func() { done(retErr) }()
	ctx, vals, err := r.begin(ctx, opPut, &k)
	if err != nil {
		return err
	}
	set, err := r.setFields(p, when)
	if err == nil {
		err = r.fits(vals, set)
	}
	if err != nil {
		return r.opErr(ctx, opPut, vals, err)
	}
	// A client-made _id, like PutMany's and InsertMany's: newest first
	// (createDate, then _id) orders writes of one millisecond by the order
	// this process made them, whichever method made them.
	newID := r.conn.ids.next()
	update := upsertUpdate(set, newID)
	opts := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)
	if !r.cache.KeepsRows() {
		opts = r.conn.returnIDOnly(opts)
	}
	keys := r.cacheKeys(vals)
	cw, err := r.mark(ctx, keys)
	if err != nil {
		return r.opErr(ctx, opPut, vals, err)
	}
	var rec time.Time
	if r.s.History != nil {
		// The row as it was comes back whole: the versions are made from
		// it (history.go). Recorded as the write is sent, after the
		// cache's wait.
		rec = r.conn.recordedTime()
		update = versioned(update, rec)
		opts = options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.Before)
	}
	wctx, cancel := within(r.seenThrough(ctx, cw), cw)
	id, row, err := r.upsertOne(wctx, r.s.filter(vals), update, opts)
	cancel()
	var histErr error
	if r.s.History != nil && err == nil {
		if row == nil {
			id = newID
		}
		if v, verr := r.nextVersion(vals, set, id, row, rec); verr != nil {
			histErr = errorf(ErrHistoryPending, "the row before the write does not decode (%v); `persistgen-ops audit` reports it", verr)
		} else {
			histErr = r.recordWrite(ctx, v, row, rec)
		}
		row = nil // the value cache is invalidated, not filled: the write returned the row before
	}
	// The value cache keeps the row written (it comes back whole): the
	// next read is a hit, when this write was the key's last.
	if err := r.cache.End(ctx, cw, err, row); err != nil {
		return r.opErr(ctx, opPut, vals, errors.Join(err, histErr))
	}
	r.cache.Remember(ctx, []cache.Identity{{Key: keys[0], ID: id}}, nil)
	if histErr != nil {
		return r.opErr(ctx, opPut, vals, histErr)
	}
	return nil
}

// recordWrite records the version a write made and, beside it, the one
// the row held before (before; nil when the write created the row).
func (r *Repo[K, P]) recordWrite(ctx context.Context, version bson.D, before bson.Raw, rec time.Time) error {
	versions, own := []bson.D{version}, []bool{true}
	if before != nil {
		prior, err := r.priorVersion(before, rec)
		if err != nil {
			return errorf(ErrHistoryPending, "the row before the write does not decode (%v); `persistgen-ops audit` reports it", err)
		}
		if !expired(r.s.Schema, prior[len(prior)-1].Value.(time.Time), rec) {
			versions, own = append(versions, prior), append(own, false)
		}
	}
	return r.recordVersions(ctx, versions, own)
}

// Insert writes p under k only if k has no row yet, first writer wins (for
// immutable data such as candles). It reports whether it inserted.
func (r *Repo[K, P]) Insert(ctx context.Context, k K, p P, when time.Time) (ret bool, retErr error) {
	ctx, done := r.observe(ctx, opInsert)
	defer func() { done(retErr) }()
	ctx, vals, err := r.begin(ctx, opInsert, &k)
	if err != nil {
		return false, err
	}
	doc, err := r.insertDoc(vals, p, when, r.conn.ids.next())
	if err != nil {
		return false, r.opErr(ctx, opInsert, vals, err)
	}
	newID := doc[0].Value.(bson.ObjectID)
	update := bson.D{{Key: "$setOnInsert", Value: doc}}
	opts := r.conn.returnIDOnly(options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.Before))
	keys := r.cacheKeys(vals)
	cw, err := r.mark(ctx, keys)
	if err != nil {
		return false, r.opErr(ctx, opInsert, vals, err)
	}
	if r.s.History != nil {
		restamp(doc, r.conn.recordedTime()) // recorded as the write is sent
	}
	wctx, cancel := within(r.seenThrough(ctx, cw), cw)
	id, before, err := r.upsertOne(wctx, r.s.filter(vals), update, opts)
	cancel()
	existed := before != nil
	var histErr error
	if r.s.History != nil && err == nil && !existed {
		histErr = r.recordVersions(ctx, []bson.D{r.firstVersion(doc)}, []bool{true})
	}
	// Invalidated even when the row existed: Insert's answer is a read,
	// and a later Get must agree with it.
	if err := r.cache.End(ctx, cw, err, nil); err != nil {
		return !existed && errors.Is(err, ErrNotInvalidated) && histErr == nil, r.opErr(ctx, opInsert, vals, errors.Join(err, histErr))
	}
	if !existed {
		id = newID
	}
	r.cache.Remember(ctx, []cache.Identity{{Key: keys[0], ID: id}}, nil)
	if histErr != nil {
		return false, r.opErr(ctx, opInsert, vals, histErr)
	}
	return !existed, nil
}

// returnIDOnly asks the server to send back only _id. Where findAndModify
// has no projection (FerretDB v1) the document comes back whole (only _id
// is decoded either way).
func (c *Conn) returnIDOnly(o *options.FindOneAndUpdateOptionsBuilder) *options.FindOneAndUpdateOptionsBuilder {
	if !c.Capabilities().FindAndModifyProjection {
		return o
	}
	return o.SetProjection(bson.D{{Key: FieldID, Value: 1}})
}

// upsertOne runs findOneAndUpdate with upsert, retrying every form in which
// a server reports that a racing writer created the key first (see raceOf),
// at most Config.UpsertRetries times. After a lost race the key most likely
// exists: the retry is first a plain findAndModify, which cannot race anyone
// creating the key (on DocumentDB, racing creations deadlock each other in
// its exclusion constraint), and an upsert again only if no row matched.
// It returns the row's _id and the document the server returned (nil when
// a return-before upsert inserted).
func (r *Repo[K, P]) upsertOne(ctx context.Context, filter, update bson.D, opts *options.FindOneAndUpdateOptionsBuilder) (bson.ObjectID, bson.Raw, error) {
	plain := *opts
	plain.Opts = append(plain.Opts[:len(plain.Opts):len(plain.Opts)], func(o *options.FindOneAndUpdateOptions) error {
		o.Upsert = nil
		return nil
	})
	raced := 0
	for attempt := 0; ; attempt++ {
		callCtx, cancel := r.conn.bound(ctx, 0)
		var raw bson.Raw
		var err error
		if raced > 0 {
			raw, err = r.coll.FindOneAndUpdate(callCtx, filter, update, &plain).Raw()
		}
		if raced == 0 || raced > plainRetries && errors.Is(err, mongo.ErrNoDocuments) {
			raw, err = r.coll.FindOneAndUpdate(callCtx, filter, update, opts).Raw()
		}
		cancel()
		switch {
		case err == nil:
			id, ok := raw.Lookup(FieldID).ObjectIDOK()
			if !ok {
				return bson.ObjectID{}, nil, fmt.Errorf("the server returned a row whose _id is not an ObjectID (%s)", raw.Lookup(FieldID).Type)
			}
			return id, bytes.Clone(raw), nil
		case raced > 0 && raced <= plainRetries && errors.Is(err, mongo.ErrNoDocuments):
			// The winner of the race has not committed yet: wait for it
			// rather than race it again.
			raced++
			if err := backoff(ctx, attempt); err != nil {
				return bson.ObjectID{}, nil, err
			}
		case errors.Is(err, mongo.ErrNoDocuments):
			return bson.ObjectID{}, nil, nil
		case lostRace(err) != noRace && attempt < r.conn.cfg.UpsertRetries:
			raced++
			if err := backoff(ctx, attempt); err != nil {
				return bson.ObjectID{}, nil, err
			}
		default:
			return bson.ObjectID{}, nil, err
		}
	}
}

// plainRetries is how many times a write that lost a race first waits for
// the winner's row (a plain update) before it tries to create the row again.
const plainRetries = 3

// backoff sleeps a short, jittered, growing time before a retry.
//
// The wait is drawn uniformly from zero to a cap that doubles with each
// attempt, from 2 ms to 256 ms ("full jitter"): writers that lost a race
// together spread out instead of meeting again. The cap reaches the time a
// PostgreSQL-backed server takes to detect a deadlock (DocumentDB's
// deadlock_timeout is 100 ms), so that racing writers there stop
// deadlocking each other in lock step.
func backoff(ctx context.Context, attempt int) error {
	limit := 2 * time.Millisecond << min(attempt, 7)
	d := time.Duration(rand.Int64N(int64(limit))) + time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Remove soft-deletes k's row (removed = true, no upsert: removing an absent
// key creates nothing). It reports whether a visible row was removed. Where
// the payload carries its own removed flag (Schema.PayloadRemoved) it is
// set too, unless the stored payload is not a document (null). A write that
// loses a race (DocumentDB's deadlocks) is retried like an upsert's.
func (r *Repo[K, P]) Remove(ctx context.Context, k K) (ret bool, retErr error) {
	ctx, done := r.observe(ctx, opRemove)
	defer func() { done(retErr) }()
	ctx, vals, err := r.begin(ctx, opRemove, &k)
	if err != nil {
		return false, err
	}
	if !r.s.HasRemoved {
		return false, r.opErr(ctx, opRemove, vals, errorf(ErrInvalidArgument, "%s does not soft-delete", r.s.Domain))
	}
	filter := append(r.s.filter(vals), bson.E{Key: FieldRemoved, Value: bson.D{{Key: "$ne", Value: true}}})
	set := bson.D{{Key: FieldRemoved, Value: true}, {Key: FieldUpdatedDate, Value: r.now()}}
	withPayload := r.s.PayloadRemoved
	cw, err := r.mark(ctx, r.cacheKeys(vals))
	if err != nil {
		return false, r.opErr(ctx, opRemove, vals, err)
	}
	wctx, cancelW := within(r.seenThrough(ctx, cw), cw)
	defer cancelW()
	for attempt := 0; ; attempt++ {
		update := set
		if withPayload {
			update = append(set[:len(set):len(set)], bson.E{Key: r.s.Payload + "." + FieldRemoved, Value: true})
		}
		callCtx, cancel := r.conn.bound(wctx, 0)
		var matched bool
		var histErr error
		var err error
		if r.s.History != nil {
			// The row as it was comes back: the removal's version is made
			// from it (history.go).
			rec := r.conn.recordedTime()
			var before bson.Raw
			before, err = r.coll.FindOneAndUpdate(callCtx, filter, versioned(bson.D{{Key: "$set", Value: update}}, rec),
				options.FindOneAndUpdate().SetReturnDocument(options.Before)).Raw()
			if errors.Is(err, mongo.ErrNoDocuments) {
				err = nil
			} else if err == nil {
				matched = true
				before = bytes.Clone(before)
				v, verr := r.removedVersion(before, set[1].Value.(time.Time), rec)
				if verr != nil {
					histErr = errorf(ErrHistoryPending, "the removed row does not decode (%v)", verr)
				} else {
					histErr = r.recordWrite(ctx, v, before, rec)
				}
			}
		} else {
			var res *mongo.UpdateResult
			res, err = r.coll.UpdateOne(callCtx, filter, bson.D{{Key: "$set", Value: update}})
			matched = err == nil && res.MatchedCount > 0
		}
		cancel()
		switch {
		case err == nil:
			if err := r.cache.End(ctx, cw, nil, nil); err != nil {
				return false, r.opErr(ctx, opRemove, vals, errors.Join(err, histErr))
			}
			if histErr != nil {
				return false, r.opErr(ctx, opRemove, vals, histErr)
			}
			return matched, nil
		case withPayload && isPathNotViable(err):
			withPayload = false // the payload is null: it has no flag to set
		case lostRace(err) == raceTransient && attempt < r.conn.cfg.UpsertRetries:
			if berr := backoff(wctx, attempt); berr != nil {
				// The lost race wrote nothing, but an earlier attempt's
				// outcome is as unknown as any failed write's.
				return false, r.opErr(ctx, opRemove, vals, r.cache.End(ctx, cw, berr, nil))
			}
		default:
			return false, r.opErr(ctx, opRemove, vals, r.cache.End(ctx, cw, err, nil))
		}
	}
}

// isPathNotViable reports the server's refusal to set a field inside a
// value that is not a document (code 28).
func isPathNotViable(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(28)
}

// Exists reports whether k has a row, removed or not (one round trip).
func (r *Repo[K, P]) Exists(ctx context.Context, k K) (ret bool, retErr error) {
	ctx, done := r.observe(ctx, opExists)
	defer func() { done(retErr) }()
	ctx, vals, err := r.begin(ctx, opExists, &k)
	if err != nil {
		return false, err
	}
	_, err = r.findOne(ctx, r.s.filter(vals), options.FindOne().SetProjection(bson.D{{Key: FieldID, Value: 1}}))
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, r.opErr(ctx, opExists, vals, err)
	}
	return true, nil
}
