package runtime

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// itemKeys returns the keys of a batch of items.
func itemKeys[K Key, P any](items []Item[K, P]) []K {
	keys := make([]K, len(items))
	for i := range items {
		keys[i] = items[i].Key
	}
	return keys
}

// batchKeys validates every key of a batch and computes its Redis key.
func (r *Repo[K, P]) batchKeys(op opID, keys []K) (vals [][]any, rks []string, err error) {
	vals = make([][]any, len(keys))
	rks = make([]string, len(keys))
	for i, k := range keys {
		v, err := r.s.keyValues(k.KeyValues())
		if err != nil {
			return nil, nil, r.opErr(op, nil, errorf(ErrInvalidKey, "item %d: %v", i, err))
		}
		vals[i], rks[i] = v, r.s.redisKey(r.conn.cfg.KeyPrefix, v)
	}
	return vals, rks, nil
}

// GetMany reads many keys at once; out[i] is nil where keys[i] has no visible
// row. Round trips, for n keys and ReadChunk c: one Redis pipeline of GETs,
// ceil(hits/c) finds by _id, ceil(misses/c) finds by key, and one Redis
// pipeline to backfill: 4 for up to c keys, whatever the mix.
func (r *Repo[K, P]) GetMany(ctx context.Context, keys []K) ([]*Record[K, P], error) {
	vals, rks, err := r.batchKeys(opGetMany, keys)
	if err != nil {
		return nil, err
	}
	ctx, _, err = r.begin(ctx, opGetMany, nil)
	if err != nil {
		return nil, err
	}
	ns := len(r.conn.cfg.KeyPrefix)
	out := make([]*Record[K, P], len(keys))
	resolved := make([]bool, len(keys))
	ids, found := r.conn.cache.getMany(ctx, rks)

	// Phase 1: identities. A document must also carry the requested key.
	byID := make(map[bson.ObjectID][]int)
	var idList []any
	for i, ok := range found {
		if ok {
			if _, dup := byID[ids[i]]; !dup {
				idList = append(idList, ids[i])
			}
			byID[ids[i]] = append(byID[ids[i]], i)
		}
	}
	for start := 0; start < len(idList); start += r.conn.cfg.ReadChunk {
		chunk := idList[start:min(start+r.conn.cfg.ReadChunk, len(idList))]
		err := r.findEach(ctx, bson.D{{Key: FieldID, Value: bson.D{{Key: "$in", Value: chunk}}}}, len(chunk), func(raw bson.Raw) error {
			id, _ := raw.Lookup(FieldID).ObjectIDOK()
			canon := r.s.redisKey("", r.docKeyValues(raw))
			for _, i := range byID[id] {
				if rks[i][ns:] == canon {
					rec, err := r.decode(raw)
					if err != nil {
						return err
					}
					resolved[i] = true
					r.hit(opGetMany)
					if !rec.Removed {
						out[i] = &rec
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, r.opErr(opGetMany, nil, err)
		}
	}

	// Phase 2: the rest by key.
	byKey := make(map[string][]int)
	var missing []int
	for i := range keys {
		if resolved[i] {
			continue
		}
		if _, dup := byKey[rks[i][ns:]]; !dup {
			missing = append(missing, i)
		}
		byKey[rks[i][ns:]] = append(byKey[rks[i][ns:]], i)
	}
	var backfill []identity
	for start := 0; start < len(missing); start += r.conn.cfg.ReadChunk {
		chunk := missing[start:min(start+r.conn.cfg.ReadChunk, len(missing))]
		chunkVals := make([][]any, len(chunk))
		for j, i := range chunk {
			chunkVals[j] = vals[i]
		}
		err := r.findEach(ctx, r.s.anyOf(chunkVals), len(chunk), func(raw bson.Raw) error {
			idx := byKey[r.s.redisKey("", r.docKeyValues(raw))]
			if len(idx) == 0 {
				return nil
			}
			rec, err := r.decode(raw)
			if err != nil {
				return err
			}
			backfill = append(backfill, identity{key: rks[idx[0]], id: rec.ID})
			for _, i := range idx {
				resolved[i] = true
				r.miss(opGetMany)
				if !rec.Removed {
					out[i] = &rec
				}
			}
			return nil
		})
		if err != nil {
			return nil, r.opErr(opGetMany, nil, err)
		}
	}
	var stale []string
	for i, ok := range found {
		if ok && !resolved[i] {
			stale = append(stale, rks[i])
		}
		if !ok && !resolved[i] {
			r.miss(opGetMany)
		}
	}
	r.conn.cache.writeMany(ctx, backfill, stale)
	return out, nil
}

// findEach runs one find that can match at most n documents and calls fn
// for each. The batch size is n+1: a full batch leaves the cursor open on
// FerretDB and costs an empty getMore, a batch that cannot fill closes it.
func (r *Repo[K, P]) findEach(ctx context.Context, filter bson.D, n int, fn func(bson.Raw) error) error {
	cur, err := r.coll.Find(ctx, filter, options.Find().SetBatchSize(int32(n+1)))
	if err != nil {
		return err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		if err := fn(cur.Current); err != nil {
			return err
		}
	}
	return cur.Err()
}

// anyOf is a filter matching any of the keys: {k1: v1, ..., kn: {$in: [..]}}
// when the keys share all but their last field (a candle window, one bucket),
// otherwise an $or of compound filters.
func (c *compiled) anyOf(keys [][]any) bson.D {
	n := len(c.Key)
	shared := true
	for _, k := range keys[1:] {
		for f := 0; f < n-1 && shared; f++ {
			shared = k[f] == keys[0][f]
		}
	}
	if shared {
		in := make(bson.A, len(keys))
		for i, k := range keys {
			in[i] = k[n-1]
		}
		f := c.filter(keys[0][:n-1])
		return append(f, bson.E{Key: c.Key[n-1].Name, Value: bson.D{{Key: "$in", Value: in}}})
	}
	or := make(bson.A, len(keys))
	for i, k := range keys {
		or[i] = c.filter(k)
	}
	return bson.D{{Key: "$or", Value: or}}
}

// docKeyValues reads the key values of a stored document, normalised like
// keyValues so that an int64 and a double of the same value match.
func (r *Repo[K, P]) docKeyValues(raw bson.Raw) []any {
	out := make([]any, len(r.s.Key))
	for i, k := range r.s.Key {
		v := raw.Lookup(k.Name)
		switch v.Type {
		case bson.TypeString:
			out[i] = v.StringValue()
		case bson.TypeBoolean:
			out[i] = v.Boolean()
		case bson.TypeInt32:
			out[i] = int64(v.Int32())
		case bson.TypeInt64:
			out[i] = v.Int64()
		case bson.TypeDouble:
			out[i] = v.Double()
		default:
			out[i] = v.String()
		}
	}
	return out
}

// InsertMany inserts the items whose keys have no row yet, first writer wins
// (an existing row, or an earlier item with the same key, is kept). It
// reports how many were inserted. Round trips: one unordered bulk insert and
// one Redis pipeline. Every item gets a client-made _id, increasing in item
// order (so newest first follows item order). When the server reports write
// errors, they are mapped back to items only if its bulk results are exact
// (Capabilities.BulkResults) and its counts add up; otherwise what it
// stored is read back by key (one more find).
func (r *Repo[K, P]) InsertMany(ctx context.Context, items []Item[K, P]) (int, error) {
	vals, rks, err := r.batchKeys(opInsertMany, itemKeys(items))
	if err != nil {
		return 0, err
	}
	if len(items) == 0 {
		return 0, nil
	}
	ctx, _, err = r.begin(ctx, opInsertMany, nil)
	if err != nil {
		return 0, err
	}
	// The first item of each key, with its document.
	seen := make(map[string]bool, len(items))
	pending := make([]int, 0, len(items))
	ids := make([]bson.ObjectID, len(items))
	models := make([]mongo.WriteModel, len(items))
	for i, it := range items {
		if seen[rks[i]] {
			continue
		}
		seen[rks[i]] = true
		ids[i] = bson.NewObjectID()
		d, err := r.insertDoc(vals[i], it.Payload, it.When, ids[i])
		if err != nil {
			return 0, r.opErr(opInsertMany, vals[i], errorf(ErrInvalidArgument, "item %d: %v", i, err))
		}
		models[i] = mongo.NewInsertOneModel().SetDocument(d)
		pending = append(pending, i)
	}
	exact := r.conn.Capabilities().BulkResults
	var set []identity
	for attempt := 0; len(pending) > 0; attempt++ {
		batch := make([]mongo.WriteModel, len(pending))
		for j, i := range pending {
			batch[j] = models[i]
		}
		res, err := r.coll.BulkWrite(ctx, batch, options.BulkWrite().SetOrdered(false))
		var bwe mongo.BulkWriteException
		if err != nil && (!errors.As(err, &bwe) || bwe.WriteConcernError != nil) {
			return len(set), r.opErr(opInsertMany, nil, err)
		}
		bulkErr := err
		failed, indexed := raceIndexes(bwe.WriteErrors, len(pending))
		var stored, retry []int
		if err == nil && res != nil && int(res.InsertedCount) == len(pending) {
			stored = pending
		} else if exact && indexed && res != nil && int(res.InsertedCount) == len(pending)-len(failed) {
			for j, kind := range failed {
				if kind == noRace {
					return len(set), r.opErr(opInsertMany, vals[pending[j]], err)
				}
			}
			for j, i := range pending {
				switch failed[j] {
				case noRace:
					stored = append(stored, i)
				case raceTransient:
					retry = append(retry, i)
				}
			}
		} else {
			for _, we := range bwe.WriteErrors {
				if raceOf(int32(we.Code), we.Message) == noRace {
					return len(set), r.opErr(opInsertMany, nil, err)
				}
			}
			if stored, retry, err = r.confirmInserts(ctx, pending, ids, vals); err != nil {
				return len(set), r.opErr(opInsertMany, nil, err)
			}
			err = bulkErr
		}
		for _, i := range stored {
			set = append(set, identity{key: rks[i], id: ids[i]})
		}
		if len(retry) > 0 {
			if attempt >= r.conn.cfg.UpsertRetries {
				return len(set), r.opErr(opInsertMany, vals[retry[0]], fmt.Errorf("%d items still not stored after %d attempts (the server kept aborting them as conflicting with other writers; last error: %v)", len(retry), attempt+1, err))
			}
			if err := backoff(ctx, attempt); err != nil {
				return len(set), r.opErr(opInsertMany, nil, err)
			}
		}
		pending = retry
	}
	r.conn.cache.writeMany(ctx, set, nil)
	return len(set), nil
}

// raceIndexes maps write errors to operation indexes, each with its kind of
// race (noRace for an error that is not one); indexed is false when the
// indexes repeat or fall outside the n operations sent.
func raceIndexes(wes []mongo.BulkWriteError, n int) (failed map[int]race, indexed bool) {
	failed = make(map[int]race, len(wes))
	for _, we := range wes {
		if _, dup := failed[we.Index]; dup || we.Index < 0 || we.Index >= n {
			return failed, false
		}
		failed[we.Index] = raceOf(int32(we.Code), we.Message)
	}
	return failed, true
}

// confirmInserts reads back, in one find by key, what the server stored for
// the pending items: a row under the item's own _id was inserted by this
// call, a row under another _id was there first (the item lost to it), and
// a key without a row is to be sent again.
func (r *Repo[K, P]) confirmInserts(ctx context.Context, pending []int, ids []bson.ObjectID, vals [][]any) (stored, retry []int, err error) {
	keys := make([][]any, len(pending))
	for j, i := range pending {
		keys[j] = vals[i]
	}
	have := make(map[string]bson.ObjectID, len(pending))
	err = r.findEach(ctx, r.s.anyOf(keys), len(pending), func(raw bson.Raw) error {
		id, _ := raw.Lookup(FieldID).ObjectIDOK()
		have[r.s.redisKey("", r.docKeyValues(raw))] = id
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, i := range pending {
		id, ok := have[r.s.redisKey("", vals[i])]
		switch {
		case !ok:
			retry = append(retry, i)
		case id == ids[i]:
			stored = append(stored, i)
		}
	}
	return stored, retry, nil
}

// PutMany writes every item, last writer wins (of two items with one key the
// later is kept). Round trips: ceil(n/WriteChunk) unordered bulk upserts
// (WriteChunk is Capabilities.MaxBulk: the server's batch limit, or 10 on
// FerretDB v1) plus one Redis pipeline for the identities of inserted rows.
// Upserts that lost a race to another writer are sent again, bounded by
// Config.UpsertRetries: those items alone where the server's bulk results
// are exact, the whole chunk where they are not. Where they are not, the
// bulk writes of one Conn also run one at a time (see Conn.acquireBulk).
func (r *Repo[K, P]) PutMany(ctx context.Context, items []Item[K, P]) error {
	vals, rks, err := r.batchKeys(opPutMany, itemKeys(items))
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	ctx, _, err = r.begin(ctx, opPutMany, nil)
	if err != nil {
		return err
	}
	// Keep the last item of each key.
	last := make(map[string]int, len(items))
	for i := range items {
		last[rks[i]] = i
	}
	models := make([]mongo.WriteModel, 0, len(last))
	order := make([]int, 0, len(last))
	// newIDs maps the _id a write inserts under to its item: a client-made
	// _id, increasing in item order, makes "newest first" (createDate, then
	// _id, descending) follow the order of the items within one batch, and
	// lets the identities of inserted rows be taken from the ids the server
	// reports rather than from its operation indexes, which FerretDB v1
	// gets wrong.
	newIDs := make(map[bson.ObjectID]int, len(last))
	for i, it := range items {
		if last[rks[i]] != i {
			continue
		}
		set, err := r.setFields(it.Payload, it.When)
		if err != nil {
			return r.opErr(opPutMany, vals[i], errorf(ErrInvalidArgument, "item %d: %v", i, err))
		}
		id := bson.NewObjectID()
		newIDs[id] = i
		models = append(models, mongo.NewUpdateOneModel().SetFilter(r.s.filter(vals[i])).SetUpdate(upsertUpdate(set, id)).SetUpsert(true))
		order = append(order, i)
	}
	var set []identity
	chunk := r.conn.WriteChunk()
	exact := r.conn.Capabilities().BulkResults
	for start := 0; start < len(models); start += chunk {
		end := min(start+chunk, len(models))
		pending := models[start:end]
		idx := order[start:end]
		for attempt := 0; len(pending) > 0; attempt++ {
			release, err := r.conn.acquireBulk(ctx)
			if err != nil {
				return r.opErr(opPutMany, nil, err)
			}
			res, err := r.coll.BulkWrite(ctx, pending, options.BulkWrite().SetOrdered(false))
			release()
			if res != nil {
				for _, id := range res.UpsertedIDs {
					if oid, ok := id.(bson.ObjectID); ok {
						if i, ok := newIDs[oid]; ok {
							set = append(set, identity{key: rks[i], id: oid})
						}
					}
				}
			}
			if err == nil {
				break
			}
			var bwe mongo.BulkWriteException
			if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || attempt >= r.conn.cfg.UpsertRetries {
				return r.opErr(opPutMany, nil, err)
			}
			var retry []mongo.WriteModel
			var retryIdx []int
			for _, we := range bwe.WriteErrors {
				if raceOf(int32(we.Code), we.Message) == noRace {
					if exact {
						return r.opErr(opPutMany, vals[idx[we.Index]], err)
					}
					return r.opErr(opPutMany, nil, err)
				}
				if exact {
					retry = append(retry, pending[we.Index])
					retryIdx = append(retryIdx, idx[we.Index])
				}
			}
			if !exact {
				// The server's error indexes cannot be trusted, nor can it
				// be trusted to have gone on past the error: send the whole
				// chunk again (each upsert is idempotent).
				retry, retryIdx = pending, idx
			}
			if err := backoff(ctx, attempt); err != nil {
				return r.opErr(opPutMany, nil, err)
			}
			pending, idx = retry, retryIdx
		}
	}
	r.conn.cache.writeMany(ctx, set, nil)
	return nil
}
