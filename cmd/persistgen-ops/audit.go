package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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
	findBadKey     = "bad-key"          // a document whose _id or key fields make no valid key (not repairable here)
	findDuplicate  = "duplicate-key"    // two documents of one key (not repairable here)
	findMode       = "mode-mismatch"    // the collection's marker names another cache family than the manifest's mode
)

const auditBatch = 500

type auditor struct {
	conn     *runtime.Conn
	rdb      runtime.RedisClient
	ns       string
	repair   bool
	out      io.Writer
	progress func(what string, total int64) progress
	force    bool      // repair even a domain whose collection is empty
	errOut   io.Writer // notes for the operator
	casLua   *redis.Script
	found    map[string]int // per kind
	fixed    int
	skipped  int // repairs not made: the key changed since it was read
	// historyFixed counts the versions audit -repair recorded (of the
	// version-missing findings).
	historyFixed int
	// unowned counts findings not repaired because no marker shows the
	// key prefix to be this database's alone (see owned).
	unowned int
}

type progress interface {
	Add(n int)
	Done()
}

// auditDomain checks one identity-mode domain both ways: every document
// has its identity, naming it; every identity names its own key's
// document. With repair, each finding is mended: an identity set to its
// document's _id, or deleted where its key has no document; each change is
// a compare-and-set on what was read (a key a live writer changed since is
// left alone, and counted as skipped). Two documents of one key (written
// before the unique index, or a key field missing) are reported and left
// for a person.
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
	repair := a.repair
	if repair && total == 0 && !a.force {
		// An empty or absent collection whose identities would all be
		// deleted: more likely a wrong database or key prefix than data.
		fmt.Fprintf(a.errOut, "audit %s: collection %s.%s has no documents: reporting only, repairing nothing (check the database and -key-prefix, or give -force)\n", s.Domain, a.conn.Database().Name(), s.Collection)
		repair = false
	}
	owned, err := a.owned(ctx, s)
	if err != nil {
		return err
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
		// Two documents of one key in the batch: neither identity is
		// repaired (which one the runtime reads is the person's call).
		byKey := map[string][]int{}
		for i, d := range batch {
			byKey[d.key] = append(byKey[d.key], i)
		}
		keys := make([]string, len(batch))
		for i, d := range batch {
			keys[i] = d.key
		}
		idents, err := readIdentities(ctx, a.rdb, keys)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Domain, err)
		}
		var wrong []int // batch indexes whose identity names another _id
		var named []bson.ObjectID
		for i, d := range batch {
			if dup := byKey[d.key]; len(dup) > 1 {
				if dup[0] == i {
					var ids []string
					for _, j := range dup {
						ids = append(ids, batch[j].id.Hex())
					}
					a.report(s, findDuplicate, d.key, "documents "+strings.Join(ids, ", ")+" have this one key; not repaired")
					reported[d.key] = true
				}
				continue
			}
			idn := idents[i]
			switch {
			case idn.absent:
				a.report(s, findNoIdentity, d.key, "document "+d.id.Hex()+" has no identity")
			case idn.problem != "":
				a.report(s, findWrongType, d.key, idn.problem+"; document "+d.id.Hex())
			case idn.id != d.id:
				wrong = append(wrong, i)
				named = append(named, idn.id)
				continue
			default:
				continue
			}
			reported[d.key] = true
			if repair {
				if err := a.cas(ctx, d.key, idn.expect, d.id.Hex()); err != nil {
					return err
				}
			}
		}
		if len(wrong) > 0 {
			owners, err := a.owners(ctx, coll, s, c, named)
			if err != nil {
				return fmt.Errorf("%s: %w", s.Domain, err)
			}
			for _, i := range wrong {
				d, idn := batch[i], idents[i]
				reported[d.key] = true
				own, found := owners[idn.id]
				switch {
				case found && own == d.key:
					// Its own key's other document (in another batch).
					a.report(s, findDuplicate, d.key, "documents "+idn.id.Hex()+", "+d.id.Hex()+" have this one key; not repaired")
					continue
				case found:
					a.report(s, findOtherKey, d.key, "names "+idn.id.Hex()+", the document of "+own+"; its own is "+d.id.Hex())
				default:
					a.report(s, findMissing, d.key, "names "+idn.id.Hex()+", which no document has; its own is "+d.id.Hex())
				}
				if repair {
					if err := a.cas(ctx, d.key, idn.expect, d.id.Hex()); err != nil {
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
		id, ok := cur.Current.Lookup("_id").ObjectIDOK()
		if !ok {
			a.report(s, findBadKey, "", fmt.Sprintf("a document whose _id is a %s, not an ObjectID: %s", cur.Current.Lookup("_id").Type, clip(cur.Current.Lookup("_id").String())))
			continue
		}
		key, err := a.identityKey(cur.Current, s, c)
		if err != nil {
			a.report(s, findBadKey, "", fmt.Sprintf("document %s: %s", id.Hex(), schema.Message(err)))
			continue
		}
		batch = append(batch, doc{id, key})
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
	return a.scanIdentities(ctx, s, c, coll, reported, repair, owned)
}

// markers reads the markers of s's Redis prefix (schema.MarkerKey: one per
// database and collection that a Conn used with this prefix), on every
// master of a cluster: "database.collection" → the cache family.
func (a *auditor) markers(ctx context.Context, s *runtime.Schema) (map[string]string, error) {
	head := a.ns + "pgm:{" + s.RedisPrefix + ":"
	out := map[string]string{}
	err := a.scan(ctx, schema.GlobEscape(head)+"*", func(ctx context.Context, rdb redis.Cmdable, keys []string) error {
		for _, k := range keys {
			v, err := rdb.Get(ctx, k).Result()
			if err != nil {
				continue // gone since, or not a string: no marker of ours
			}
			out[strings.TrimSuffix(strings.TrimPrefix(k, head), "}")] = v
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: markers: %w", s.Domain, err)
	}
	return out, nil
}

// checkMarkers reports a marker of this database's collection that names
// another cache family than the manifest gives the domain (processes that
// use the collection in a mode that cannot share it), and returns the
// markers.
func (a *auditor) checkMarkers(ctx context.Context, s *runtime.Schema) (map[string]string, error) {
	m, err := a.markers(ctx, s)
	if err != nil {
		return nil, err
	}
	mine := a.conn.Database().Name() + "." + s.Collection
	if got, ok := m[mine]; ok && got != schema.CacheFamily(s.Mode()) {
		a.report(s, findMode, schema.MarkerKey(a.ns, s.RedisPrefix, a.conn.Database().Name(), s.Collection),
			fmt.Sprintf("a process uses %s in a mode that keeps %s; the manifest's %s mode keeps %s: give every process the same mode, then delete the marker",
				s.Collection, got, s.Mode(), schema.CacheFamily(s.Mode())))
	}
	return m, nil
}

// owned reports whether the identity keys under s's prefix can be taken
// as this database's: its collection's marker is there and no other
// database's is. Otherwise an identity whose key has no document here may
// be another database's (two databases on one key prefix), and is
// reported, never deleted.
func (a *auditor) owned(ctx context.Context, s *runtime.Schema) (bool, error) {
	m, err := a.markers(ctx, s)
	if err != nil {
		return false, err
	}
	db := a.conn.Database().Name()
	if _, ok := m[db+"."+s.Collection]; !ok {
		return false, nil
	}
	for dc := range m {
		if !strings.HasPrefix(dc, db+".") {
			return false, nil
		}
	}
	return true, nil
}

// attributable reports whether k is an identity key this schema could
// have written: the prefix, then exactly one part per key field, each
// escaped as persistgen escapes them. Others (an older adapter's key with
// other parts, backtest-kit's key of a part holding ':', another
// program's) are left alone.
func (a *auditor) attributable(k string, s *runtime.Schema) bool {
	rest, ok := strings.CutPrefix(k, a.ns+s.RedisPrefix+":")
	if !ok {
		return false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != len(s.Key) {
		return false
	}
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			if p[i] == '%' && !strings.HasPrefix(p[i:], "%3A") && !strings.HasPrefix(p[i:], "%25") {
				return false
			}
		}
	}
	return true
}

// casScript replaces (ARGV[2]) or deletes (ARGV[2] empty) an identity only
// if it still is what the audit read (ARGV[1]): "" absent, "t" a key of
// another type, "v"+value a string holding value.
const casScript = `
local t = redis.call('TYPE', KEYS[1]).ok
local seen = ''
if t == 'string' then
  seen = 'v' .. redis.call('GET', KEYS[1])
elseif t ~= 'none' then
  seen = 't'
end
if seen ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
`

const (
	casAbsent    = ""
	casWrongType = "t"
	casValue     = "v"
)

// cas sets key to value (or deletes it, value "") if it still holds what
// the audit read.
func (a *auditor) cas(ctx context.Context, key, expect, value string) error {
	n, err := a.casLua.Run(ctx, a.rdb, []string{key}, expect, value).Int()
	if err != nil {
		return fmt.Errorf("repair %s: %w", printable(key), err)
	}
	if n == 1 {
		a.fixed++
	} else {
		a.skipped++
	}
	return nil
}

// scanIdentities walks the domain's identity keys (on every master of a
// cluster) and reports those naming no document, or another key's; keys
// the document pass reported are not reported twice.
func (a *auditor) scanIdentities(ctx context.Context, s *runtime.Schema, c *schema.Compiled, coll *mongo.Collection, reported map[string]bool, repair, owned bool) error {
	pattern := schema.GlobEscape(a.ns+s.RedisPrefix) + ":*"
	p := a.progress(s.Domain+": identities", -1)
	defer p.Done()
	unattributed := 0
	// A key without a document here is repaired only where the prefix is
	// this database's (owned): otherwise it may be another database's.
	const notOwned = "; not repaired: no document of this database has the key, and no marker shows the key prefix to be this database's alone (another database may own it)"
	check := func(ctx context.Context, rdb redis.Cmdable, all []string) error {
		var keys []string
		for _, k := range all {
			if a.attributable(k, s) {
				keys = append(keys, k)
			} else {
				unattributed++
			}
		}
		idents, err := readIdentities(ctx, rdb, keys)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Domain, err)
		}
		var list []bson.ObjectID
		for i, k := range keys {
			switch idn := idents[i]; {
			case reported[k] || idn.absent: // reported by the document pass, or gone since the scan
				continue
			case idn.problem == "":
				list = append(list, idn.id)
				continue
			default:
				if !owned {
					a.report(s, findWrongType, k, idn.problem+notOwned)
					a.unowned++
					continue
				}
				a.report(s, findWrongType, k, idn.problem+", and no document has this key")
			}
			if repair {
				if err := a.cas(ctx, k, idents[i].expect, ""); err != nil {
					return err
				}
			}
		}
		owners, err := a.owners(ctx, coll, s, c, list)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Domain, err)
		}
		for i, k := range keys {
			idn := idents[i]
			if reported[k] || idn.absent || idn.problem != "" {
				continue
			}
			own, found := owners[idn.id]
			switch {
			case !found && !owned:
				a.report(s, findMissing, k, "names "+idn.id.Hex()+", which no document has"+notOwned)
				a.unowned++
				continue
			case !found:
				a.report(s, findMissing, k, "names "+idn.id.Hex()+", which no document has")
			case own != k:
				a.report(s, findOtherKey, k, "names "+idn.id.Hex()+", the document of "+own)
			default:
				continue
			}
			if repair {
				if err := a.cas(ctx, k, idn.expect, ""); err != nil {
					return err
				}
			}
		}
		p.Add(len(keys))
		return nil
	}
	if err := a.scan(ctx, pattern, check); err != nil {
		return fmt.Errorf("%s: %w", s.Domain, err)
	}
	if unattributed > 0 {
		fmt.Fprintf(a.errOut, "audit %s: %d keys under %s do not parse as this domain's identities (an older adapter's, backtest-kit's of a key part holding ':', another program's): left alone\n",
			s.Domain, unattributed, printable(a.ns+s.RedisPrefix+":"))
	}
	return nil
}

// scan calls fn with each batch of keys matching pattern, on every master
// of a cluster.
func (a *auditor) scan(ctx context.Context, pattern string, fn func(context.Context, redis.Cmdable, []string) error) error {
	one := func(ctx context.Context, rdb redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := rdb.Scan(ctx, cursor, pattern, auditBatch).Result()
			if err != nil {
				return fmt.Errorf("SCAN %s: %w", printable(pattern), err)
			}
			if len(keys) > 0 {
				if err := fn(ctx, rdb, keys); err != nil {
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
		return r.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return one(ctx, m) })
	case redis.Cmdable:
		return one(ctx, r)
	}
	return fmt.Errorf("the Conn's Redis client (%T) cannot SCAN", a.rdb)
}

// owners maps each _id that has a document to its key's identity.
func (a *auditor) owners(ctx context.Context, coll *mongo.Collection, s *runtime.Schema, c *schema.Compiled, ids []bson.ObjectID) (map[bson.ObjectID]string, error) {
	out := map[bson.ObjectID]string{}
	if len(ids) == 0 {
		return out, nil
	}
	proj := bson.D{{Key: "_id", Value: 1}}
	for _, f := range s.Key {
		proj = append(proj, bson.E{Key: f.Name, Value: 1})
	}
	cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, options.Find().SetProjection(proj))
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		id, _ := cur.Current.Lookup("_id").ObjectIDOK()
		key, err := a.identityKey(cur.Current, s, c)
		if err != nil {
			key = "(an invalid key)"
		}
		out[id] = key
	}
	return out, cur.Err()
}

// identity is what a GET read under an identity key: absent; a string
// holding a 24-hex _id (id); or, in problem, why it is none. expect is
// what a repair's compare-and-set compares with.
type identity struct {
	absent  bool
	id      bson.ObjectID
	problem string
	expect  string
}

// readIdentities GETs keys in one pipeline.
func readIdentities(ctx context.Context, rdb interface{ Pipeline() redis.Pipeliner }, keys []string) ([]identity, error) {
	pipe := rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	_, _ = pipe.Exec(ctx) // per command errors below
	out := make([]identity, len(keys))
	for i, cmd := range cmds {
		v, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
			out[i] = identity{absent: true, expect: casAbsent}
		case err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE"):
			out[i] = identity{problem: "not a string", expect: casWrongType}
		case err != nil:
			return nil, fmt.Errorf("GET %s: %w", printable(keys[i]), err)
		default:
			out[i].expect = casValue + v
			if out[i].id, err = bson.ObjectIDFromHex(v); err != nil {
				out[i].problem = fmt.Sprintf("holds %q, not a 24-hex _id", clip(v))
			}
		}
	}
	return out, nil
}

// identityKey is the identity key of a document's key, or why its key
// fields make none.
func (a *auditor) identityKey(raw bson.Raw, s *runtime.Schema, c *schema.Compiled) (string, error) {
	vals, err := docKey(raw, s)
	if err == nil {
		vals, err = c.Values(vals)
	}
	if err != nil {
		return "", err
	}
	return c.RedisKey(a.ns, vals), nil
}

// docKey reads a document's key fields in key order.
func docKey(raw bson.Raw, s *runtime.Schema) ([]any, error) {
	vals := make([]any, len(s.Key))
	for i, f := range s.Key {
		v, err := raw.LookupErr(f.Name)
		if err != nil {
			// Optional fields too: the runtime writes "" and finds rows by
			// it, so a row without the field is not the key's.
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
	fmt.Fprintf(a.out, "%s\t%s\t%s\t%s\n", s.Domain, kind, printable(key), detail)
}

// printable quotes a key holding a tab, a line break or another control
// character (or invalid UTF-8), so that a key cannot forge a report line.
func printable(k string) string {
	if !utf8.ValidString(k) || strings.IndexFunc(k, unicode.IsControl) >= 0 {
		return strconv.Quote(k)
	}
	return k
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

// findGap is a hole in a key's version numbers (two faulted writes in a
// row on one key): reported only.
const findGap = "version-gap"

// findVersion is a row whose version the domain's history lacks: its
// writer died between its row and its version (or the row predates
// history), and no write of the key has recorded it since.
const findVersion = "version-missing"

// auditHistory checks that every row of a domain with history has its
// version in the history collection; with repair, records the missing
// ones (runtime's RepairHistory: insert-only, so a repair never changes a
// recorded version).
func (a *auditor) auditHistory(ctx context.Context, s *runtime.Schema) error {
	gaps, versions, err := a.conn.VersionGaps(ctx, s, 100)
	if err != nil {
		return err
	}
	for _, g := range gaps {
		a.report(s, findGap, g.Key, fmt.Sprintf("versions %d to %d are missing between recorded ones; not repairable (no copy of those rows is left)", g.From, g.To))
	}
	if len(gaps) > 0 {
		fmt.Fprintf(a.errOut, "audit %s: %d versions read, %d holes in their numbers (at most 100 listed)\n", s.Domain, versions, len(gaps))
	}
	// One pass over the rows either way: -repair records what is missing
	// (insert-only upserts, so what it records is what was missing).
	if a.repair {
		rows, recorded, err := a.conn.RepairHistory(ctx, s)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.errOut, "audit %s: %d rows, %d without their version in %s\n", s.Domain, rows, recorded, s.HistoryCollection())
		if recorded > 0 {
			a.found[findVersion] += recorded
			a.fixed += recorded
			a.historyFixed += recorded
			fmt.Fprintf(a.out, "%s\t%s\t%d rows\trecorded %d versions in %s\n", s.Domain, findVersion, recorded, recorded, s.HistoryCollection())
		}
		return nil
	}
	rows, missing, err := a.conn.MissingVersions(ctx, s)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.errOut, "audit %s: %d rows, %d without their version in %s\n", s.Domain, rows, missing, s.HistoryCollection())
	if missing > 0 {
		a.found[findVersion] += missing
		fmt.Fprintf(a.out, "%s\t%s\t%d rows\tversions missing from %s (-repair records them)\n", s.Domain, findVersion, missing, s.HistoryCollection())
	}
	return nil
}
