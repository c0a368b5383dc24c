package runtime

import (
	"context"
	"errors"

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
// reports how many were inserted. Round trips: one unordered insert (the
// driver splits only past 100,000 documents or 48 MB) and one Redis pipeline.
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
	docs := make([]any, len(items))
	for i, it := range items {
		d, err := r.insertDoc(vals[i], it.Payload, it.When, bson.ObjectID{})
		if err != nil {
			return 0, r.opErr(opInsertMany, vals[i], errorf(ErrInvalidArgument, "item %d: %v", i, err))
		}
		docs[i] = d
	}
	failed := make(map[int]bool)
	// The driver assigns increasing ObjectIDs in item order (so newest first
	// follows item order). It reports the ids of the documents it inserted,
	// in item order, leaving out the ones that failed.
	res, err := r.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil {
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
			return 0, r.opErr(opInsertMany, nil, err)
		}
		for _, we := range bwe.WriteErrors {
			if !isDuplicate(we.WriteError) {
				return 0, r.opErr(opInsertMany, vals[we.Index], err)
			}
			failed[we.Index] = true
		}
	}
	var ids []any
	if res != nil {
		ids = res.InsertedIDs
	}
	inserted := len(items) - len(failed)
	if len(ids) != inserted {
		// Not expected from the driver; the rows are stored, only their
		// identities are left for reads to backfill.
		r.conn.log.Warn("persistgen: insert reported an unexpected number of ids", "domain", r.s.Domain, "inserted", inserted, "ids", len(ids))
		return inserted, nil
	}
	set := make([]identity, 0, inserted)
	next := 0
	for i := range items {
		if failed[i] {
			continue
		}
		if id, ok := ids[next].(bson.ObjectID); ok {
			set = append(set, identity{key: rks[i], id: id})
		}
		next++
	}
	r.conn.cache.writeMany(ctx, set, nil)
	return inserted, nil
}

func isDuplicate(we mongo.WriteError) bool {
	return we.Code == 11000 || we.Code == 11001 || we.Code == 12582
}

// PutMany writes every item, last writer wins (of two items with one key the
// later is kept). Round trips: ceil(n/WriteChunk) unordered bulk upserts
// (WriteChunk is 10 on FerretDB, 1000 on MongoDB) plus one Redis pipeline
// for the identities of inserted rows; a chunk whose upserts raced another
// writer is retried for those items only. On FerretDB the bulk upserts of
// one Conn run one at a time (see Conn.acquireBulk).
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
	for i, it := range items {
		if last[rks[i]] != i {
			continue
		}
		set, err := r.setFields(it.Payload, it.When)
		if err != nil {
			return r.opErr(opPutMany, vals[i], errorf(ErrInvalidArgument, "item %d: %v", i, err))
		}
		// A client-made _id, increasing in item order, makes "newest first"
		// (createDate, then _id, descending) follow the order of the items
		// within one batch.
		update := upsertUpdate(set, bson.NewObjectID())
		models = append(models, mongo.NewUpdateOneModel().SetFilter(r.s.filter(vals[i])).SetUpdate(update).SetUpsert(true))
		order = append(order, i)
	}
	var set []identity
	chunk := r.conn.WriteChunk()
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
				for j, id := range res.UpsertedIDs {
					if oid, ok := id.(bson.ObjectID); ok {
						set = append(set, identity{key: rks[idx[j]], id: oid})
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
				if !isDuplicate(we.WriteError) {
					return r.opErr(opPutMany, vals[idx[we.Index]], err)
				}
				retry = append(retry, pending[we.Index])
				retryIdx = append(retryIdx, idx[we.Index])
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
