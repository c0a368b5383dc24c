package runtime

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/internal/cache"
	"github.com/persistgen/persistgen/schema"
)

// History (Schema.History) keeps every version of a domain's rows in
// <collection>-history, so that a read can ask what a reader would have
// seen at an earlier time (docs/history.md).
//
// The protocol, per write of one key:
//
//  1. The row's write is one findOneAndUpdate that also counts the row's
//     version ($inc _hv: versions of a key are numbered 1, 2, 3... in the
//     order the server applied them) and moves its recorded time forward
//     ($max _hr: never backwards, whatever the clocks do). It returns the
//     row as it was before, from which the runtime knows the new version's
//     number, its recorded time and its content without another read.
//  2. One unordered bulk write to the history collection: an upsert of the
//     new version, and an upsert of the version the row held before. The
//     second is usually a no-op; it records the previous write's version
//     when that write's process died between its two steps (or its
//     history write failed), so a crash leaves no gap once the key is
//     written again. Both upserts only set fields on insert, keyed by the
//     unique (key, _hv): sent twice, or by two writers, a version is
//     stored once.
//
// A write returns nil only when both steps are confirmed. The version of a
// row write whose outcome is unknown to its caller (a cut connection) is
// recorded by the next write of the key or by RepairHistory.

// Version is one version of a row: the row as a write left it, its number
// (per key, from 1; 0 is a row that stood before history began, recorded
// when it was first seen) and when it was recorded.
type Version[K Key, P any] struct {
	Record[K, P]
	Number   int64
	Recorded time.Time
}

// HistoryOptions bounds History.
type HistoryOptions struct {
	// KnownAt, when non-zero, skips the versions recorded after it: the
	// history as a reader at KnownAt would have seen it.
	KnownAt time.Time
	// Since, when non-zero, stops at the versions recorded before it.
	Since time.Time
	// Limit caps the versions (0: all).
	Limit int
}

// recordedTime is the time a write records: this process's clock moved by
// the server's offset, to the millisecond. The row's $max keeps it from
// going backwards per key.
func (c *Conn) recordedTime() time.Time {
	return c.cfg.Now().Add(c.Server().ClockOffset).UTC().Truncate(time.Millisecond)
}

// versioned adds the version bookkeeping to a row update: the version
// counted up, the recorded time moved forward to rec (never back).
func versioned(update bson.D, rec time.Time) bson.D {
	return append(update[:len(update):len(update)],
		bson.E{Key: "$inc", Value: bson.D{{Key: FieldVersion, Value: int64(1)}}},
		bson.E{Key: "$max", Value: bson.D{{Key: FieldRecorded, Value: rec}}})
}

// rowVersion reads a row's version bookkeeping: its number (0 when the row
// has none: written before history began, or by another program) and its
// recorded time. A row without one is taken as recorded at its
// updatedDate, but never after seen (the recorded time of the write that
// found it, or of the repair): another program's clock may be ahead, and
// the versions after it must not be recorded before it.
func rowVersion(row bson.Raw, seen time.Time) (int64, time.Time) {
	n, ok := row.Lookup(FieldVersion).AsInt64OK()
	if ok {
		return n, timeOf(row.Lookup(FieldRecorded))
	}
	at := timeOf(row.Lookup(FieldUpdatedDate))
	if at.IsZero() || at.After(seen) {
		at = seen
	}
	return 0, at
}

// versionOfRow is the version a stored row holds, as the history keeps it:
// the row's fields, its _id as _hrow, and its number and recorded time
// (see rowVersion; seen bounds the recorded time of a row without one).
func versionOfRow(id bson.ObjectID, row bson.Raw, seen time.Time) (bson.D, error) {
	elems, err := row.Elements()
	if err != nil {
		return nil, err
	}
	n, rec := rowVersion(row, seen)
	doc := make(bson.D, 0, len(elems)+3)
	doc = append(doc, bson.E{Key: FieldID, Value: id})
	for _, e := range elems {
		switch e.Key() {
		case FieldID:
			doc = append(doc, bson.E{Key: FieldRow, Value: e.Value()})
		case FieldVersion, FieldRecorded:
		default:
			doc = append(doc, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	return append(doc, bson.E{Key: FieldVersion, Value: n}, bson.E{Key: FieldRecorded, Value: rec}), nil
}

// setAll is doc with each field of set replacing the field of that name,
// or appended: a row after a $set of top-level fields.
func setAll(doc, set bson.D) bson.D {
	for _, e := range set {
		i := slices.IndexFunc(doc, func(d bson.E) bool { return d.Key == e.Key })
		if i < 0 {
			doc = append(doc, e)
			continue
		}
		doc[i] = e
	}
	return doc
}

// nextVersion is the version a last-writer-wins write made: the row as it
// was (before; nil when the write created it) with the fields the write
// set (set, from setFields, whose last element is updatedDate), numbered
// after it, and recorded at rec or, if that is earlier, when before was:
// the row after the update, as the server computes it ($set replaces
// those fields and keeps the others, $inc and $max).
func (r *Repo[K, P]) nextVersion(vals []any, set bson.D, rowID bson.ObjectID, before bson.Raw, rec time.Time) (bson.D, error) {
	if before == nil {
		doc := make(bson.D, 0, len(vals)+len(set)+5)
		doc = append(doc, bson.E{Key: FieldID, Value: r.conn.ids.next()})
		doc = append(doc, r.s.filter(vals)...)
		doc = append(doc, set...)
		return append(doc, bson.E{Key: FieldCreateDate, Value: set[len(set)-1].Value}, bson.E{Key: FieldRow, Value: rowID},
			bson.E{Key: FieldVersion, Value: int64(1)}, bson.E{Key: FieldRecorded, Value: rec}), nil
	}
	doc, next, rec, err := r.afterRow(before, rec)
	if err != nil {
		return nil, err
	}
	doc = setAll(doc, set)
	return append(doc, bson.E{Key: FieldVersion, Value: next}, bson.E{Key: FieldRecorded, Value: rec}), nil
}

// afterRow starts the version a write made of before: before's fields
// (its _id as _hrow), the next number, and the recorded time (rec, or
// before's if that is later), for the caller to set fields and append
// them.
func (r *Repo[K, P]) afterRow(before bson.Raw, rec time.Time) (bson.D, int64, time.Time, error) {
	doc, err := versionOfRow(r.conn.ids.next(), before, rec)
	if err != nil {
		return nil, 0, rec, err
	}
	n := len(doc)
	prev, prevAt := doc[n-2].Value.(int64), doc[n-1].Value.(time.Time)
	return doc[:n-2], prev + 1, maxTime(rec, prevAt), nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// firstVersion is the version an insert made: the document it inserted
// (from insertDoc, which numbers it 1).
func (r *Repo[K, P]) firstVersion(doc bson.D) bson.D {
	out := make(bson.D, 0, len(doc)+1)
	out = append(out, bson.E{Key: FieldID, Value: r.conn.ids.next()})
	for _, e := range doc {
		if e.Key == FieldID {
			out = append(out, bson.E{Key: FieldRow, Value: e.Value})
			continue
		}
		out = append(out, e)
	}
	return out
}

// removedVersion is the version a Remove made of before (the row it
// removed): the same row, removed, updated at now, numbered after it (its
// payload's own removed flag set too, where the domain has one and the
// payload is a document).
func (r *Repo[K, P]) removedVersion(before bson.Raw, now time.Time, rec time.Time) (bson.D, error) {
	doc, next, rec, err := r.afterRow(before, rec)
	if err != nil {
		return nil, err
	}
	doc = setAll(doc, bson.D{{Key: FieldRemoved, Value: true}, {Key: FieldUpdatedDate, Value: now}})
	if i := slices.IndexFunc(doc, func(e bson.E) bool { return e.Key == r.s.Payload }); r.s.PayloadRemoved && i >= 0 {
		if rv, ok := doc[i].Value.(bson.RawValue); ok && rv.Type == bson.TypeEmbeddedDocument {
			var p bson.D
			if err := rv.Unmarshal(&p); err != nil {
				return nil, err
			}
			doc[i].Value = setAll(p, bson.D{{Key: FieldRemoved, Value: true}})
		}
	}
	return append(doc, bson.E{Key: FieldVersion, Value: next}, bson.E{Key: FieldRecorded, Value: rec}), nil
}

// expired reports whether a version recorded at at is past the domain's
// keep at now: the TTL index removes it, and nothing should record it
// again.
func expired(s *Schema, at, now time.Time) bool {
	return s.History != nil && s.History.Keep > 0 && at.Before(now.Add(-s.History.Keep))
}

// priorVersion is the version before (a row a write replaced) holds, to be
// recorded beside the write's own in case its writer could not.
func (r *Repo[K, P]) priorVersion(before bson.Raw, rec time.Time) (bson.D, error) {
	return versionOfRow(r.conn.ids.next(), before, rec)
}

// recordVersions stores versions in the history collection: one unordered
// bulk of upserts that set fields on insert only, keyed by (key, _hv), so
// that a version recorded already (by its writer, or by the next one) is
// left as it is. It runs past the caller's context (the row is written:
// leaving its version unrecorded would leave a gap until the next write),
// each attempt bounded by OpTimeout, retrying lost races and unanswered
// attempts up to UpsertRetries times. Its error wraps ErrHistoryPending.
func (r *Repo[K, P]) recordVersions(ctx context.Context, versions []bson.D, own []bool) error {
	detached := context.WithoutCancel(ctx)
	chunk := r.conn.WriteChunk()
	for start := 0; start < len(versions); start += chunk {
		end := min(start+chunk, len(versions))
		if err := r.recordChunk(detached, versions[start:end], own[start:end]); err != nil {
			return err
		}
	}
	return nil
}

// recordChunk is recordVersions of at most WriteChunk versions (one bulk
// write at a time where the server needs it: Conn.acquireBulk). own marks
// the versions the writes themselves made (the others are the versions
// before them): one of those found recorded already is read back
// (checkOwnVersion).
func (r *Repo[K, P]) recordChunk(ctx context.Context, versions []bson.D, own []bool) error {
	hist := r.conn.db.Collection(r.s.HistoryCollection())
	models := make([]mongo.WriteModel, len(versions))
	filters := make([]bson.D, len(versions))
	for i, v := range versions {
		filter := make(bson.D, 0, len(r.s.Key)+1)
		for _, e := range v {
			if r.s.KeyIndex(e.Key) >= 0 || e.Key == FieldVersion {
				filter = append(filter, e)
			}
		}
		filters[i] = filter
		models[i] = mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(bson.D{{Key: "$setOnInsert", Value: v}}).SetUpsert(true)
	}
	// found checks the own versions the server did not insert (res: the
	// bulk's result; dup: those refused as duplicates).
	found := func(res *mongo.BulkWriteResult, dup map[int]race) error {
		// By the _id each version carries, never by operation index: a
		// server whose bulk results are inexact (FerretDB v1) reports
		// every upsert at index 0.
		upserted := make(map[bson.ObjectID]bool, len(res.UpsertedIDs))
		for _, id := range res.UpsertedIDs {
			if oid, ok := id.(bson.ObjectID); ok {
				upserted[oid] = true
			}
		}
		for i, v := range versions {
			id, _ := v[0].Value.(bson.ObjectID) // every version's first field is its _id
			inserted := upserted[id]
			if _, refused := dup[i]; own[i] && (!inserted || refused) {
				if err := r.checkOwnVersion(ctx, hist, filters[i], versions[i]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var last error
	for attempt := 0; attempt <= r.conn.cfg.UpsertRetries; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt-1); err != nil {
				break
			}
		}
		release, err := r.conn.acquireBulk(ctx)
		if err != nil {
			last = err
			break
		}
		callCtx, cancel := r.conn.bound(ctx, len(models))
		res, err := hist.BulkWrite(callCtx, models, options.BulkWrite().SetOrdered(false))
		cancel()
		release()
		if err == nil {
			if res == nil || int(res.MatchedCount+res.UpsertedCount) != len(models) {
				// Not trusted: each upsert either matched its version or
				// inserted it; anything else is sent again.
				last = errors.New("the server's count of versions stored does not add up")
				continue
			}
			return found(res, nil)
		}
		var bwe mongo.BulkWriteException
		if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
			if onlyDuplicates(bwe, len(models), res) {
				// A racing writer recorded some of the same versions first.
				failed, _ := raceIndexes(bwe.WriteErrors, len(models))
				return found(res, failed)
			}
			if failed, indexed := raceIndexes(bwe.WriteErrors, len(models)); indexed && allRaces(failed) {
				// Racing upserts of one version (DocumentDB's deadlocks):
				// the whole bulk again, each upsert being idempotent.
				last = err
				continue
			}
		}
		last = err
		if isRefusal(err) && lostRace(err) == noRace {
			break
		}
	}
	return errorf(ErrHistoryPending, "the row is written but its version is not recorded in %s (%v); the key's next write or `persistgen-ops audit -repair` records it", r.s.HistoryCollection(), r.conn.secrets.scrub(last))
}

// checkOwnVersion is called when a write's own version was found recorded
// already. On a server whose updates of one document are atomic, only the
// key's next writer records it first (the version before its own), with
// the same content. Another content means the server gave two writes of
// the key one number: it applied them as if neither saw the other (FerretDB
// v1 does), and this write's version is lost. One read, only then.
func (r *Repo[K, P]) checkOwnVersion(ctx context.Context, hist *mongo.Collection, filter bson.D, mine bson.D) error {
	callCtx, cancel := r.conn.bound(ctx, 0)
	defer cancel()
	stored, err := hist.FindOne(callCtx, filter).Raw()
	if err != nil {
		return errorf(ErrHistoryPending, "the version could not be read back (%v); `persistgen-ops audit` checks it", r.conn.secrets.scrub(err))
	}
	for _, e := range mine {
		if e.Key == FieldID || e.Key == FieldRow {
			continue
		}
		want := rawOf(e.Value)
		if rv, ok := e.Value.(bson.RawValue); ok {
			want = rv
		}
		got, err := stored.LookupErr(e.Key)
		if err != nil || got.Type != want.Type || !bytes.Equal(got.Value, want.Value) {
			n, _ := rowVersion(stored, time.Time{})
			return errorf(ErrHistoryPending, "this write is version %d of the key, and the history already records another write as that version (field %s differs). Either the server applied two writes of one document as if neither saw the other (FerretDB v1: keep one writer per key there, or use a server whose single-document updates are atomic), or another program replaced the row whole and dropped its version counter %s (keep such writers off domains with history)", n, e.Key, FieldVersion)
		}
	}
	return nil
}

// onlyDuplicates reports whether every failed upsert of a bulk of n lost a
// race to an insert of the same version, and the rest are accounted for.
func onlyDuplicates(bwe mongo.BulkWriteException, n int, res *mongo.BulkWriteResult) bool {
	failed, indexed := raceIndexes(bwe.WriteErrors, n)
	if !indexed {
		return false
	}
	for _, k := range failed {
		if k != raceDuplicate {
			return false
		}
	}
	return res != nil && int(res.MatchedCount+res.UpsertedCount)+len(failed) == n
}

// seenThrough is the context of a write's MongoDB calls on a domain with
// history: once sent, a write is seen through to its answer (each call
// bounded by OpTimeout) even if the caller gives up, so that its outcome
// is known and its version recorded. Cancelled midway, its row could be
// written with nobody to record its version; two such writes in a row
// would leave a version that no later write can recover. Without an
// OpTimeout (negative) the caller's context stays the only bound.
//
// A write whose caller had given up before it was sent (or whose cache
// wait ended with the caller: cw.Unsent) is not sent at all: the caller's
// context goes to the driver, which sends nothing, as for a domain
// without history.
func (r *Repo[K, P]) seenThrough(ctx context.Context, cw cache.Write) context.Context {
	if r.s.History == nil || r.conn.cfg.OpTimeout < 0 || ctx.Err() != nil || cw.Unsent() {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// restamp sets the recorded time of an insert's document (insertDoc's
// _hr) to rec: the time the write is sent.
func restamp(doc bson.D, rec time.Time) {
	for i := range doc {
		if doc[i].Key == FieldRecorded {
			doc[i].Value = rec
		}
	}
}

// historyOnly refuses a history read on a domain without history.
func (r *Repo[K, P]) historyOnly() error {
	if r.s.History == nil {
		return errorf(ErrInvalidArgument, "%s keeps no history: give it `history: {keep: ...}` in the manifest (Schema.History)", r.s.Domain)
	}
	return nil
}

// knownAtValue is a known-at bound as recorded times are stored.
func knownAtValue(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// GetAt reads k's row as a reader would have got it at knownAt with an
// as-of read at validAt: the last version of k recorded at or before
// knownAt, if its when is at or before validAt (a zero validAt: whatever
// its when; domains without when take only the zero validAt). A version
// that is a removal, or none, is ErrNotFound. One round trip, to the
// history collection.
func (r *Repo[K, P]) GetAt(ctx context.Context, k K, validAt, knownAt time.Time) (ret Record[K, P], retErr error) {
	ctx, done := r.observe(ctx, opGetAt)
	defer func() { done(retErr) }()
	var zero Record[K, P]
	ctx, vals, err := r.begin(ctx, opGetAt, &k)
	if err != nil {
		return zero, err
	}
	if err := r.historyOnly(); err != nil {
		return zero, r.argErr(opGetAt, vals, err)
	}
	if !validAt.IsZero() && !r.s.HasWhen {
		return zero, r.argErr(opGetAt, vals, errorf(ErrInvalidArgument, "%s has no when column: pass the zero validAt", r.s.Domain))
	}
	if knownAt.IsZero() {
		return zero, r.argErr(opGetAt, vals, errorf(ErrInvalidArgument, "knownAt is zero: pass the time whose knowledge to read (time.Now() for the latest)"))
	}
	filter := append(r.s.filter(vals), bson.E{Key: FieldRecorded, Value: bson.D{{Key: "$lte", Value: knownAtValue(knownAt)}}})
	callCtx, cancel := r.conn.bound(ctx, 0)
	defer cancel()
	raw, err := r.conn.db.Collection(r.s.HistoryCollection()).FindOne(callCtx, filter,
		options.FindOne().SetSort(bson.D{{Key: FieldVersion, Value: -1}})).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return zero, r.opErr(ctx, opGetAt, vals, ErrNotFound)
	}
	if err != nil {
		return zero, r.opErr(ctx, opGetAt, vals, err)
	}
	v, err := r.decodeVersion(raw)
	if err != nil {
		return zero, r.argErr(opGetAt, vals, err)
	}
	if v.Removed || !validAt.IsZero() && v.When.After(time.UnixMilli(int64(asOfValue(validAt)))) {
		return zero, r.opErr(ctx, opGetAt, vals, ErrNotFound)
	}
	return v.Record, nil
}

// decodeVersion decodes a stored version.
func (r *Repo[K, P]) decodeVersion(raw bson.Raw) (Version[K, P], error) {
	rec, err := r.decode(raw)
	if err != nil {
		return Version[K, P]{}, err
	}
	rec.ID, _ = raw.Lookup(FieldRow).ObjectIDOK()
	n, at := rowVersion(raw, time.Time{})
	return Version[K, P]{Record: rec, Number: n, Recorded: at}, nil
}

// History streams k's versions newest first, within o's bounds: removals
// included (Removed), as each write left the row. One round trip for a
// bounded number (Limit), otherwise batches of ListBatch.
func (r *Repo[K, P]) History(ctx context.Context, k K, o HistoryOptions) iter.Seq2[Version[K, P], error] {
	return func(yield func(Version[K, P], error) bool) {
		var zero Version[K, P]
		ctx, done := r.observe(ctx, opHistory)
		var histErr error
		defer func() { done(histErr) }()
		fail := func(err error) {
			histErr = err
			yield(zero, err)
		}
		ctx, vals, err := r.begin(ctx, opHistory, &k)
		if err != nil {
			fail(err)
			return
		}
		if err := r.historyOnly(); err != nil {
			fail(r.argErr(opHistory, vals, err))
			return
		}
		if o.Limit < 0 {
			fail(r.argErr(opHistory, vals, errorf(ErrInvalidArgument, "limit %d is negative", o.Limit)))
			return
		}
		filter := r.s.filter(vals)
		bound := bson.D{}
		if !o.KnownAt.IsZero() {
			bound = append(bound, bson.E{Key: "$lte", Value: knownAtValue(o.KnownAt)})
		}
		if !o.Since.IsZero() {
			bound = append(bound, bson.E{Key: "$gte", Value: knownAtValue(o.Since)})
		}
		if len(bound) > 0 {
			filter = append(filter, bson.E{Key: FieldRecorded, Value: bound})
		}
		fo := options.Find().SetSort(bson.D{{Key: FieldVersion, Value: -1}}).SetBatchSize(int32(r.conn.cfg.ListBatch))
		if o.Limit > 0 {
			fo.SetLimit(int64(o.Limit)).SetBatchSize(int32(min(o.Limit+1, maxBatch)))
		}
		err = r.eachVersion(ctx, filter, fo, func(raw bson.Raw) bool {
			v, err := r.decodeVersion(raw)
			if err != nil {
				fail(r.argErr(opHistory, vals, err))
				return false
			}
			return yield(v, nil)
		})
		if err != nil {
			fail(r.opErr(ctx, opHistory, vals, err))
		}
	}
}

// eachVersion runs a find on the history collection (Conn.eachDoc).
func (r *Repo[K, P]) eachVersion(ctx context.Context, filter bson.D, fo *options.FindOptionsBuilder, fn func(bson.Raw) bool) error {
	return r.conn.eachDoc(ctx, r.conn.db.Collection(r.s.HistoryCollection()), filter, fo, fn)
}

// listAt is List with o.KnownAt: the rows as a reader would have listed
// them at KnownAt. One find on the history collection walks the versions
// under the prefix recorded by then, newest first per key (the unique
// index's order); the first of each key is its row at KnownAt, which the
// list's other conditions (as of, removed, range) are then applied to, and
// the rows are sorted and limited in memory.
func (r *Repo[K, P]) listAt(ctx context.Context, o ListOptions, yield func(Record[K, P], error) bool) error {
	if err := r.historyOnly(); err != nil {
		return err
	}
	if o.Limit < 0 {
		return errorf(ErrInvalidArgument, "limit %d is negative", o.Limit)
	}
	filter, err := r.prefixFilter(o.Prefix)
	if err != nil {
		return err
	}
	var keyRange *Range
	if o.Range != nil {
		if !r.sortable(o.Range.Field) {
			return errorf(ErrInvalidArgument, "range field %q is not a key field, createDate, updatedDate or when", o.Range.Field)
		}
		keyRange = o.Range
	}
	if !o.AsOf.IsZero() && !r.s.HasWhen {
		return errorf(ErrInvalidArgument, "%s has no when column; AsOf does not apply", r.s.Domain)
	}
	for i, s := range o.Sort {
		if !r.sortable(s.Field) {
			return errorf(ErrInvalidArgument, "sort field %q is not a key field, createDate, updatedDate, when or _id", s.Field)
		}
		for _, earlier := range o.Sort[:i] {
			if earlier.Field == s.Field {
				return errorf(ErrInvalidArgument, "sort field %q is listed twice", s.Field)
			}
		}
	}
	var bounds [2]any
	if keyRange != nil {
		for j, v := range []any{keyRange.From, keyRange.To} {
			if v != nil {
				if bounds[j], err = r.rangeValue(keyRange.Field, v); err != nil {
					return err
				}
			}
		}
	}
	filter = append(filter, bson.E{Key: FieldRecorded, Value: bson.D{{Key: "$lte", Value: knownAtValue(o.KnownAt)}}})
	sortSpec := bson.D{}
	for _, k := range r.s.Key {
		sortSpec = append(sortSpec, bson.E{Key: k.Name, Value: 1})
	}
	sortSpec = append(sortSpec, bson.E{Key: FieldVersion, Value: -1})
	fo := options.Find().SetSort(sortSpec).SetBatchSize(int32(r.conn.cfg.ListBatch))
	var rows []bson.Raw
	last := ""
	err = r.eachVersion(ctx, filter, fo, func(raw bson.Raw) bool {
		canon := schema.Canon(r.docKeyValues(raw))
		if canon == last {
			return true // an older version of the key
		}
		last = canon
		if removed, _ := raw.Lookup(FieldRemoved).BooleanOK(); removed && !o.IncludeRemoved {
			return true
		}
		// As a query's $lte, $gte and $lt: a missing or null field
		// matches no bound.
		if w := raw.Lookup(FieldWhen); !o.AsOf.IsZero() && (typeRank(w.Type) == 0 || compareRaw(w, rawOf(asOfValue(o.AsOf))) > 0) {
			return true
		}
		if keyRange != nil && (bounds[0] != nil || bounds[1] != nil) {
			v := raw.Lookup(versionField(keyRange.Field))
			if typeRank(v.Type) == 0 || bounds[0] != nil && compareRaw(v, rawOf(bounds[0])) < 0 || bounds[1] != nil && compareRaw(v, rawOf(bounds[1])) >= 0 {
				return true
			}
		}
		rows = append(rows, append(bson.Raw(nil), raw...))
		return true
	})
	if err != nil {
		return err
	}
	if len(o.Sort) > 0 {
		slices.SortStableFunc(rows, func(a, b bson.Raw) int {
			for _, s := range o.Sort {
				c := compareRaw(a.Lookup(versionField(s.Field)), b.Lookup(versionField(s.Field)))
				if s.Desc {
					c = -c
				}
				if c != 0 {
					return c
				}
			}
			c := compareRaw(a.Lookup(FieldRow), b.Lookup(FieldRow))
			if o.Sort[0].Desc {
				c = -c
			}
			return c
		})
	}
	if o.Limit > 0 && len(rows) > o.Limit {
		rows = rows[:o.Limit]
	}
	for _, raw := range rows {
		v, err := r.decodeVersion(raw)
		if !yield(v.Record, err) || err != nil {
			return nil
		}
	}
	return nil
}

// prefixFilter is the filter of a list's prefix.
func (r *Repo[K, P]) prefixFilter(prefix []any) (bson.D, error) {
	if len(prefix) > len(r.s.Key) {
		return nil, errorf(ErrInvalidKey, "prefix has %d values, the key has %d fields (%s)", len(prefix), len(r.s.Key), r.s.KeyNames())
	}
	filter := bson.D{}
	for i, v := range prefix {
		nv, err := r.s.Part(i, v)
		if err != nil {
			return nil, errorf(ErrInvalidKey, "prefix: %s", schema.Message(err))
		}
		filter = append(filter, bson.E{Key: r.s.Key[i].Name, Value: nv})
	}
	return filter, nil
}

// RepairHistory records the version of every row of s whose version the
// history collection lacks: a row written by a process that died (or lost
// its connection) between its row and its version, and whose key has not
// been written since; and a row from before history began, or written by
// another program, as version 0. It returns how many rows it read and how
// many versions it recorded. Round trips: one find over the collection
// (in batches) and one bulk write per batch.
func (c *Conn) RepairHistory(ctx context.Context, s *Schema) (rows, recorded int, err error) {
	return c.auditHistory(ctx, s, true)
}

// MissingVersions counts the rows of s whose version the history
// collection lacks (what RepairHistory would record), changing nothing:
// one find over the collection and one count per batch.
func (c *Conn) MissingVersions(ctx context.Context, s *Schema) (rows, missing int, err error) {
	return c.auditHistory(ctx, s, false)
}

func (c *Conn) auditHistory(ctx context.Context, s *Schema, repair bool) (rows, found int, err error) {
	op := "MissingVersions"
	if repair {
		op = "RepairHistory"
	}
	if err := c.Ready(ctx); err != nil {
		return 0, 0, err
	}
	if s.History == nil {
		return 0, 0, &OpError{Op: op, Domain: s.Domain, Err: errorf(ErrInvalidArgument, "%s keeps no history", s.Domain)}
	}
	cs, err := compile(s)
	if err != nil {
		return 0, 0, &OpError{Op: op, Domain: s.Domain, Err: err}
	}
	fail := func(err error) (int, int, error) {
		return rows, found, c.secrets.scrubOp(&OpError{Op: op, Domain: s.Domain, Err: c.classify(ctx, err)})
	}
	hist := c.db.Collection(s.HistoryCollection())
	// A row without a version is recorded as seen now at the latest.
	seen := c.recordedTime()
	callCtx, cancel := c.bound(ctx, 0)
	defer func() { cancel() }()
	cur, err := c.db.Collection(s.Collection).Find(callCtx, bson.D{}, options.Find().SetBatchSize(int32(c.cfg.ListBatch)))
	if err != nil {
		return fail(err)
	}
	defer closeCursor(ctx, cur)
	var filters []bson.D
	var models []mongo.WriteModel
	flush := func() error {
		if len(filters) == 0 {
			return nil
		}
		wctx, cancel := c.bound(ctx, len(filters))
		defer cancel()
		defer func() { filters, models = filters[:0], models[:0] }()
		if !repair {
			n, err := hist.CountDocuments(wctx, bson.D{{Key: "$or", Value: filters}})
			if err != nil {
				return err
			}
			if int(n) > len(filters) {
				return fmt.Errorf("the server counted %d versions for %d rows", n, len(filters))
			}
			found += len(filters) - int(n)
			return nil
		}
		res, err := hist.BulkWrite(wctx, models, options.BulkWrite().SetOrdered(false))
		var bwe mongo.BulkWriteException
		if err != nil && !(errors.As(err, &bwe) && bwe.WriteConcernError == nil && onlyDuplicates(bwe, len(models), res)) {
			return err
		}
		if res == nil || err == nil && int(res.MatchedCount+res.UpsertedCount) != len(models) {
			return fmt.Errorf("the server reported %d of %d versions checked", res.MatchedCount+res.UpsertedCount, len(models))
		}
		found += int(res.UpsertedCount)
		return nil
	}
	for {
		if cur.RemainingBatchLength() == 0 && cur.ID() != 0 {
			if err := flush(); err != nil {
				return fail(err)
			}
			cancel()
			callCtx, cancel = c.bound(ctx, 0)
		}
		if !cur.Next(callCtx) {
			break
		}
		rows++
		n, at := rowVersion(cur.Current, seen)
		if expired(s, at, seen) {
			continue // its version is past keep: the TTL index removed it, as it should
		}
		filter := bson.D{}
		for _, k := range cs.Key {
			filter = append(filter, bson.E{Key: k.Name, Value: cur.Current.Lookup(k.Name)})
		}
		filter = append(filter, bson.E{Key: FieldVersion, Value: n})
		filters = append(filters, filter)
		if repair {
			v, err := versionOfRow(c.ids.next(), cur.Current, seen)
			if err != nil {
				return fail(err)
			}
			models = append(models, mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(bson.D{{Key: "$setOnInsert", Value: v}}).SetUpsert(true))
		}
	}
	if err := cur.Err(); err != nil {
		return fail(err)
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	return rows, found, nil
}

// writeEach is PutMany and InsertMany on a domain with history: each
// representative's row is written alone, by a findOneAndUpdate that
// returns the row as it was (PutMany's upsert counts the version up), and
// then every version made, with the versions the rows held before, goes
// in one bulk write. Round trips: one per distinct key, plus one.
func (b *batch[K, P]) writeEach(ctx context.Context, update func(i int, rec time.Time) bson.D, version func(i int, before bson.Raw, id bson.ObjectID, rec time.Time) (bson.D, error)) {
	var versions []bson.D
	var own []bool
	opts := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.Before)
	for n, i := range b.reps {
		if err := ctx.Err(); err != nil || b.cw.Unsent() {
			// Given up between items: the rest are not sent.
			b.stop(b.reps[n:], NotStored, context.Cause(ctx))
			break
		}
		rec := b.r.conn.recordedTime() // as this item is sent
		id, before, err := b.r.upsertOne(b.r.seenThrough(ctx, b.cw), b.r.s.filter(b.vals[i]), update(i, rec), opts)
		switch {
		case err == nil && b.insert && before != nil:
			b.done(i, Kept)
		case err == nil:
			if before == nil {
				id = b.ids[i]
				b.set = append(b.set, cache.Identity{Key: b.rks[i], ID: id})
			}
			b.done(i, Stored)
			v, verr := version(i, before, id, rec)
			if verr != nil {
				b.histErr = errorf(ErrHistoryPending, "a row before the write does not decode (%v)", verr)
				continue
			}
			versions, own = append(versions, v), append(own, true)
			if before != nil {
				prior, perr := b.r.priorVersion(before, rec)
				if perr != nil {
					b.histErr = errorf(ErrHistoryPending, "a row before the write does not decode (%v)", perr)
					continue
				}
				if !expired(b.r.s.Schema, prior[len(prior)-1].Value.(time.Time), rec) {
					versions, own = append(versions, prior), append(own, false)
				}
			}
		case isRefusal(err) && lostRace(err) == noRace:
			b.refuse(i, err)
		default:
			b.done(i, Unknown)
			b.stop(b.reps[n+1:], NotStored, err)
			if herr := b.r.recordVersions(ctx, versions, own); herr != nil {
				b.histErr = herr
			}
			return
		}
	}
	if err := b.r.recordVersions(ctx, versions, own); err != nil {
		b.histErr = err
	}
}

// versionField is where a version keeps a row's field: a row's _id is
// its version's _hrow.
func versionField(f string) string {
	if f == FieldID {
		return FieldRow
	}
	return f
}

// rawOf encodes a Go value as a stored value, for compareRaw.
func rawOf(v any) bson.RawValue {
	t, data, err := bson.MarshalValue(v)
	if err != nil {
		return bson.RawValue{}
	}
	return bson.RawValue{Type: t, Value: data}
}

// compareRaw orders two stored values as a query's sort does for the
// types a key, a when, a date or an _id take: missing and null first, then
// numbers, strings, ObjectIDs, booleans, dates (MongoDB's order of types).
func compareRaw(a, b bson.RawValue) int {
	ra, rb := typeRank(a.Type), typeRank(b.Type)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch ra {
	case 1:
		if isInteger(a.Type) && isInteger(b.Type) {
			ia, _ := a.AsInt64OK()
			ib, _ := b.AsInt64OK()
			return cmp.Compare(ia, ib)
		}
		fa, _ := a.AsFloat64OK()
		fb, _ := b.AsFloat64OK()
		return cmp.Compare(fa, fb)
	case 2:
		return cmp.Compare(a.StringValue(), b.StringValue())
	case 3:
		oa, ob := a.ObjectID(), b.ObjectID()
		return bytes.Compare(oa[:], ob[:])
	case 4:
		return cmp.Compare(boolInt(a.Boolean()), boolInt(b.Boolean()))
	case 5:
		return cmp.Compare(a.DateTime(), b.DateTime())
	}
	return 0
}

func isInteger(t bson.Type) bool { return t == bson.TypeInt32 || t == bson.TypeInt64 }

func typeRank(t bson.Type) int {
	switch t {
	case bson.TypeDouble, bson.TypeInt32, bson.TypeInt64, bson.TypeDecimal128:
		return 1
	case bson.TypeString:
		return 2
	case bson.TypeObjectID:
		return 3
	case bson.TypeBoolean:
		return 4
	case bson.TypeDateTime:
		return 5
	}
	return 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// VersionGap is a hole in one key's version numbers: From to To (both
// included) are missing between two recorded versions.
type VersionGap struct {
	Key      string // the key's parts joined with "/"
	From, To int64
}

// VersionGaps walks s's history collection in its unique index's order and
// returns the holes in each key's numbers (at most limit; 0: all), and
// how many versions it read. A hole is what two faulted writes in a row on
// one key leave (docs/history.md): nothing can fill it, since no copy of
// the row is left; it is reported, not repaired. Missing versions below a
// key's oldest recorded one are not holes: keep's TTL index removes the
// oldest versions first.
func (c *Conn) VersionGaps(ctx context.Context, s *Schema, limit int) (gaps []VersionGap, versions int, err error) {
	if err := c.Ready(ctx); err != nil {
		return nil, 0, err
	}
	if s.History == nil {
		return nil, 0, &OpError{Op: "VersionGaps", Domain: s.Domain, Err: errorf(ErrInvalidArgument, "%s keeps no history", s.Domain)}
	}
	sortSpec, proj := bson.D{}, bson.D{{Key: FieldVersion, Value: 1}}
	for _, k := range s.Key {
		sortSpec = append(sortSpec, bson.E{Key: k.Name, Value: 1})
		proj = append(proj, bson.E{Key: k.Name, Value: 1})
	}
	sortSpec = append(sortSpec, bson.E{Key: FieldVersion, Value: -1})
	fo := options.Find().SetSort(sortSpec).SetProjection(proj).SetBatchSize(int32(c.cfg.ListBatch))
	last, prev := "", int64(0)
	err = c.eachDoc(ctx, c.db.Collection(s.HistoryCollection()), bson.D{}, fo, func(raw bson.Raw) bool {
		versions++
		parts := make([]string, len(s.Key))
		for i, k := range s.Key {
			v := raw.Lookup(k.Name)
			if str, ok := v.StringValueOK(); ok {
				parts[i] = str
			} else {
				parts[i] = v.String()
			}
		}
		key := strings.Join(parts, "/")
		n, _ := raw.Lookup(FieldVersion).AsInt64OK()
		if key == last && n < prev-1 {
			gaps = append(gaps, VersionGap{Key: key, From: n + 1, To: prev - 1})
		}
		last, prev = key, n
		return limit == 0 || len(gaps) < limit
	})
	if err != nil {
		return gaps, versions, c.secrets.scrubOp(&OpError{Op: "VersionGaps", Domain: s.Domain, Err: c.classify(ctx, err)})
	}
	return gaps, versions, nil
}
