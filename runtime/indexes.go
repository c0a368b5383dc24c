package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// EnsureIndexes creates the indexes of every schema that are missing. It
// only ever creates: an index that exists under the wanted name with another
// definition is an error wrapping ErrIndexConflict that names it (drop or
// rename it yourself; changing an index in place fails on live databases),
// and an index with the wanted definition under another name (one another
// tool created) is accepted as it is. Round trips: one listIndexes per
// collection, plus one createIndexes per collection that lacks any.
func (c *Conn) EnsureIndexes(ctx context.Context, schemas ...*Schema) error {
	if err := c.Ready(ctx); err != nil {
		return err
	}
	for _, s := range schemas {
		if err := s.Validate(); err != nil {
			return &OpError{Op: "EnsureIndexes", Domain: s.Domain, Err: err}
		}
		if err := c.ensure(ctx, s); err != nil {
			return c.secrets.scrubOp(&OpError{Op: "EnsureIndexes", Domain: s.Domain, Err: c.classify(ctx, err)})
		}
		c.setIndexed(s.Collection)
	}
	return nil
}

type existingIndex struct {
	name   string
	keys   []IndexKey
	unique bool
	// limits lists the options that make the index cover, or keep, less
	// than its keys say (a partial filter, sparse, a collation, a TTL, a
	// hashed, text or geo key): such an index does not do what persistgen
	// needs of it.
	limits []string
	// expire is a TTL index's expireAfterSeconds (-1: not a TTL index).
	expire int64
}

func (c *Conn) ensure(ctx context.Context, s *Schema) error {
	ctx, cancel := c.bound(ctx, 0)
	defer cancel()
	steps, err := c.planIndexes(ctx, s)
	if err != nil {
		return err
	}
	create := map[string][]mongo.IndexModel{}
	for _, st := range steps {
		switch st.Action {
		case PlanConflict:
			return errorf(ErrIndexConflict, "%s", st.Detail)
		case PlanOther:
			c.log.Info("persistgen: index exists under another name; using it", "collection", st.Collection, "want", st.Name, "have", st.Detail)
		case PlanCreate:
			create[st.Collection] = append(create[st.Collection], st.model)
		}
	}
	for _, coll := range []string{s.Collection, s.HistoryCollection()} {
		if len(create[coll]) == 0 {
			continue
		}
		_, err := c.db.Collection(coll).Indexes().CreateMany(ctx, create[coll])
		if err != nil && isNotImplemented(err) && s.History != nil && s.History.Keep > 0 && coll == s.HistoryCollection() {
			// A server without TTL indexes (FerretDB v1): the unique index
			// alone, and a warning, since versions will not expire.
			var unique []mongo.IndexModel
			for _, st := range steps {
				if st.Collection == coll && st.unique && st.Action == PlanCreate {
					unique = append(unique, st.model)
				}
			}
			c.log.Warn("persistgen: this server has no TTL indexes, so versions are kept forever, not for the domain's keep; use a server with TTL indexes, or say keep: forever", "collection", coll, "keep", s.History.Keep.String(), "err", c.secrets.scrub(err))
			if len(unique) == 0 {
				continue
			}
			_, err = c.db.Collection(coll).Indexes().CreateMany(ctx, unique)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// PlanAction is what a plan step does (or found).
type PlanAction string

// The plan actions.
const (
	PlanOK       PlanAction = "ok"       // present as wanted
	PlanOther    PlanAction = "other"    // present as wanted, under another name
	PlanCreate   PlanAction = "create"   // missing: --apply creates it
	PlanConflict PlanAction = "conflict" // present otherwise: a person must decide
	PlanShard    PlanAction = "shard"    // the collection is to be sharded: --apply does it
	PlanSkip     PlanAction = "skip"     // nothing can be done here (why in Detail)
)

// PlanStep is one line of a plan: an index or a collection's sharding.
type PlanStep struct {
	Collection string
	Action     PlanAction
	// Name is the index's name, or "shard key" for the sharding step.
	Name string
	// What is the definition wanted: {a: 1, b: -1} unique, or a shard key.
	What string
	// Detail says why (a conflict's existing definition, the other name).
	Detail string
	model  mongo.IndexModel
	shard  bson.D
	unique bool // the index wanted is the unique one
}

// PlanIndexes compares the live indexes of each schema's collection with
// the ones persistgen needs, changing nothing: one listIndexes per
// collection.
func (c *Conn) PlanIndexes(ctx context.Context, schemas ...*Schema) ([]PlanStep, error) {
	if err := c.Ready(ctx); err != nil {
		return nil, err
	}
	var out []PlanStep
	for _, s := range schemas {
		if err := s.Validate(); err != nil {
			return nil, &OpError{Op: "PlanIndexes", Domain: s.Domain, Err: err}
		}
		steps, err := c.planIndexes(ctx, s)
		if err != nil {
			return nil, &OpError{Op: "PlanIndexes", Domain: s.Domain, Err: c.classify(ctx, err)}
		}
		out = append(out, steps...)
	}
	return out, nil
}

func (c *Conn) planIndexes(ctx context.Context, s *Schema) ([]PlanStep, error) {
	out, err := c.planCollection(ctx, s.Collection, s.AllIndexes())
	if err != nil || s.History == nil {
		return out, err
	}
	hist, err := c.planCollection(ctx, s.HistoryCollection(), s.HistoryIndexes())
	return append(out, hist...), err
}

// planCollection compares one collection's live indexes with want.
func (c *Conn) planCollection(ctx context.Context, collection string, want []Index) ([]PlanStep, error) {
	existing, err := listIndexes(ctx, c.db.Collection(collection))
	if err != nil {
		return nil, err
	}
	var out []PlanStep
	for _, want := range want {
		what := describe(want.Keys, want.Unique)
		if n := expireSeconds(want); n >= 0 {
			what += fmt.Sprintf(" expiring after %ds", n)
		}
		st := PlanStep{Collection: collection, Name: want.Name, What: what, unique: want.Unique}
		if have, ok := findByName(existing, want.Name); ok {
			st.Action = PlanOK
			if !sameIndex(have, want) {
				st.Action = PlanConflict
				st.Detail = fmt.Sprintf("index %q on %q is %s, persistgen needs %s; drop or rename the existing index (persistgen never changes indexes)",
					want.Name, collection, describeExisting(have), what)
			}
		} else if other, ok := findByDefinition(existing, want); ok {
			st.Action, st.Detail = PlanOther, other.name
		} else {
			keys := bson.D{}
			for _, k := range want.Keys {
				keys = append(keys, bson.E{Key: k.Field, Value: dir(k.Desc)})
			}
			st.Action, st.model = PlanCreate, mongo.IndexModel{Keys: keys, Options: optionsFor(want)}
		}
		out = append(out, st)
	}
	return out, nil
}

func listIndexes(ctx context.Context, coll *mongo.Collection) ([]existingIndex, error) {
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		var ce mongo.CommandError
		if errors.As(err, &ce) && ce.Code == 26 { // NamespaceNotFound: no collection yet
			return nil, nil
		}
		return nil, err
	}
	defer closeCursor(ctx, cur)
	var out []existingIndex
	for cur.Next(ctx) {
		raw := cur.Current
		ix := existingIndex{expire: -1}
		ix.name, _ = raw.Lookup("name").StringValueOK()
		ix.unique, _ = raw.Lookup("unique").BooleanOK()
		if doc, ok := raw.Lookup("key").DocumentOK(); ok {
			elems, _ := doc.Elements()
			for _, e := range elems {
				v := e.Value()
				desc := false
				switch v.Type {
				case bson.TypeInt32:
					desc = v.Int32() < 0
				case bson.TypeInt64:
					desc = v.Int64() < 0
				case bson.TypeDouble:
					desc = v.Double() < 0
				case bson.TypeString:
					// A hashed, text or geo key ({symbol: "hashed"}): not
					// an ordered index, whatever its fields.
					ix.limits = append(ix.limits, fmt.Sprintf("%s: %q", e.Key(), v.StringValue()))
				}
				ix.keys = append(ix.keys, IndexKey{Field: e.Key(), Desc: desc})
			}
		}
		if v, err := raw.LookupErr("expireAfterSeconds"); err == nil {
			if n, ok := v.AsInt64OK(); ok {
				ix.expire = n
			} else {
				ix.limits = append(ix.limits, "expireAfterSeconds")
			}
		}
		for _, opt := range []string{"partialFilterExpression", "sparse", "collation"} {
			if v, err := raw.LookupErr(opt); err == nil && !(opt == "sparse" && v.Type == bson.TypeBoolean && !v.Boolean()) {
				ix.limits = append(ix.limits, opt)
			}
		}
		out = append(out, ix)
	}
	return out, cur.Err()
}

func findByName(have []existingIndex, name string) (existingIndex, bool) {
	for _, h := range have {
		if h.name == name {
			return h, true
		}
	}
	return existingIndex{}, false
}

func findByDefinition(have []existingIndex, want Index) (existingIndex, bool) {
	for _, h := range have {
		if sameIndex(h, want) {
			return h, true
		}
	}
	return existingIndex{}, false
}

func sameIndex(h existingIndex, w Index) bool {
	if h.unique != w.Unique || len(h.keys) != len(w.Keys) || len(h.limits) > 0 || h.expire != expireSeconds(w) {
		return false
	}
	for i := range h.keys {
		if h.keys[i] != w.Keys[i] {
			return false
		}
	}
	return true
}

// expireSeconds is a wanted index's expireAfterSeconds (-1: not TTL).
func expireSeconds(w Index) int64 {
	if w.ExpireAfter <= 0 {
		return -1
	}
	return int64(w.ExpireAfter / time.Second)
}

func describeExisting(h existingIndex) string {
	s := describe(h.keys, h.unique)
	if h.expire >= 0 {
		s += fmt.Sprintf(" expiring after %ds", h.expire)
	}
	if len(h.limits) > 0 {
		s += " with " + strings.Join(h.limits, ", ")
	}
	return s
}

func describe(keys []IndexKey, unique bool) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k.Field, dir(k.Desc))
	}
	s := "{" + strings.Join(parts, ", ") + "}"
	if unique {
		s += " unique"
	}
	return s
}

func optionsFor(ix Index) *options.IndexOptionsBuilder {
	o := options.Index().SetName(ix.Name)
	if ix.Unique {
		o.SetUnique(true)
	}
	if n := expireSeconds(ix); n >= 0 {
		o.SetExpireAfterSeconds(int32(min(n, 1<<31-1)))
	}
	return o
}

// PlanSharding compares each schema's shard key (Schema.Shard) with the
// deployment, changing nothing. On a sharded cluster (the Conn talks to a
// mongos) a collection not sharded yet is to be sharded (PlanShard), one
// sharded by the same key is PlanOK and by another key PlanConflict
// (resharding is a decision: reshardCollection). Elsewhere every shard key
// is PlanSkip, saying why. Schemas without a shard key have no step.
func (c *Conn) PlanSharding(ctx context.Context, schemas ...*Schema) ([]PlanStep, error) {
	if err := c.Ready(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := c.bound(ctx, 0)
	defer cancel()
	var hello struct {
		Msg string `bson:"msg"`
	}
	if err := c.db.Client().Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return nil, &OpError{Op: "PlanSharding", Err: c.classify(ctx, err)}
	}
	var out []PlanStep
	for _, s := range schemas {
		if s.Shard == nil {
			continue
		}
		if err := s.Validate(); err != nil {
			return nil, &OpError{Op: "PlanSharding", Domain: s.Domain, Err: err}
		}
		keys := make([]IndexKey, len(s.Shard.Fields))
		want := bson.D{}
		for i, f := range s.Shard.Fields {
			keys[i] = IndexKey{Field: f}
			want = append(want, bson.E{Key: f, Value: int32(1)})
		}
		st := PlanStep{Collection: s.Collection, Name: "shard key", What: describe(keys, false), shard: want}
		if hello.Msg != "isdbgrid" {
			st.Action, st.Detail = PlanSkip, "not a sharded cluster (no mongos answers here): the shard key applies once the database moves to one"
			out = append(out, st)
			continue
		}
		var got struct {
			Key bson.D `bson:"key"`
		}
		ns := c.db.Name() + "." + s.Collection
		err := c.db.Client().Database("config").Collection("collections").FindOne(ctx, bson.D{{Key: "_id", Value: ns}}).Decode(&got)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			st.Action = PlanShard
		case err != nil:
			return nil, &OpError{Op: "PlanSharding", Domain: s.Domain, Err: c.classify(ctx, err)}
		case sameShardKey(got.Key, want):
			st.Action = PlanOK
		default:
			st.Action, st.Detail = PlanConflict, fmt.Sprintf("%s is sharded by %v, the manifest says %s; resharding (reshardCollection) is a decision persistgen leaves to you", ns, got.Key, st.What)
		}
		out = append(out, st)
	}
	return out, nil
}

// sameShardKey compares a live shard key with a wanted ranged one.
func sameShardKey(have, want bson.D) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range have {
		var one bool
		switch v := have[i].Value.(type) {
		case int32:
			one = v == 1
		case int64:
			one = v == 1
		case float64:
			one = v == 1
		}
		if have[i].Key != want[i].Key || !one {
			return false
		}
	}
	return true
}

// ApplyPlan carries out a plan's create and shard steps (the others need
// nobody or a person): the missing indexes first, one createIndexes per
// collection, then shardCollection on each collection to shard. It never
// drops or changes anything.
func (c *Conn) ApplyPlan(ctx context.Context, steps []PlanStep) error {
	if err := c.Ready(ctx); err != nil {
		return err
	}
	byColl := map[string][]mongo.IndexModel{}
	ttl := map[string]bool{}
	var order []string
	for _, st := range steps {
		if st.Action == PlanCreate {
			if _, seen := byColl[st.Collection]; !seen {
				order = append(order, st.Collection)
			}
			byColl[st.Collection] = append(byColl[st.Collection], st.model)
			ttl[st.Collection] = ttl[st.Collection] || st.model.Options != nil && strings.Contains(st.What, "expiring after")
		}
	}
	for _, coll := range order {
		callCtx, cancel := c.bound(ctx, 0)
		_, err := c.db.Collection(coll).Indexes().CreateMany(callCtx, byColl[coll])
		if err != nil && ttl[coll] && isNotImplemented(err) {
			// A server without TTL indexes (FerretDB v1): the others, so
			// that the history's unique index is there; the plan keeps
			// showing the TTL index as missing.
			c.log.Warn("persistgen: this server has no TTL indexes, so versions are kept forever, not for the domain's keep", "collection", coll, "err", c.secrets.scrub(err))
			var rest []mongo.IndexModel
			for _, st := range steps {
				if st.Action == PlanCreate && st.Collection == coll && !strings.Contains(st.What, "expiring after") {
					rest = append(rest, st.model)
				}
			}
			err = nil
			if len(rest) > 0 {
				_, err = c.db.Collection(coll).Indexes().CreateMany(callCtx, rest)
			}
		}
		cancel()
		if err != nil {
			return &OpError{Op: "ApplyPlan", Key: coll, Err: c.classify(ctx, err)}
		}
	}
	for _, st := range steps {
		if st.Action != PlanShard {
			continue
		}
		ns := c.db.Name() + "." + st.Collection
		callCtx, cancel := c.bound(ctx, 0)
		err := c.db.Client().Database("admin").RunCommand(callCtx, bson.D{{Key: "shardCollection", Value: ns}, {Key: "key", Value: st.shard}}).Err()
		cancel()
		if err != nil {
			return &OpError{Op: "ApplyPlan", Key: ns, Err: c.classify(ctx, err)}
		}
	}
	return nil
}

// Unique reports whether the step is a collection's unique index: the one
// writes cannot go without.
func (st PlanStep) Unique() bool { return st.unique }

// isNotImplemented reports a server's refusal of something it does not
// implement (code 238: FerretDB's "not implemented yet").
func isNotImplemented(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(238)
}
