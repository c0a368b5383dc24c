package runtime

import (
	"context"
	"iter"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/schema"
)

// Range bounds one field of a list: From <= field < To (nil: unbounded).
type Range struct {
	Field    string
	From, To any
}

// SortField orders a list.
type SortField struct {
	Field string
	Desc  bool
}

// ListOptions selects the rows of a list.
type ListOptions struct {
	// Prefix holds the values of the leading key fields, in index order: the
	// rows listed share them (so the unique index serves the query).
	Prefix []any
	// Range bounds a key field, createDate, updatedDate or when.
	Range *Range
	// AsOf, when non-zero, hides rows whose when is later (the database
	// enforces it). Only for domains with a when column.
	AsOf time.Time
	// Sort orders the rows; by default the key fields ascending. Unless it
	// names _id, _id is appended as the final tie-breaker, in the direction
	// of the first sort field, so the order is total. A field may appear
	// once.
	Sort []SortField
	// Limit caps the rows (0: no cap).
	Limit int
	// IncludeRemoved also lists soft-removed rows.
	IncludeRemoved bool
	// KnownAt, when non-zero (domains with history only), lists the rows
	// as a reader would have listed them at KnownAt, from the history
	// collection (see Repo.GetAt): the other options apply to each key's
	// row as it stood then.
	KnownAt time.Time

	// batch, without a Limit, is how many rows the caller expects at
	// most: the first batch asks for one more, so that such an answer
	// takes one round trip (series windows).
	batch int
}

// List streams the rows that match o. A list with a limit is one round trip
// (the whole answer is asked for in the first batch, as long as it fits
// MongoDB's 16 MiB reply); without one, rows come in batches of ListBatch.
// Stopping the iteration early releases the cursor.
func (r *Repo[K, P]) List(ctx context.Context, o ListOptions) iter.Seq2[Record[K, P], error] {
	return func(yield func(Record[K, P], error) bool) {
		var zero Record[K, P]
		ctx, done := r.observe(ctx, opList)
		var listErr error
		defer func() { done(listErr) }()
		if r.conn.cfg.Observer != nil {
			inner := yield
			yield = func(rec Record[K, P], err error) bool {
				if err != nil {
					listErr = err
				}
				return inner(rec, err)
			}
		}
		ctx, _, err := r.begin(ctx, opList, nil)
		if err != nil {
			yield(zero, err)
			return
		}
		if !o.KnownAt.IsZero() {
			if err := r.listAt(ctx, o, yield); err != nil {
				yield(zero, r.opErr(ctx, opList, o.Prefix, err))
			}
			return
		}
		filter, findOpts, err := r.listQuery(o)
		if err != nil {
			yield(zero, r.opErr(ctx, opList, o.Prefix, err))
			return
		}
		var decodeErr error
		err = r.conn.eachDoc(ctx, r.coll, filter, findOpts, func(raw bson.Raw) bool {
			rec, err := r.decode(raw)
			if err != nil {
				decodeErr = r.opErr(ctx, opList, o.Prefix, err)
			}
			return yield(rec, decodeErr) && decodeErr == nil
		})
		if err != nil {
			yield(zero, r.opErr(ctx, opList, o.Prefix, err))
		}
	}
}

// eachDoc runs a find on coll and calls fn with each document until it
// returns false. Each round trip (the find, then every getMore) gets its
// own OpTimeout.
func (c *Conn) eachDoc(ctx context.Context, coll *mongo.Collection, filter bson.D, fo *options.FindOptionsBuilder, fn func(bson.Raw) bool) error {
	callCtx, cancel := c.bound(ctx, 0)
	defer func() { cancel() }()
	cur, err := coll.Find(callCtx, filter, fo)
	if err != nil {
		return err
	}
	defer closeCursor(ctx, cur)
	for {
		if cur.RemainingBatchLength() == 0 && cur.ID() != 0 {
			cancel()
			callCtx, cancel = c.bound(ctx, 0)
		}
		if !cur.Next(callCtx) {
			break
		}
		if !fn(cur.Current) {
			return nil
		}
	}
	return cur.Err()
}

func (r *Repo[K, P]) listQuery(o ListOptions) (bson.D, *options.FindOptionsBuilder, error) {
	filter, err := r.prefixFilter(o.Prefix)
	if err != nil {
		return nil, nil, err
	}
	if o.Range != nil {
		if !r.sortable(o.Range.Field) {
			return nil, nil, errorf(ErrInvalidArgument, "range field %q is not a key field, createDate, updatedDate or when", o.Range.Field)
		}
		cond := bson.D{}
		for _, b := range []struct {
			op string
			v  any
		}{{"$gte", o.Range.From}, {"$lt", o.Range.To}} {
			if b.v == nil {
				continue
			}
			v, err := r.rangeValue(o.Range.Field, b.v)
			if err != nil {
				return nil, nil, err
			}
			cond = append(cond, bson.E{Key: b.op, Value: v})
		}
		if len(cond) > 0 {
			filter = append(filter, bson.E{Key: o.Range.Field, Value: cond})
		}
	}
	if !o.AsOf.IsZero() {
		if !r.s.HasWhen {
			return nil, nil, errorf(ErrInvalidArgument, "%s has no when column; AsOf does not apply", r.s.Domain)
		}
		filter = append(filter, bson.E{Key: FieldWhen, Value: bson.D{{Key: "$lte", Value: asOfValue(o.AsOf)}}})
	}
	if r.s.HasRemoved && !o.IncludeRemoved {
		filter = append(filter, bson.E{Key: FieldRemoved, Value: bson.D{{Key: "$ne", Value: true}}})
	}
	sortSpec := bson.D{}
	if len(o.Sort) == 0 {
		for _, k := range r.s.Key {
			sortSpec = append(sortSpec, bson.E{Key: k.Name, Value: 1})
		}
	}
	for i, s := range o.Sort {
		if !r.sortable(s.Field) {
			return nil, nil, errorf(ErrInvalidArgument, "sort field %q is not a key field, createDate, updatedDate, when or _id", s.Field)
		}
		for _, earlier := range o.Sort[:i] {
			if earlier.Field == s.Field {
				return nil, nil, errorf(ErrInvalidArgument, "sort field %q is listed twice", s.Field)
			}
		}
		sortSpec = append(sortSpec, bson.E{Key: s.Field, Value: dir(s.Desc)})
	}
	if !slices.ContainsFunc(o.Sort, func(s SortField) bool { return s.Field == FieldID }) {
		sortSpec = append(sortSpec, bson.E{Key: FieldID, Value: dir(len(o.Sort) > 0 && o.Sort[0].Desc)})
	}
	fo := options.Find().SetSort(sortSpec)
	if o.Limit < 0 {
		return nil, nil, errorf(ErrInvalidArgument, "limit %d is negative", o.Limit)
	}
	if o.Limit > 0 {
		// One more than the limit: see findEach.
		fo.SetLimit(int64(o.Limit)).SetBatchSize(int32(o.Limit + 1))
	} else if o.batch > 0 {
		fo.SetBatchSize(int32(min(o.batch+1, maxBatch)))
	} else {
		fo.SetBatchSize(int32(r.conn.cfg.ListBatch))
	}
	return filter, fo, nil
}

// maxBatch caps a batch size the runtime asks for (the reply is capped at
// 16 MiB whatever it asks).
const maxBatch = 1 << 20

func dir(desc bool) int {
	if desc {
		return -1
	}
	return 1
}

// rangeValue checks a range bound against the field's type and turns it
// into the field's stored form: a key field's type, epoch milliseconds for
// when (a time.Time or a number), a time.Time for the dates, an ObjectID for
// _id. A bound of another type would match nothing: it is an error instead.
func (r *Repo[K, P]) rangeValue(field string, v any) (any, error) {
	if i := r.s.KeyIndex(field); i >= 0 {
		nv, err := r.s.Bound(i, v)
		if err != nil {
			return nil, errorf(ErrInvalidArgument, "range bound: %s", schema.Message(err))
		}
		return nv, nil
	}
	switch x := v.(type) {
	case time.Time:
		switch field {
		case FieldWhen:
			// Stored whens are whole milliseconds, so comparing them with t
			// rounded up is comparing them with t itself.
			return whenBound(x), nil
		case FieldCreateDate, FieldUpdatedDate:
			return x.UTC(), nil
		}
	case float64, int64, int32, int:
		if nv, err := schema.Normalise(x); err == nil && field == FieldWhen {
			return nv, nil
		}
	case bson.ObjectID:
		if field == FieldID {
			return x, nil
		}
	}
	return nil, errorf(ErrInvalidArgument, "range bound %v (%T) does not fit %s: use a time.Time for createDate and updatedDate, a time.Time or epoch milliseconds for when, a bson.ObjectID for _id", v, v, field)
}

func (r *Repo[K, P]) sortable(f string) bool {
	if r.s.KeyIndex(f) >= 0 {
		return true
	}
	switch f {
	case FieldCreateDate, FieldUpdatedDate, FieldID:
		return true
	case FieldWhen:
		return r.s.HasWhen
	}
	return false
}

// Collect drains a list into a slice, stopping at the first error.
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}
