package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/schollz/progressbar/v3"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/term"

	"github.com/persistgen/persistgen/runtime"
	"github.com/persistgen/persistgen/schema"
)

// What audit finds. An identity is a Redis key (KeyPrefix + the domain's
// prefix + the key's parts) holding the 24-hex _id of the key's document,
// as upstream and the identity cache mode keep them.
const (
	findMissing    = "missing-document" // an identity names an _id no document has
	findOtherKey   = "other-key"        // an identity names the document of another key
	findWrongType  = "wrong-type"       // an identity that is not a string holding a 24-hex _id
	findNoIdentity = "no-identity"      // a document without its identity
	findBadKey     = "bad-key"          // a document whose key fields make no valid key (not repairable here)
)

const auditBatch = 500

type auditor struct {
	conn     *runtime.Conn
	rdb      runtime.RedisClient
	ns       string
	repair   bool
	out      io.Writer
	progress func(what string, total int64) progress
	found    map[string]int // per kind
	fixed    int
}

type progress interface {
	Add(n int)
	Done()
}

// auditDomain checks one identity-mode domain both ways: every document
// has its identity, naming it; every identity names its own key's
// document. With repair, each finding is mended: an identity set to its
// document's _id, or deleted where its key has no document.
func (a *auditor) auditDomain(ctx context.Context, s *runtime.Schema) error {
	c, err := schema.Compile(s)
	if err != nil {
		return err
	}
	coll := a.conn.Database().Collection(s.Collection)
	total, err := coll.EstimatedDocumentCount(ctx)
	if err != nil {
		return fmt.Errorf("%s: count: %w", s.Domain, err)
	}
	reported := map[string]bool{}
	// Documents → identities.
	proj := bson.D{{Key: "_id", Value: 1}}
	for _, f := range s.Key {
		proj = append(proj, bson.E{Key: f.Name, Value: 1})
	}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetProjection(proj).SetBatchSize(auditBatch))
	if err != nil {
		return fmt.Errorf("%s: find: %w", s.Domain, err)
	}
	defer cur.Close(ctx)
	p := a.progress(s.Domain+": documents", total)
	type doc struct {
		id  bson.ObjectID
		key string
	}
	var batch []doc
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		pipe := a.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(batch))
		for i, d := range batch {
			cmds[i] = pipe.Get(ctx, d.key)
		}
		_, _ = pipe.Exec(ctx) // per command errors below
		var others []bson.ObjectID
		pointsAt := map[string]bson.ObjectID{}
		for i, d := range batch {
			v, err := cmds[i].Result()
			switch {
			case errors.Is(err, redis.Nil):
				a.report(s, findNoIdentity, d.key, "document "+d.id.Hex()+" has no identity")
			case err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE"):
				a.report(s, findWrongType, d.key, "not a string; document "+d.id.Hex())
			case err != nil:
				return fmt.Errorf("%s: GET %s: %w", s.Domain, d.key, err)
			default:
				id, perr := bson.ObjectIDFromHex(v)
				switch {
				case perr != nil:
					a.report(s, findWrongType, d.key, fmt.Sprintf("holds %q, not a 24-hex _id; document %s", clip(v), d.id.Hex()))
				case id != d.id:
					others = append(others, id)
					pointsAt[d.key] = id
					continue
				default:
					continue
				}
			}
			reported[d.key] = true
			if a.repair {
				if err := a.set(ctx, d.key, d.id); err != nil {
					return err
				}
			}
		}
		if len(others) > 0 {
			exists, err := a.existing(ctx, coll, others)
			if err != nil {
				return fmt.Errorf("%s: %w", s.Domain, err)
			}
			for _, d := range batch {
				id, ok := pointsAt[d.key]
				if !ok {
					continue
				}
				if exists[id] {
					a.report(s, findOtherKey, d.key, "names "+id.Hex()+", another key's document; its own is "+d.id.Hex())
				} else {
					a.report(s, findMissing, d.key, "names "+id.Hex()+", which no document has; its own is "+d.id.Hex())
				}
				reported[d.key] = true
				if a.repair {
					if err := a.set(ctx, d.key, d.id); err != nil {
						return err
					}
				}
			}
		}
		p.Add(len(batch))
		batch = batch[:0]
		return nil
	}
	for cur.Next(ctx) {
		var d struct {
			ID bson.ObjectID `bson:"_id"`
		}
		if err := cur.Decode(&d); err != nil {
			return fmt.Errorf("%s: %w", s.Domain, err)
		}
		vals, err := docKey(cur.Current, s)
		if err == nil {
			vals, err = c.Values(vals)
		}
		if err != nil {
			a.report(s, findBadKey, "", fmt.Sprintf("document %s: %s", d.ID.Hex(), schema.Message(err)))
			continue
		}
		batch = append(batch, doc{d.ID, c.RedisKey(a.ns, vals)})
		if len(batch) == auditBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("%s: find: %w", s.Domain, err)
	}
	if err := flush(); err != nil {
		return err
	}
	p.Done()
	// Identities → documents: those whose key has no document of its own.
	return a.scanIdentities(ctx, s, c, coll, reported)
}

// scanIdentities walks the domain's identity keys (on every master of a
// cluster) and reports those naming no document, or another key's; keys
// the document pass reported are not reported twice.
func (a *auditor) scanIdentities(ctx context.Context, s *runtime.Schema, c *schema.Compiled, coll *mongo.Collection, reported map[string]bool) error {
	pattern := schema.GlobEscape(a.ns+s.RedisPrefix) + ":*"
	p := a.progress(s.Domain+": identities", -1)
	defer p.Done()
	check := func(ctx context.Context, rdb redis.Cmdable, keys []string) error {
		pipe := rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.Get(ctx, k)
		}
		_, _ = pipe.Exec(ctx)
		ids := map[string]bson.ObjectID{}
		var list []bson.ObjectID
		for i, k := range keys {
			if reported[k] {
				continue
			}
			v, err := cmds[i].Result()
			switch {
			case errors.Is(err, redis.Nil):
				continue // gone since the scan
			case err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE"):
				a.report(s, findWrongType, k, "not a string, and no document has this key")
			case err != nil:
				return fmt.Errorf("%s: GET %s: %w", s.Domain, k, err)
			default:
				id, perr := bson.ObjectIDFromHex(v)
				if perr == nil {
					ids[k] = id
					list = append(list, id)
					continue
				}
				a.report(s, findWrongType, k, fmt.Sprintf("holds %q, not a 24-hex _id, and no document has this key", clip(v)))
			}
			if a.repair {
				if err := a.del(ctx, k); err != nil {
					return err
				}
			}
		}
		owners, err := a.owners(ctx, coll, s, c, list)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Domain, err)
		}
		for _, k := range keys {
			id, ok := ids[k]
			if !ok {
				continue
			}
			own, found := owners[id]
			switch {
			case !found:
				a.report(s, findMissing, k, "names "+id.Hex()+", which no document has")
			case own != k:
				a.report(s, findOtherKey, k, "names "+id.Hex()+", the document of "+own)
			default:
				continue
			}
			if a.repair {
				if err := a.del(ctx, k); err != nil {
					return err
				}
			}
		}
		p.Add(len(keys))
		return nil
	}
	scan := func(ctx context.Context, rdb redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := rdb.Scan(ctx, cursor, pattern, auditBatch).Result()
			if err != nil {
				return fmt.Errorf("%s: SCAN %s: %w", s.Domain, pattern, err)
			}
			if len(keys) > 0 {
				if err := check(ctx, rdb, keys); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	switch r := a.rdb.(type) {
	case *redis.ClusterClient:
		return r.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return scan(ctx, m) })
	case redis.Cmdable:
		return scan(ctx, r)
	}
	return fmt.Errorf("%s: the Conn's Redis client (%T) cannot SCAN", s.Domain, a.rdb)
}

// owners maps each _id that has a document to its key's identity.
func (a *auditor) owners(ctx context.Context, coll *mongo.Collection, s *runtime.Schema, c *schema.Compiled, ids []bson.ObjectID) (map[bson.ObjectID]string, error) {
	out := map[bson.ObjectID]string{}
	if len(ids) == 0 {
		return out, nil
	}
	cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		id, _ := cur.Current.Lookup("_id").ObjectIDOK()
		vals, err := docKey(cur.Current, s)
		if err == nil {
			vals, err = c.Values(vals)
		}
		if err != nil {
			out[id] = "(an invalid key)"
			continue
		}
		out[id] = c.RedisKey(a.ns, vals)
	}
	return out, cur.Err()
}

// existing reports which of ids have a document.
func (a *auditor) existing(ctx context.Context, coll *mongo.Collection, ids []bson.ObjectID) (map[bson.ObjectID]bool, error) {
	cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	out := map[bson.ObjectID]bool{}
	for cur.Next(ctx) {
		id, _ := cur.Current.Lookup("_id").ObjectIDOK()
		out[id] = true
	}
	return out, cur.Err()
}

// docKey reads a document's key fields in key order.
func docKey(raw bson.Raw, s *runtime.Schema) ([]any, error) {
	vals := make([]any, len(s.Key))
	for i, f := range s.Key {
		v, err := raw.LookupErr(f.Name)
		if err != nil {
			if f.Optional {
				vals[i] = ""
				continue
			}
			return nil, schema.Errorf(schema.ErrInvalidKey, "key field %q is missing", f.Name)
		}
		var x any
		if err := v.Unmarshal(&x); err != nil {
			return nil, schema.Errorf(schema.ErrInvalidKey, "key field %q: %v", f.Name, err)
		}
		vals[i] = x
	}
	return vals, nil
}

func (a *auditor) report(s *runtime.Schema, kind, key, detail string) {
	a.found[kind]++
	if key == "" {
		fmt.Fprintf(a.out, "%s\t%s\t%s\n", s.Domain, kind, detail)
		return
	}
	fmt.Fprintf(a.out, "%s\t%s\t%s\t%s\n", s.Domain, kind, key, detail)
}

func (a *auditor) set(ctx context.Context, key string, id bson.ObjectID) error {
	// SET replaces a key of any type: an identity of the wrong type too.
	if err := a.rdb.Set(ctx, key, id.Hex(), 0).Err(); err != nil {
		return fmt.Errorf("repair: SET %s: %w", key, err)
	}
	a.fixed++
	return nil
}

func (a *auditor) del(ctx context.Context, key string) error {
	if err := a.rdb.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("repair: DEL %s: %w", key, err)
	}
	a.fixed++
	return nil
}

// clip shortens a value for a report line.
func clip(v string) string {
	if len(v) > 40 {
		return v[:40] + "..."
	}
	return v
}

// newProgress reports a long scan's progress on stderr: a bar (or a
// counter where the total is unknown) on a terminal, a plain line every
// 10,000 items and at the end otherwise, nothing when quiet.
func newProgress(stderr io.Writer, quiet bool) func(what string, total int64) progress {
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return func(what string, total int64) progress {
		switch {
		case quiet:
			return nopProgress{}
		case tty:
			return barProgress{progressbar.NewOptions64(total, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("audit "+what),
				progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())}
		}
		return &lineProgress{w: stderr, what: what}
	}
}

type nopProgress struct{}

func (nopProgress) Add(int) {}
func (nopProgress) Done()   {}

type barProgress struct{ b *progressbar.ProgressBar }

func (p barProgress) Add(n int) { _ = p.b.Add(n) }
func (p barProgress) Done()     { _ = p.b.Finish() }

type lineProgress struct {
	w    io.Writer
	what string
	n    int
}

func (p *lineProgress) Add(n int) {
	before := p.n / 10000
	p.n += n
	if p.n/10000 > before {
		fmt.Fprintf(p.w, "audit %s: %d checked\n", p.what, p.n)
	}
}

func (p *lineProgress) Done() { fmt.Fprintf(p.w, "audit %s: %d checked, done\n", p.what, p.n) }
