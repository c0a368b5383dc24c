package runtime

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/internal/cache"
	"github.com/persistgen/persistgen/schema"
)

// itemKeys returns the keys of a batch of items.
func itemKeys[K Key, P any](items []Item[K, P]) []K {
	keys := make([]K, len(items))
	for i := range items {
		keys[i] = items[i].Key
	}
	return keys
}

// storableKeys checks a batch's keys against what the server can store.
func (r *Repo[K, P]) storableKeys(vals [][]any) error {
	for i, v := range vals {
		if err := r.conn.storableKey(v); err != nil {
			return errorf(ErrInvalidKey, "item %d: %s", i, schema.Message(err))
		}
	}
	return nil
}

// batchKeys validates every key of a batch and computes its cache key
// (Mode.Key) and its canonical form (see canonKey).
func (r *Repo[K, P]) batchKeys(op opID, keys []K) (vals [][]any, rks, canon []string, err error) {
	vals = make([][]any, len(keys))
	rks = make([]string, len(keys))
	canon = make([]string, len(keys))
	for i, k := range keys {
		v, err := r.s.Values(k.KeyValues())
		if err != nil {
			return nil, nil, nil, r.argErr(op, nil, errorf(ErrInvalidKey, "item %d: %s", i, schema.Message(err)))
		}
		vals[i], rks[i], canon[i] = v, r.cache.Key(v), schema.Canon(v)
	}
	return vals, rks, canon, nil
}

// GetMany reads many keys at once; out[i] is nil where keys[i] has no visible
// row. Round trips, for n keys and ReadChunk c: one Redis pipeline of GETs,
// ceil(hits/c) finds by _id, ceil(misses/c) finds by key, and one Redis
// pipeline to backfill: 4 for up to c keys, whatever the mix.
func (r *Repo[K, P]) GetMany(ctx context.Context, keys []K) (ret []*Record[K, P], retErr error) {
	ctx, done := r.observe(ctx, opGetMany)
	defer func() { done(retErr) }()
	vals, rks, canon, err := r.batchKeys(opGetMany, keys)
	if err != nil {
		return nil, err
	}
	ctx, _, err = r.begin(ctx, opGetMany, nil)
	if err != nil {
		return nil, err
	}
	if err := r.storableKeys(vals); err != nil {
		return nil, r.argErr(opGetMany, nil, err)
	}
	out := make([]*Record[K, P], len(keys))
	resolved := make([]bool, len(keys))
	ids, found := r.cache.Identities(ctx, rks)

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
			docKey := schema.Canon(r.docKeyValues(raw))
			for _, i := range byID[id] {
				if canon[i] == docKey {
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
			return nil, r.opErr(ctx, opGetMany, nil, err)
		}
	}

	// Phase 2: the rest by key.
	byKey := make(map[string][]int)
	var missing []int
	for i := range keys {
		if resolved[i] {
			continue
		}
		if _, dup := byKey[canon[i]]; !dup {
			missing = append(missing, i)
		}
		byKey[canon[i]] = append(byKey[canon[i]], i)
	}
	var backfill []cache.Identity
	for start := 0; start < len(missing); start += r.conn.cfg.ReadChunk {
		chunk := missing[start:min(start+r.conn.cfg.ReadChunk, len(missing))]
		chunkVals := make([][]any, len(chunk))
		for j, i := range chunk {
			chunkVals[j] = vals[i]
		}
		err := r.findEach(ctx, r.s.anyOf(chunkVals), len(chunk), func(raw bson.Raw) error {
			idx := byKey[schema.Canon(r.docKeyValues(raw))]
			if len(idx) == 0 {
				return nil
			}
			rec, err := r.decode(raw)
			if err != nil {
				return err
			}
			backfill = append(backfill, cache.Identity{Key: rks[idx[0]], ID: rec.ID})
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
			return nil, r.opErr(ctx, opGetMany, nil, err)
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
	r.cache.Remember(ctx, backfill, stale)
	return out, nil
}

// findEach runs one find that can match at most n documents and calls fn
// for each. The batch size is n+1: a full batch leaves the cursor open on
// FerretDB and costs an empty getMore, a batch that cannot fill closes it.
func (r *Repo[K, P]) findEach(ctx context.Context, filter bson.D, n int, fn func(bson.Raw) error) error {
	ctx, cancel := r.conn.bound(ctx, n)
	defer cancel()
	cur, err := r.coll.Find(ctx, filter, options.Find().SetBatchSize(int32(n+1)))
	if err != nil {
		return err
	}
	defer closeCursor(ctx, cur)
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
			out[i] = v.Double() + 0 // -0 is 0, as normalise makes it
		default:
			out[i] = v.String()
		}
	}
	return out
}
