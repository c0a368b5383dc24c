package runtime

import (
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/schema"
)

// How a row is stored: the fields of a write, the encoding of its payload
// and of its times, and the decoding of a stored document into a Record.

// MaxPayloadBytes is the largest encoded payload a write accepts: MongoDB's
// 16 MiB document limit less room for the key and the bookkeeping fields.
const MaxPayloadBytes = 16*1024*1024 - 64*1024

func (r *Repo[K, P]) now() time.Time { return r.conn.cfg.Now().UTC().Truncate(time.Millisecond) }

// maxWhenMs bounds a when: what a JavaScript Date (and so backtest-kit) can
// hold, ±8.64e15 ms (about 275,000 years either side of 1970).
const maxWhenMs = 8_640_000_000_000_000

// whenValue is a when as stored: epoch milliseconds in a BSON double, the
// type upstream's JavaScript numbers have, rounded up to the millisecond, so
// that a row is never stored as earlier than it was written. As-of reads
// round their bound down (asOfValue): a row becomes visible at the first
// whole millisecond at or after its when, never before it.
func whenValue(t time.Time) (float64, error) {
	if t.Before(time.UnixMilli(-maxWhenMs)) || t.After(time.UnixMilli(maxWhenMs)) {
		return 0, errorf(ErrInvalidArgument, "when %s is outside what a JavaScript Date can hold (±8.64e15 ms around 1970); pass a simulation time in that range", t.UTC().Format(time.RFC3339))
	}
	ms := t.UnixMilli() // rounded down, also before 1970
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return float64(ms), nil
}

// asOfValue is the bound of an as-of read: t rounded down to the
// millisecond, and clamped to the range of stored whens (beyond it, every
// row or none is visible; nothing wraps around).
func asOfValue(t time.Time) float64 {
	switch {
	case t.After(time.UnixMilli(maxWhenMs)):
		return maxWhenMs
	case t.Before(time.UnixMilli(-maxWhenMs)):
		return -maxWhenMs - 1
	}
	return float64(t.UnixMilli())
}

func (r *Repo[K, P]) checkWhen(when time.Time) error {
	switch {
	case r.s.HasWhen && when.IsZero():
		return errorf(ErrInvalidArgument, "%s records the simulation time of each write: pass a non-zero when", r.s.Domain)
	case !r.s.HasWhen && !when.IsZero():
		return errorf(ErrInvalidArgument, "%s has no when column: pass the zero time", r.s.Domain)
	}
	return nil
}

// payloadFields encodes p once, checks its size, and returns the fields to
// store: {payload: p} or, for a top-level payload, p's own fields except
// _id, the key fields and the bookkeeping fields.
func (r *Repo[K, P]) payloadFields(p P) (bson.D, error) {
	var v any = p
	if r.enc != nil {
		v = r.enc(p, r.conn.TuplesAsDocuments())
	}
	var t bson.Type
	var data []byte
	var err error
	if rv := reflect.ValueOf(v); !rv.IsValid() || rv.Kind() == reflect.Pointer && rv.IsNil() {
		// A nil pointer is null. (The driver would call a value receiver's
		// MarshalBSON through it.)
		t = bson.TypeNull
	} else if t, data, err = bson.MarshalValue(v); err != nil {
		return nil, errorf(ErrInvalidArgument, "payload does not encode to BSON: %v", err)
	}
	if len(data) > MaxPayloadBytes {
		return nil, errorf(ErrInvalidArgument, "payload is %d bytes encoded; a document is limited to 16 MiB, so keep a payload under %d bytes (split it across keys)", len(data), MaxPayloadBytes)
	}
	if err := r.conn.Capabilities().unstorable(t, data); err != nil {
		return nil, err
	}
	if r.s.Payload != "" {
		return bson.D{{Key: r.s.Payload, Value: bson.RawValue{Type: t, Value: data}}}, nil
	}
	if t != bson.TypeEmbeddedDocument {
		return nil, errorf(ErrInvalidArgument, "%s stores its payload at the top level, so the payload must encode to a document, not %s", r.s.Domain, t)
	}
	elems, err := bson.Raw(data).Elements()
	if err != nil {
		return nil, errorf(ErrInvalidArgument, "payload: %v", err)
	}
	out := make(bson.D, 0, len(elems))
	for _, e := range elems {
		name := e.Key()
		if r.s.KeyIndex(name) >= 0 || schema.IsReserved(name) {
			continue
		}
		out = append(out, bson.E{Key: name, Value: e.Value()})
	}
	return out, nil
}

// setFields is the $set of a last-writer-wins write; its last element is
// always updatedDate (Put reuses its value for createDate).
func (r *Repo[K, P]) setFields(p P, when time.Time) (bson.D, error) {
	if err := r.checkWhen(when); err != nil {
		return nil, err
	}
	set, err := r.payloadFields(p)
	if err != nil {
		return nil, err
	}
	if r.s.HasWhen {
		w, err := whenValue(when)
		if err != nil {
			return nil, err
		}
		set = append(set, bson.E{Key: FieldWhen, Value: w})
	}
	if r.s.HasRemoved {
		set = append(set, bson.E{Key: FieldRemoved, Value: false})
	}
	return append(set, bson.E{Key: FieldUpdatedDate, Value: r.now()}), nil
}

// upsertUpdate is the update of a last-writer-wins write: set (from
// setFields, whose last element is updatedDate) on every write; the
// client-made id and createDate (equal to that updatedDate) only on insert.
func upsertUpdate(set bson.D, id bson.ObjectID) bson.D {
	onInsert := bson.D{{Key: FieldID, Value: id}, {Key: FieldCreateDate, Value: set[len(set)-1].Value}}
	return bson.D{{Key: "$set", Value: set}, {Key: "$setOnInsert", Value: onInsert}}
}

// insertDoc is a whole new document under the client-made id.
func (r *Repo[K, P]) insertDoc(vals []any, p P, when time.Time, id bson.ObjectID) (bson.D, error) {
	set, err := r.setFields(p, when)
	if err == nil {
		err = r.fits(vals, set)
	}
	if err != nil {
		return nil, err
	}
	now := set[len(set)-1].Value
	doc := make(bson.D, 0, 2+len(vals)+len(set))
	doc = append(doc, bson.E{Key: FieldID, Value: id})
	doc = append(doc, r.s.filter(vals)...)
	doc = append(doc, set...)
	doc = append(doc, bson.E{Key: FieldCreateDate, Value: now})
	if r.s.History != nil {
		// The first version of the key (history.go).
		doc = append(doc, bson.E{Key: FieldVersion, Value: int64(1)}, bson.E{Key: FieldRecorded, Value: r.conn.recordedTime()})
	}
	return doc, nil
}

// decode turns a stored document into a Record.
func (r *Repo[K, P]) decode(raw bson.Raw) (Record[K, P], error) {
	var rec Record[K, P]
	rec.ID, _ = raw.Lookup(FieldID).ObjectIDOK()
	var err error
	if kd, ok := any(&rec.Key).(KeyDecoder); ok {
		err = kd.DecodeKey(raw)
	} else {
		err = bson.Unmarshal(raw, &rec.Key)
	}
	if err != nil {
		return rec, errorf(ErrInvalidArgument, "stored key of %s does not decode: %v", rec.ID.Hex(), err)
	}
	if r.s.Payload == "" {
		if err := bson.Unmarshal(raw, &rec.Payload); err != nil {
			return rec, errorf(ErrInvalidArgument, "stored document %s does not decode into the payload type: %v", rec.ID.Hex(), err)
		}
	} else if v, err := raw.LookupErr(r.s.Payload); err == nil && v.Type != bson.TypeNull && v.Type != bson.TypeUndefined {
		if err := v.Unmarshal(&rec.Payload); err != nil {
			return rec, errorf(ErrInvalidArgument, "stored payload of %s does not decode into the payload type: %v", rec.ID.Hex(), err)
		}
	}
	if v, err := raw.LookupErr(FieldWhen); err == nil {
		rec.When = timeOf(v)
	}
	if v, err := raw.LookupErr(FieldRemoved); err == nil {
		rec.Removed, _ = v.BooleanOK()
	}
	if v, err := raw.LookupErr(FieldCreateDate); err == nil {
		rec.CreateDate = timeOf(v)
	}
	if v, err := raw.LookupErr(FieldUpdatedDate); err == nil {
		rec.UpdatedDate = timeOf(v)
	}
	return rec, nil
}

// timeOf reads a time stored as a date or as epoch milliseconds of any
// numeric type.
func timeOf(v bson.RawValue) time.Time {
	switch v.Type {
	case bson.TypeDateTime:
		return v.Time().UTC()
	case bson.TypeDouble:
		return time.UnixMilli(int64(v.Double())).UTC()
	case bson.TypeInt64:
		return time.UnixMilli(v.Int64()).UTC()
	case bson.TypeInt32:
		return time.UnixMilli(int64(v.Int32())).UTC()
	}
	return time.Time{}
}

// whenBound is a time bound on when for a range: t rounded up to the
// millisecond, clamped like asOfValue.
func whenBound(t time.Time) float64 {
	if w, err := whenValue(t); err == nil {
		return w
	}
	return asOfValue(t)
}

// maxDocumentBytes is MongoDB's document limit less room for what fits
// does not count (_id, createDate, the field names' framing).
const maxDocumentBytes = 16*1024*1024 - 1024

// fits refuses, before anything is sent, a write whose key and fields
// together exceed what one document holds: a long key part beside a
// payload under MaxPayloadBytes would otherwise be sent and refused by
// the server.
func (r *Repo[K, P]) fits(vals []any, set bson.D) error {
	keyBytes := 0
	for i, v := range vals {
		keyBytes += len(r.s.Key[i].Name) + 2
		if s, ok := v.(string); ok {
			keyBytes += len(s) + 5
		} else {
			keyBytes += 8
		}
	}
	fields := 0
	for _, e := range set {
		fields += len(e.Key) + 2
		if rv, ok := e.Value.(bson.RawValue); ok {
			fields += len(rv.Value)
		} else {
			fields += 16
		}
	}
	if keyBytes+fields > maxDocumentBytes {
		return errorf(ErrInvalidArgument, "the key (%d bytes) and the row's fields (%d bytes) make a document over MongoDB's 16 MiB: shorten the key or the payload", keyBytes, fields)
	}
	return nil
}

// clipKey shortens a key for an error's text: a key part may be long, and
// the error need not repeat it whole.
func clipKey(k string) string {
	const most = 200
	if len(k) <= most {
		return k
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(k[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", k[:cut], len(k))
}
