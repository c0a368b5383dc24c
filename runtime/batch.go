package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/internal/cache"
	"github.com/persistgen/persistgen/schema"
)

// PutMany writes every item, last writer wins (of two items with one key the
// later is kept). It returns nil only when every item is confirmed stored;
// otherwise an *OpError wrapping a *BatchError that says, per item, stored,
// not stored or unknown.
//
// Round trips: ceil(n/WriteChunk) unordered bulk upserts (WriteChunk is
// Capabilities.MaxBulk: the server's batch limit, or 10 on FerretDB v1) plus
// one Redis pipeline for the identities of inserted rows. Every item
// carries a client-made _id, increasing in item order, so newest first
// follows item order and the identities of inserted rows come from the ids
// the server reports upserted, never from its operation indexes.
//
// What the server reports is checked: the counts must add up, and where
// the bulk results are exact (Capabilities.BulkResults) the errors are
// mapped to items by index; upserts that lost a race to another writer are
// sent again (bounded by Config.UpsertRetries). Where the results are
// inexact (FerretDB v1) or do not add up, the chunk's items are written one
// by one instead, so that each outcome is known; and the bulk writes of one
// Conn run one at a time there (see Conn.acquireBulk).
func (r *Repo[K, P]) PutMany(ctx context.Context, items []Item[K, P]) (retErr error) {
	ctx, done := r.observe(ctx, opPutMany)
	defer func() { done(retErr) }()
	b, ctx, err := r.newBatch(ctx, opPutMany, items, false)
	if err != nil || b == nil {
		return err
	}
	for i, it := range items {
		// Every item is checked, also one that a later item of its key
		// replaces: bad input is an error, never silently dropped.
		set, err := r.setFields(it.Payload, it.When)
		if err == nil {
			err = r.fits(b.vals[i], set)
		}
		if err != nil {
			return r.argErr(opPutMany, b.vals[i], errorf(ErrInvalidArgument, "item %d (nothing was stored): %v", i, err))
		}
		if b.rep[i] != i {
			continue
		}
		b.models[i] = mongo.NewUpdateOneModel().SetFilter(r.s.filter(b.vals[i])).SetUpdate(upsertUpdate(set, b.ids[i])).SetUpsert(true)
	}
	if b.cw, err = r.mark(ctx, b.repKeys()); err != nil {
		return r.opErr(ctx, opPutMany, nil, err)
	}
	if r.s.History != nil {
		b.writeEach(ctx, func(i int, rec time.Time) bson.D {
			return versioned(b.models[i].(*mongo.UpdateOneModel).Update.(bson.D), rec)
		}, func(i int, before bson.Raw, id bson.ObjectID, rec time.Time) (bson.D, error) {
			update := b.models[i].(*mongo.UpdateOneModel).Update.(bson.D)
			return r.nextVersion(b.vals[i], update[0].Value.(bson.D), id, before, rec)
		})
		return b.finish(ctx)
	}
	b.upsertAll(ctx)
	return b.finish(ctx)
}

// InsertMany inserts the items whose keys have no row yet, first writer wins:
// an existing row (even a soft-removed one: it still holds its key), or an
// earlier item with the same key, is kept. It returns how many were
// inserted, and nil only when every item is confirmed inserted or kept;
// otherwise an *OpError wrapping a *BatchError.
//
// Where bulk results are exact, the items are sent as upserts that only set
// fields on insert ($setOnInsert), in chunks of WriteChunk: an existing key
// is a matched no-op rather than a duplicate key error (DocumentDB takes
// about 40 ms to refuse each duplicate insert). Where they are not
// (FerretDB v1, which hangs on many matched updates), the items are sent as
// one unordered insert, and when the server reports errors what it stored
// is read back by key. Round trips: one bulk write (two on v1 after an
// error) and one Redis pipeline.
func (r *Repo[K, P]) InsertMany(ctx context.Context, items []Item[K, P]) (int, error) {
	return r.insertMany(ctx, items, nil)
}

// insertMany is InsertMany; stored, when not nil, is called with each item
// this call inserted and the document it sent (what MongoDB now holds).
func (r *Repo[K, P]) insertMany(ctx context.Context, items []Item[K, P], stored func(i int, doc bson.D)) (ret int, retErr error) {
	ctx, done := r.observe(ctx, opInsertMany)
	defer func() { done(retErr) }()
	b, ctx, err := r.newBatch(ctx, opInsertMany, items, true)
	if err != nil || b == nil {
		return 0, err
	}
	exact := r.conn.Capabilities().BulkResults
	docs := make([]bson.D, len(items))
	for i, it := range items {
		d, err := r.insertDoc(b.vals[i], it.Payload, it.When, b.ids[i])
		if err != nil {
			return 0, r.argErr(opInsertMany, b.vals[i], errorf(ErrInvalidArgument, "item %d (nothing was stored): %v", i, err))
		}
		if b.rep[i] != i {
			continue
		}
		docs[i] = d
		if exact {
			b.models[i] = mongo.NewUpdateOneModel().SetFilter(r.s.filter(b.vals[i])).SetUpdate(bson.D{{Key: "$setOnInsert", Value: d}}).SetUpsert(true)
		} else {
			b.models[i] = mongo.NewInsertOneModel().SetDocument(d)
		}
	}
	if b.cw, err = r.mark(ctx, b.repKeys()); err != nil {
		return 0, r.opErr(ctx, opInsertMany, nil, err)
	}
	switch {
	case r.s.History != nil:
		b.writeEach(ctx, func(i int, rec time.Time) bson.D {
			restamp(docs[i], rec)
			return bson.D{{Key: "$setOnInsert", Value: docs[i]}}
		}, func(i int, _ bson.Raw, _ bson.ObjectID, _ time.Time) (bson.D, error) {
			return r.firstVersion(docs[i]), nil
		})
	case exact:
		b.upsertAll(ctx)
	default:
		b.insertAll(ctx, docs)
	}
	err = b.finish(ctx)
	n := 0
	for i, o := range b.outcome {
		if o == Stored {
			n++
			if stored != nil && b.rep[i] == i {
				stored(i, docs[i])
			}
		}
	}
	return n, err
}

// batch is the state of one PutMany or InsertMany call. Items that share a
// key are represented by one of them (rep): the last for PutMany, the first
// for InsertMany; only representatives are sent.
type batch[K Key, P any] struct {
	r       *Repo[K, P]
	op      opID
	insert  bool // InsertMany: a matched upsert means Kept, not Stored
	vals    [][]any
	rks     []string
	rep     []int
	reps    []int // the representatives, in item order
	ids     []bson.ObjectID
	models  []mongo.WriteModel
	outcome []Outcome
	refused map[int]error
	cause   error
	set     []cache.Identity
	cw      cache.Write // the cache's side of the write
	// histErr (domains with history): the rows are written, some of
	// their versions are not recorded (ErrHistoryPending).
	histErr error
}

// newBatch validates the items' keys, runs the guard and picks the
// representatives. It returns a nil batch (and no error) for no items.
func (r *Repo[K, P]) newBatch(ctx context.Context, op opID, items []Item[K, P], firstWins bool) (*batch[K, P], context.Context, error) {
	vals, rks, canon, err := r.batchKeys(op, itemKeys(items))
	if err != nil {
		return nil, ctx, err
	}
	for i, v := range vals {
		if err := r.seriesAxis(v); err != nil {
			return nil, ctx, r.argErr(op, v, errorf(ErrInvalidKey, "item %d (nothing was stored): %s", i, schema.Message(err)))
		}
	}
	if len(items) == 0 {
		return nil, ctx, nil
	}
	ctx, _, err = r.begin(ctx, op, nil)
	if err != nil {
		return nil, ctx, err
	}
	if err := r.storableKeys(vals); err != nil {
		return nil, ctx, r.argErr(op, nil, err)
	}
	b := &batch[K, P]{r: r, op: op, insert: op == opInsertMany, vals: vals, rks: rks,
		rep: make([]int, len(items)), ids: make([]bson.ObjectID, len(items)),
		models: make([]mongo.WriteModel, len(items)), outcome: make([]Outcome, len(items)), refused: map[int]error{}}
	byKey := make(map[string]int, len(items))
	for i := range items {
		if _, seen := byKey[canon[i]]; !seen || !firstWins {
			byKey[canon[i]] = i
		}
	}
	for i := range items {
		b.rep[i] = byKey[canon[i]]
	}
	for i := range items {
		if b.rep[i] == i {
			// Made in item order: newest first follows item order.
			b.ids[i] = r.conn.ids.next()
			b.reps = append(b.reps, i)
		}
	}
	return b, ctx, nil
}

// done records the outcome of a representative.
func (b *batch[K, P]) done(i int, o Outcome) {
	if b.outcome[i] == 0 {
		b.outcome[i] = o
	}
}

// matched is the outcome of an upsert that found its key's row.
func (b *batch[K, P]) matched() Outcome {
	if b.insert {
		return Kept
	}
	return Stored
}

// inserted records the items whose client-made _id the server reports
// upserted: they are stored under that id, and get it as their identity.
func (b *batch[K, P]) inserted(res *mongo.BulkWriteResult, pending []int) {
	if res == nil || len(res.UpsertedIDs) == 0 {
		return
	}
	byID := make(map[bson.ObjectID]int, len(pending))
	for _, i := range pending {
		byID[b.ids[i]] = i
	}
	for _, id := range res.UpsertedIDs {
		if oid, ok := id.(bson.ObjectID); ok {
			if i, ok := byID[oid]; ok && b.outcome[i] == 0 {
				b.outcome[i] = Stored
				b.set = append(b.set, cache.Identity{Key: b.rks[i], ID: oid})
			}
		}
	}
}

// stop marks the pending items that have no outcome yet (sent: unknown;
// never sent: not stored) and records why the batch stopped.
func (b *batch[K, P]) stop(pending []int, o Outcome, err error) {
	for _, i := range pending {
		b.done(i, o)
	}
	if b.cause == nil {
		b.cause = err
	}
}

// refuse records a server's refusal of item i.
func (b *batch[K, P]) refuse(i int, err error) {
	b.done(i, NotStored)
	b.refused[i] = err
	if b.cause == nil {
		b.cause = fmt.Errorf("item %d [%s]: %w", i, schema.KeyString(b.vals[i]), err)
	}
}

// upsertAll sends the representatives' upserts in chunks of WriteChunk.
func (b *batch[K, P]) upsertAll(ctx context.Context) {
	chunk := b.r.conn.WriteChunk()
	for start := 0; start < len(b.reps); start += chunk {
		if !b.upsertChunk(ctx, b.reps[start:min(start+chunk, len(b.reps))]) {
			b.stop(b.reps[start:], NotStored, nil) // never sent
			return
		}
	}
}

// upsertChunk sends one chunk of upserts until each has an outcome. It
// returns false when the batch must stop (the server or the caller's
// context failed).
func (b *batch[K, P]) upsertChunk(ctx context.Context, pending []int) bool {
	exact := b.r.conn.Capabilities().BulkResults
	for attempt := 0; len(pending) > 0; attempt++ {
		release, err := b.r.conn.acquireBulk(ctx)
		if err != nil {
			b.stop(pending, NotStored, err)
			return false
		}
		models := make([]mongo.WriteModel, len(pending))
		for j, i := range pending {
			models[j] = b.models[i]
		}
		callCtx, cancel := b.r.conn.bound(ctx, len(models))
		res, err := b.r.coll.BulkWrite(callCtx, models, options.BulkWrite().SetOrdered(false))
		cancel()
		release()
		b.inserted(res, pending)
		var bwe mongo.BulkWriteException
		isBulk := errors.As(err, &bwe) && bwe.WriteConcernError == nil
		if err != nil && !isBulk {
			// Nothing tells what the server did: a timeout, a lost
			// connection, a write concern not met.
			b.stop(pending, Unknown, err)
			return false
		}
		if err == nil && countsAddUp(res, len(pending)) {
			for _, i := range pending {
				b.done(i, b.matched())
			}
			return true
		}
		failed, indexed := raceIndexes(bwe.WriteErrors, len(pending))
		if !exact || !indexed || !countsAddUp(res, len(pending)-len(failed)) {
			if exact || err == nil || !allRaces(failed) || attempt >= b.r.conn.cfg.UpsertRetries {
				// The results cannot be mapped to items: find out item by
				// item.
				return b.oneByOne(ctx, pending, false)
			}
			// Inexact results, only lost races: the whole chunk again
			// (each upsert is idempotent).
			if err := backoff(ctx, attempt); err != nil {
				b.stop(pending, Unknown, err)
				return false
			}
			continue
		}
		var raced []int
		for j, i := range pending {
			kind, bad := failed[j]
			switch {
			case !bad:
				b.done(i, b.matched())
			case kind == noRace:
				b.refuse(i, bulkErr(bwe, j))
			default:
				raced = append(raced, i)
			}
		}
		if len(raced) == 0 {
			return true
		}
		// The items that lost a race to another writer creating the same
		// key: that key most likely exists now, so they are sent again one
		// by one, as plain updates first (see oneByOne).
		if err := backoff(ctx, 0); err != nil {
			b.stop(raced, Unknown, err)
			return false
		}
		return b.oneByOne(ctx, raced, true)
	}
	return true
}

// oneByOne writes each pending item alone, so that its outcome is known
// exactly: first as a plain update, which cannot race anyone creating the
// key, then, if no row matched, as an upsert; a lost race starts over. For
// items that lost a race (raced, or after a first lost race here), a plain
// update that matches nothing means the winner has not committed yet: it
// waits and tries the plain update again, plainRetries times, before it
// tries to create the row itself.
//
// If it has to stop, the items it has not written yet are NotStored when
// they had lost a race in the bulk write (so the bulk did not write them),
// and Unknown when they come from a bulk write whose results could not be
// mapped (it may have written them).
func (b *batch[K, P]) oneByOne(ctx context.Context, pending []int, raced bool) bool {
	rest := Unknown
	if raced {
		rest = NotStored
	}
	for n, i := range pending {
		if b.outcome[i] != 0 {
			continue
		}
		m := b.models[i].(*mongo.UpdateOneModel)
		for attempt := 0; ; attempt++ {
			callCtx, cancel := b.r.conn.bound(ctx, 0)
			res, err := b.r.coll.UpdateOne(callCtx, m.Filter, m.Update)
			if err == nil && res.MatchedCount == 0 && (raced || attempt > 0) && attempt < plainRetries {
				// The key's creator (the race's winner) has not committed
				// yet: wait for it rather than race it again.
				cancel()
				if err := backoff(ctx, attempt); err != nil {
					b.stop(pending[n:], rest, err)
					return false
				}
				continue
			}
			if err == nil && res.MatchedCount == 0 {
				res, err = b.r.coll.UpdateOne(callCtx, m.Filter, m.Update, options.UpdateOne().SetUpsert(true))
			}
			cancel()
			if err == nil {
				if res.UpsertedID != nil {
					if id, ok := res.UpsertedID.(bson.ObjectID); ok && id == b.ids[i] {
						b.done(i, Stored)
						b.set = append(b.set, cache.Identity{Key: b.rks[i], ID: id})
						break
					}
				}
				b.done(i, b.matched())
				break
			}
			if lostRace(err) != noRace && attempt < b.r.conn.cfg.UpsertRetries {
				if err := backoff(ctx, attempt); err != nil {
					b.stop(pending[n:], rest, err)
					return false
				}
				continue
			}
			if isRefusal(err) {
				b.refuse(i, err)
				break
			}
			b.done(i, Unknown)
			b.stop(pending[n+1:], rest, err)
			return false
		}
	}
	return true
}

// insertAll is InsertMany where bulk results are inexact (FerretDB v1): one
// unordered insert of the representatives; when the server reports errors,
// what it stored is read back by key, and the items it did not store are
// sent again (in bulk when it only reported lost races, else one by one).
func (b *batch[K, P]) insertAll(ctx context.Context, docs []bson.D) {
	pending := b.reps
	for attempt := 0; len(pending) > 0; attempt++ {
		models := make([]mongo.WriteModel, len(pending))
		for j, i := range pending {
			models[j] = b.models[i]
		}
		callCtx, cancel := b.r.conn.bound(ctx, len(models))
		res, err := b.r.coll.BulkWrite(callCtx, models, options.BulkWrite().SetOrdered(false))
		cancel()
		var bwe mongo.BulkWriteException
		if err != nil && (!errors.As(err, &bwe) || bwe.WriteConcernError != nil) {
			b.stop(pending, Unknown, err)
			return
		}
		if err == nil && res != nil && int(res.InsertedCount) == len(pending) {
			for _, i := range pending {
				b.done(i, Stored)
				b.set = append(b.set, cache.Identity{Key: b.rks[i], ID: b.ids[i]})
			}
			return
		}
		rest, err := b.confirmInserts(ctx, pending)
		if err != nil {
			b.stop(pending, Unknown, err)
			return
		}
		failed, _ := raceIndexes(bwe.WriteErrors, len(pending))
		if len(rest) > 0 && (!allRaces(failed) || attempt >= b.r.conn.cfg.UpsertRetries) {
			b.insertOneByOne(ctx, rest, docs)
			return
		}
		if len(rest) > 0 {
			if err := backoff(ctx, attempt); err != nil {
				b.stop(rest, NotStored, err)
				return
			}
		}
		pending = rest
	}
}

// confirmInserts reads back, in one find by key, what the server stored for
// the pending items: a row under the item's own _id was inserted by this
// call, a row under another _id was there first (kept), and the keys
// without a row are returned.
func (b *batch[K, P]) confirmInserts(ctx context.Context, pending []int) (rest []int, err error) {
	keys := make([][]any, len(pending))
	for j, i := range pending {
		keys[j] = b.vals[i]
	}
	have := make(map[string]bson.ObjectID, len(pending))
	err = b.r.findEach(ctx, b.r.s.anyOf(keys), len(pending), func(raw bson.Raw) error {
		id, _ := raw.Lookup(FieldID).ObjectIDOK()
		have[schema.Canon(b.r.docKeyValues(raw))] = id
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, i := range pending {
		id, ok := have[schema.Canon(b.vals[i])]
		switch {
		case !ok:
			rest = append(rest, i)
		case id == b.ids[i]:
			b.done(i, Stored)
			b.set = append(b.set, cache.Identity{Key: b.rks[i], ID: id})
		default:
			b.done(i, Kept)
		}
	}
	return rest, nil
}

// insertOneByOne inserts each item alone, so that each outcome is known.
func (b *batch[K, P]) insertOneByOne(ctx context.Context, pending []int, docs []bson.D) {
	for n, i := range pending {
		for attempt := 0; ; attempt++ {
			callCtx, cancel := b.r.conn.bound(ctx, 0)
			_, err := b.r.coll.InsertOne(callCtx, docs[i])
			cancel()
			kind := lostRace(err)
			switch {
			case err == nil:
				b.done(i, Stored)
				b.set = append(b.set, cache.Identity{Key: b.rks[i], ID: b.ids[i]})
			case kind == raceDuplicate:
				// The key's row was there first, unless the duplicate is in
				// another unique index of the collection: the read tells.
				exists, rerr := b.keyExists(ctx, i)
				switch {
				case rerr != nil:
					b.done(i, Unknown)
					b.stop(pending[n+1:], NotStored, rerr)
					return
				case exists:
					b.done(i, Kept)
				default:
					b.refuse(i, err)
				}
			case kind == raceTransient && attempt < b.r.conn.cfg.UpsertRetries:
				if err := backoff(ctx, attempt); err != nil {
					b.stop(pending[n:], NotStored, err)
					return
				}
				continue
			case isRefusal(err):
				b.refuse(i, err)
			default:
				b.done(i, Unknown)
				b.stop(pending[n+1:], NotStored, err)
				return
			}
			break
		}
	}
}

// keyExists reports whether item i's key has a row.
func (b *batch[K, P]) keyExists(ctx context.Context, i int) (bool, error) {
	_, err := b.r.findOne(ctx, b.r.s.filter(b.vals[i]), options.FindOne().SetProjection(bson.D{{Key: FieldID, Value: 1}}))
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, err
}

// finish writes the identities of the inserted rows (identity mode) or
// invalidates every item's cached value (value mode), gives duplicates
// their representative's outcome, and returns nil or the batch error.
func (b *batch[K, P]) finish(ctx context.Context) error {
	b.r.cache.Remember(ctx, b.set, nil)
	// Every item sent may have changed its row, the unknown ones too;
	// after an error some may still land (their marks stay).
	notInvalidated := b.r.cache.End(ctx, b.cw, b.cause, nil)
	if !errors.Is(notInvalidated, ErrNotInvalidated) {
		// The batch's own error (End returns it as it is: reported
		// below), or none. Not errors.Is(_, b.cause): a driver's error
		// types need not be comparable, so that test missed it and the
		// cause came back twice, unclassified.
		notInvalidated = nil
	}
	if b.histErr != nil {
		notInvalidated = errors.Join(notInvalidated, b.histErr)
	}
	if err := b.result(ctx); err != nil || notInvalidated != nil {
		// The items' outcomes stand either way; ErrNotInvalidated says
		// only that the cache may lag.
		if err == nil {
			b.r.ops[b.op].errors.Add(1)
			return b.r.conn.secrets.scrubOp(&OpError{Op: opNames[b.op], Domain: b.r.s.Domain, Err: notInvalidated})
		}
		if notInvalidated != nil {
			var op *OpError
			if errors.As(err, &op) {
				cp := *op
				cp.Err = errors.Join(op.Err, notInvalidated)
				return &cp
			}
		}
		return err
	}
	return nil
}

// repKeys are the cache keys of the representatives: one per distinct key.
func (b *batch[K, P]) repKeys() []string {
	keys := make([]string, len(b.reps))
	for j, i := range b.reps {
		keys[j] = b.rks[i]
	}
	return keys
}

// result gives duplicates their representative's outcome and returns nil or
// the batch error.
func (b *batch[K, P]) result(ctx context.Context) error {
	ok := true
	for i, rep := range b.rep {
		o := b.outcome[rep]
		if rep != i && b.insert && o == Stored {
			o = Kept // an earlier item of the same key was inserted
		}
		if o == 0 {
			o = NotStored
		}
		b.outcome[i] = o
		if o != Stored && o != Kept {
			ok = false
		}
	}
	if ok {
		return nil
	}
	be := &BatchError{Outcomes: b.outcome, Refused: map[int]error{}, Err: b.cause}
	for i, rep := range b.rep {
		if err, refused := b.refused[rep]; refused {
			be.Refused[i] = err
		}
	}
	if be.Err == nil {
		be.Err = errors.New("the server did not store every item")
	}
	be.Err = b.r.conn.classify(ctx, be.Err)
	b.r.ops[b.op].errors.Add(1)
	return b.r.conn.secrets.scrubOp(&OpError{Op: opNames[b.op], Domain: b.r.s.Domain, Err: be})
}

// countsAddUp reports whether the server's counts account for exactly n
// successful upserts.
func countsAddUp(res *mongo.BulkWriteResult, n int) bool {
	return res != nil && int(res.MatchedCount+res.UpsertedCount) == n
}

// allRaces reports whether every failed operation lost a race.
func allRaces(failed map[int]race) bool {
	for _, k := range failed {
		if k == noRace {
			return false
		}
	}
	return true
}

// raceIndexes maps write errors to operation indexes, each with its kind of
// race (noRace for an error that is not one); indexed is false when the
// indexes repeat or fall outside the n operations sent.
func raceIndexes(wes []mongo.BulkWriteError, n int) (failed map[int]race, indexed bool) {
	failed = make(map[int]race, len(wes))
	indexed = true
	for _, we := range wes {
		if _, dup := failed[we.Index]; dup || we.Index < 0 || we.Index >= n {
			indexed = false
		}
		failed[we.Index] = raceOf(int32(we.Code), we.Message)
	}
	return failed, indexed
}

// bulkErr is the write error of operation j of a bulk write.
func bulkErr(bwe mongo.BulkWriteException, j int) error {
	for _, we := range bwe.WriteErrors {
		if we.Index == j {
			return mongo.WriteException{WriteErrors: mongo.WriteErrors{we.WriteError}}
		}
	}
	return errors.New("refused by the server")
}

// isRefusal reports whether err is the server refusing the write, which
// it then did not apply. A failure to get an answer is not one, and
// neither is a write concern error: the write was applied, its durability
// is what is unknown.
func isRefusal(err error) bool {
	var se mongo.ServerError
	var we mongo.WriteException
	if errors.As(err, &we) && we.WriteConcernError != nil {
		return false
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError != nil {
		return false
	}
	return errors.As(err, &se) && !mongo.IsNetworkError(err) && !mongo.IsTimeout(err)
}
