package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	}
	return nil
}

type existingIndex struct {
	name   string
	keys   []IndexKey
	unique bool
	// limits lists the options that make the index cover, or keep, less
	// than its keys say (a partial filter, sparse, a collation, a TTL):
	// such an index does not do what persistgen needs of it.
	limits []string
}

func (c *Conn) ensure(ctx context.Context, s *Schema) error {
	ctx, cancel := c.bound(ctx, 0)
	defer cancel()
	coll := c.db.Collection(s.Collection)
	existing, err := listIndexes(ctx, coll)
	if err != nil {
		return err
	}
	var create []mongo.IndexModel
	for _, want := range s.AllIndexes() {
		if have, ok := findByName(existing, want.Name); ok {
			if !sameIndex(have, want) {
				return errorf(ErrIndexConflict, "index %q on %q is %s, persistgen needs %s; drop or rename the existing index (persistgen never changes indexes)",
					want.Name, s.Collection, describeExisting(have), describe(want.Keys, want.Unique))
			}
			continue
		}
		if other, ok := findByDefinition(existing, want); ok {
			c.log.Info("persistgen: index exists under another name; using it", "collection", s.Collection, "want", want.Name, "have", other.name)
			continue
		}
		keys := bson.D{}
		for _, k := range want.Keys {
			keys = append(keys, bson.E{Key: k.Field, Value: dir(k.Desc)})
		}
		create = append(create, mongo.IndexModel{Keys: keys, Options: optionsFor(want)})
	}
	if len(create) == 0 {
		return nil
	}
	_, err = coll.Indexes().CreateMany(ctx, create)
	return err
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
		ix := existingIndex{}
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
				}
				ix.keys = append(ix.keys, IndexKey{Field: e.Key(), Desc: desc})
			}
		}
		for _, opt := range []string{"partialFilterExpression", "sparse", "collation", "expireAfterSeconds"} {
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
	if h.unique != w.Unique || len(h.keys) != len(w.Keys) || len(h.limits) > 0 {
		return false
	}
	for i := range h.keys {
		if h.keys[i] != w.Keys[i] {
			return false
		}
	}
	return true
}

func describeExisting(h existingIndex) string {
	s := describe(h.keys, h.unique)
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
	return o
}
