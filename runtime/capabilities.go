package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/schema"
)

// ProbeCollection is the collection in which a Conn's first Ready probes
// what the server can store. The probe writes at most five documents with
// fresh ObjectIDs and deletes them again; the (empty) collection stays. A
// deployment that does not grant insert and remove on it sets
// Config.Capabilities instead.
const ProbeCollection = schema.ProbeCollection

// Capabilities is what the MongoDB-wire server was found to do, probed once
// when a Conn first becomes ready (Conn.Capabilities). The runtime branches
// on these, never on the server's name: a real MongoDB has all of them,
// FerretDB v2 with DocumentDB too, FerretDB v1 none.
type Capabilities struct {
	// NestedArrays: the server stores arrays inside arrays, as upstream's
	// risk pairs ([key, position]) are. Without it tuples are written as
	// {key, position} documents (Config.TupleForm).
	NestedArrays bool
	// Infinity: the server stores +Inf and -Inf doubles (a signal's
	// minuteEstimatedTime without a time limit).
	Infinity bool
	// NaN: the server stores NaN doubles. It is probed only where ±Inf is
	// stored: FerretDB v1 drops the connection on a NaN.
	NaN bool
	// NulInStrings: the server stores strings that contain a NUL byte
	// (FerretDB v1 on PostgreSQL refuses them).
	NulInStrings bool
	// RareTypes: the server stores decimal128, minKey, maxKey, undefined,
	// JavaScript (with and without scope), DBPointer and symbol values. It
	// is probed only where NaN is stored: FerretDB v1 drops the connection
	// on several of them.
	RareTypes bool
	// FindAndModifyProjection: findAndModify honours a projection, so a
	// write gets only _id back, not the whole document.
	FindAndModifyProjection bool
	// BulkResults: an unordered bulk write reports upserts and errors by
	// the index of the operation and goes on past a failed operation.
	// Without it, bulk results are never mapped back to items by index.
	BulkResults bool
	// MaxBulk is the most updates (upserts) one bulk write command carries.
	// Where BulkResults holds it is the server's maxWriteBatchSize (100,000
	// on MongoDB). A server whose bulk results are inexact executes bulks
	// operation by operation, as FerretDB v1 does, which also hangs for good
	// once about 50 matched updates are in flight across its clients: that
	// limit cannot be probed without hanging the server, so there MaxBulk is
	// 10 and a Conn sends one bulk write at a time. Plain inserts (InsertMany
	// on such a server) match nothing and go in one command, which the
	// driver splits at maxWriteBatchSize. Config.WriteChunk overrides it.
	MaxBulk int
}

// AllCapabilities is what a real MongoDB can do, with the driver's batch
// limit. Set Config.Capabilities to it (or to what your server can do) to
// skip the probe.
func AllCapabilities() Capabilities {
	return Capabilities{NestedArrays: true, Infinity: true, NaN: true, NulInStrings: true, RareTypes: true, FindAndModifyProjection: true, BulkResults: true, MaxBulk: defaultMaxBulk}
}

// defaultMaxBulk is MongoDB's maxWriteBatchSize, used when the server does
// not report one.
const defaultMaxBulk = 100_000

// smallBulk is the bulk size for servers whose bulk results are inexact.
const smallBulk = 10

// Missing names the capabilities of want that c lacks ("" when none), for
// messages such as a test's skip reason.
func (c Capabilities) Missing(want Capabilities) string {
	var out []string
	add := func(wanted, have bool, name string) {
		if wanted && !have {
			out = append(out, name)
		}
	}
	add(want.NestedArrays, c.NestedArrays, "nested arrays")
	add(want.Infinity, c.Infinity, "±Infinity")
	add(want.NaN, c.NaN, "NaN")
	add(want.NulInStrings, c.NulInStrings, "NUL bytes in strings")
	add(want.RareTypes, c.RareTypes, "decimal128 and the other rare BSON types")
	add(want.FindAndModifyProjection, c.FindAndModifyProjection, "findAndModify projection")
	add(want.BulkResults, c.BulkResults, "exact bulk results")
	if want.MaxBulk > c.MaxBulk {
		out = append(out, fmt.Sprintf("bulk writes of %d (server: %d)", want.MaxBulk, c.MaxBulk))
	}
	if len(out) == 0 {
		return ""
	}
	s := out[0]
	for _, o := range out[1:] {
		s += ", " + o
	}
	return s
}

// probeServer asks the server what it is (for messages) and, unless the
// Config says, what it can do. Any failure that is not a clear answer about
// a capability is returned, so that Ready fails and the next call probes
// again: a transient error never decides a capability for the Conn's life.
func (c *Conn) probeServer(ctx context.Context) (ServerInfo, error) {
	var info ServerInfo
	var hello struct {
		MaxWriteBatchSize int       `bson:"maxWriteBatchSize"`
		LocalTime         time.Time `bson:"localTime"`
	}
	sent := c.cfg.Now()
	if err := c.db.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return info, fmt.Errorf("hello: %w", err)
	}
	if !hello.LocalTime.IsZero() {
		// The server's clock against this process's, at the middle of the
		// round trip (history's recorded times: history.go).
		got := c.cfg.Now()
		info.ClockOffset = hello.LocalTime.Sub(sent.Add(got.Sub(sent) / 2))
	}
	var build bson.Raw
	if err := c.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build); err != nil {
		return info, fmt.Errorf("buildInfo: %w", err)
	}
	info.Version, info.Product = describeServer(build)

	if c.cfg.Capabilities != nil {
		info.Capabilities = *c.cfg.Capabilities
		if info.Capabilities.MaxBulk == 0 {
			info.Capabilities.MaxBulk = smallBulk
			if info.Capabilities.BulkResults {
				info.Capabilities.MaxBulk = defaultMaxBulk
			}
		}
		return info, nil
	}
	caps, err := probeCapabilities(ctx, c.db.Collection(ProbeCollection), hello.MaxWriteBatchSize)
	if isUnauthorized(err) && c.mongoUser == "" {
		// Not logged in, and the server wants a login: every operation
		// would be refused, so say so now.
		return info, c.mongoAuthError(err)
	}
	if isUnauthorized(err) {
		// A server that enforces privileges and refuses the probe: assume
		// what MongoDB can do, and say how to be explicit.
		c.log.Warn("persistgen: not allowed to probe the server's capabilities; assuming MongoDB's (grant find, insert, update and remove on the collection "+ProbeCollection+", or set Config.Capabilities)", "err", err)
		caps, err = AllCapabilities(), nil
	}
	if err != nil {
		return info, fmt.Errorf("probing what the server can store (collection %s; where the probe cannot write, set Config.Capabilities): %w", ProbeCollection, err)
	}
	info.Capabilities = caps
	return info, nil
}

// describeServer reads buildInfo: MongoDB's version, and FerretDB's own
// version where it reports one. For messages only.
func describeServer(build bson.Raw) (version, product string) {
	version, _ = build.Lookup("version").StringValueOK()
	product = "MongoDB " + version
	if fv, ok := build.Lookup("ferretdbVersion").StringValueOK(); ok { // v1
		product = "FerretDB " + fv + " (MongoDB " + version + " compatible)"
	} else if fv, ok := build.Lookup("ferretdb", "version").StringValueOK(); ok { // v2
		product = "FerretDB " + fv + " (MongoDB " + version + " compatible)"
	}
	return version, product
}

func probeCapabilities(ctx context.Context, coll *mongo.Collection, maxWriteBatch int) (Capabilities, error) {
	var caps Capabilities
	ids := make([]bson.ObjectID, 8)
	all := make(bson.A, len(ids))
	for i := range ids {
		ids[i] = bson.NewObjectID()
		all[i] = ids[i]
	}
	defer func() {
		// Best effort, and briefly (a server that stopped answering must not
		// hold the guard): the documents are tiny and under fresh ids.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		_, _ = coll.DeleteMany(cctx, bson.D{{Key: FieldID, Value: bson.D{{Key: "$in", Value: all}}}})
	}()
	var err error
	if caps.NestedArrays, err = stores(ctx, coll, bson.D{{Key: FieldID, Value: ids[0]}, {Key: "v", Value: bson.A{bson.A{int32(1), int32(2)}}}}); err != nil {
		return caps, fmt.Errorf("nested arrays: %w", err)
	}
	if caps.Infinity, err = stores(ctx, coll, bson.D{{Key: FieldID, Value: ids[1]}, {Key: "v", Value: math.Inf(1)}, {Key: "w", Value: math.Inf(-1)}}); err != nil {
		return caps, fmt.Errorf("infinity: %w", err)
	}
	if caps.Infinity {
		if caps.NaN, err = stores(ctx, coll, bson.D{{Key: FieldID, Value: ids[5]}, {Key: "v", Value: math.NaN()}}); err != nil {
			return caps, fmt.Errorf("NaN: %w", err)
		}
	}
	if caps.NaN {
		if caps.RareTypes, err = stores(ctx, coll, append(bson.D{{Key: FieldID, Value: ids[7]}}, rareValues()...)); err != nil {
			return caps, fmt.Errorf("rare BSON types: %w", err)
		}
	}
	if caps.NulInStrings, err = stores(ctx, coll, bson.D{{Key: FieldID, Value: ids[6]}, {Key: "v", Value: "a\x00b"}}); err != nil {
		return caps, fmt.Errorf("NUL in a string: %w", err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: FieldID, Value: ids[2]}, {Key: "v", Value: int32(0)}, {Key: "s", Value: "x"}}); err != nil {
		return caps, err
	}
	if caps.FindAndModifyProjection, err = projects(ctx, coll, ids[2]); err != nil {
		return caps, fmt.Errorf("findAndModify projection: %w", err)
	}
	if caps.BulkResults, err = exactBulkResults(ctx, coll, ids[2], ids[3], ids[4]); err != nil {
		return caps, fmt.Errorf("bulk write results: %w", err)
	}
	caps.MaxBulk = smallBulk
	if caps.BulkResults {
		caps.MaxBulk = maxWriteBatch
		if caps.MaxBulk <= 0 {
			caps.MaxBulk = defaultMaxBulk
		}
	}
	return caps, nil
}

// stores inserts doc and reports whether the server kept it: false when it
// refused the value, an error for anything else (a validator, a missing
// privilege, the network). A refusal is BadValue (FerretDB v1's nested
// arrays and infinities) or an InternalError carrying PostgreSQL's refusal
// of a NUL byte (FerretDB v1 on PostgreSQL: SQLSTATE 22P05).
func stores(ctx context.Context, coll *mongo.Collection, doc bson.D) (bool, error) {
	_, err := coll.InsertOne(ctx, doc)
	var we mongo.WriteException
	var ce mongo.CommandError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &we) && we.WriteConcernError == nil && len(we.WriteErrors) == 1 && we.WriteErrors[0].Code == codeBadValue:
		return false, nil
	case errors.As(err, &ce) && ce.Code == codeInternalError && strings.Contains(ce.Message, "SQLSTATE 22P05"):
		return false, nil
	}
	return false, err
}

// projects reports whether findAndModify with a projection returns only the
// projected field (false when the server answers NotImplemented, or ignores
// the projection).
func projects(ctx context.Context, coll *mongo.Collection, id bson.ObjectID) (bool, error) {
	raw, err := coll.FindOneAndUpdate(ctx, bson.D{{Key: FieldID, Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int32(1)}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After).SetProjection(bson.D{{Key: FieldID, Value: 1}})).Raw()
	var se mongo.ServerError
	if errors.As(err, &se) && se.HasErrorCode(codeNotImplemented) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, hasV := raw.Lookup("v").Int32OK()
	return !hasV, nil
}

// exactBulkResults sends one unordered bulk write of four updates: a
// matched upsert of existing, an upsert of a new id, an update that must
// fail ($inc of a string), and another new upsert. It checks everything the
// server reports against what it must be, and against what it stored.
// FerretDB v1 fails it twice over: it reports the error at index 0 and
// skips the operations after it, and it numbers upserts among themselves.
func exactBulkResults(ctx context.Context, coll *mongo.Collection, existing, new1, new2 bson.ObjectID) (bool, error) {
	set := bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: int32(2)}}}}
	models := []mongo.WriteModel{
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: FieldID, Value: existing}}).SetUpdate(set).SetUpsert(true),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: FieldID, Value: new1}}).SetUpdate(set).SetUpsert(true),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: FieldID, Value: existing}}).SetUpdate(bson.D{{Key: "$inc", Value: bson.D{{Key: "s", Value: int32(1)}}}}),
		mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: FieldID, Value: new2}}).SetUpdate(set).SetUpsert(true),
	}
	res, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || isUnauthorized(err) {
		if err == nil {
			err = errors.New("the update that must fail ($inc of a string) was not reported")
		}
		return false, err
	}
	// Exactly one failure, a type mismatch, wherever the server reports
	// it: anything else (a unique index or validator on the probe
	// collection, a concurrent delete of its documents) is not an answer
	// about bulk results, and is an error rather than a guess.
	if len(bwe.WriteErrors) != 1 || bwe.WriteErrors[0].Code != codeTypeMismatch {
		return false, fmt.Errorf("unexpected answer to the probe's bulk write: %w", err)
	}
	exact := bwe.WriteErrors[0].Index == 2 &&
		res != nil && res.MatchedCount == 1 && len(res.UpsertedIDs) == 2 && res.UpsertedIDs[1] == new1 && res.UpsertedIDs[3] == new2
	n, err := coll.CountDocuments(ctx, bson.D{{Key: FieldID, Value: bson.D{{Key: "$in", Value: bson.A{existing, new1, new2}}}}, {Key: "v", Value: int32(2)}})
	if err != nil {
		return false, err
	}
	return exact && n == 3, nil
}

const (
	codeInternalError  = 1
	codeBadValue       = 2
	codeTypeMismatch   = 14
	codeUnauthorized   = 13
	codeNotImplemented = 238
)

func isUnauthorized(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(codeUnauthorized)
}

// storableKey refuses a key the server cannot store (a string part with a
// NUL byte where Capabilities.NulInStrings is false).
func (c *Conn) storableKey(vals []any) error {
	if c.Capabilities().NulInStrings {
		return nil
	}
	for _, v := range vals {
		if s, ok := v.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return errorf(ErrInvalidKey, "a key part contains a NUL byte, which this server cannot store in a string (Capabilities.NulInStrings)")
		}
	}
	return nil
}

// rareValues is one value of each rare BSON type (see RareTypes).
func rareValues() bson.D {
	dec, _ := bson.ParseDecimal128("1.5")
	return bson.D{{Key: "dec", Value: dec}, {Key: "min", Value: bson.MinKey{}}, {Key: "max", Value: bson.MaxKey{}},
		{Key: "undef", Value: bson.Undefined{}}, {Key: "js", Value: bson.JavaScript("1")},
		{Key: "jsScope", Value: bson.CodeWithScope{Code: "1", Scope: bson.D{}}},
		{Key: "ptr", Value: bson.DBPointer{DB: "x", Pointer: bson.NewObjectID()}}, {Key: "sym", Value: bson.Symbol("s")}}
}

func rareType(t bson.Type) bool {
	switch t {
	case bson.TypeDecimal128, bson.TypeMinKey, bson.TypeMaxKey, bson.TypeUndefined, bson.TypeJavaScript,
		bson.TypeCodeWithScope, bson.TypeDBPointer, bson.TypeSymbol:
		return true
	}
	return false
}

// unstorable reports the first value in an encoded BSON value that the
// server cannot store (ErrInvalidArgument naming its path and what to do),
// so that such a write fails cleanly before anything is sent: a server
// without NaN (FerretDB v1) drops the connection on one, and the others'
// refusals would not say which field. It does nothing on a server that
// stores everything.
func (c Capabilities) unstorable(t bson.Type, data []byte) error {
	if c.NestedArrays && c.Infinity && c.NaN && c.NulInStrings && c.RareTypes {
		return nil
	}
	return c.walk("payload", t, data, false)
}

func (c Capabilities) walk(path string, t bson.Type, data []byte, inArray bool) error {
	if !c.RareTypes && rareType(t) {
		return errorf(ErrInvalidArgument, "%s is a BSON %s, which this server cannot store (Capabilities.RareTypes)", path, t)
	}
	switch t {
	case bson.TypeDouble:
		f := bson.RawValue{Type: t, Value: data}.Double()
		switch {
		case math.IsNaN(f) && !c.NaN:
			return errorf(ErrInvalidArgument, "%s is NaN, which this server cannot store (Capabilities.NaN); store a finite number or null", path)
		case math.IsInf(f, 0) && !c.Infinity:
			return errorf(ErrInvalidArgument, "%s is %v, which this server cannot store (Capabilities.Infinity); store a finite number or null", path, f)
		}
	case bson.TypeString:
		if !c.NulInStrings {
			if s := (bson.RawValue{Type: t, Value: data}).StringValue(); strings.IndexByte(s, 0) >= 0 {
				return errorf(ErrInvalidArgument, "%s contains a NUL byte, which this server cannot store in a string (Capabilities.NulInStrings)", path)
			}
		}
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		if t == bson.TypeArray && inArray && !c.NestedArrays {
			return errorf(ErrInvalidArgument, "%s is an array inside an array, which this server cannot store (Capabilities.NestedArrays)", path)
		}
		elems, err := bson.Raw(data).Elements()
		if err != nil {
			return errorf(ErrInvalidArgument, "%s does not decode: %v", path, err)
		}
		for _, e := range elems {
			v := e.Value()
			if err := c.walk(path+"."+e.Key(), v.Type, v.Value, t == bson.TypeArray); err != nil {
				return err
			}
		}
	}
	return nil
}
