package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/persistgen/persistgen/internal/cache"
	"github.com/persistgen/persistgen/schema"
)

// What a Conn makes sure of, once per collection, before the collection's
// first operation: that every Repo on it keeps its cache by the same
// protocol (this Conn's Repos at construction; other processes through a
// marker in Redis), and, before the first write, that its unique index
// exists, so that racing upserts of one new key cannot leave two rows.

// collection is what a Conn knows of one collection its Repos use.
type collection struct {
	name   string
	domain string           // the first domain that claimed it
	mode   schema.CacheMode // that domain's mode
	s      *Schema

	turn    chan struct{} // held while prepare makes sure of either (a lock a caller's context can leave)
	marked  atomic.Bool   // the marker was checked (or there is no Redis)
	indexed atomic.Bool   // the unique index was made sure of
}

// claim registers s's collection for a Repo, refusing a cache mode of
// another family than a Repo of this Conn already uses on it.
func (c *Conn) claim(s *Schema) (*collection, error) {
	c.collsMu.Lock()
	defer c.collsMu.Unlock()
	if c.colls == nil {
		c.colls = make(map[string]*collection)
	}
	if cl, ok := c.colls[s.Collection]; ok {
		if (cl.mode == schema.CacheSeries) != (s.Mode() == schema.CacheSeries) {
			return nil, errorf(ErrInvalidArgument,
				"collection %s is cached in %s mode by domain %s on this Conn; the series mode keeps elements in memory on the promise that nothing overwrites or removes them, which a Repo in %s mode could break: give both domains the series mode",
				s.Collection, cl.mode, cl.domain, s.Mode())
		}
		if (cl.s.History == nil) != (s.History == nil) {
			with, without := cl.domain, s.Domain
			if cl.s.History == nil {
				with, without = s.Domain, cl.domain
			}
			return nil, errorf(ErrInvalidArgument,
				"collection %s is used by domain %s, which keeps history, and domain %s, which does not, on this Conn: the second's writes would change rows without recording their versions; give both the same history block",
				s.Collection, with, without)
		}
		if schema.CacheFamily(cl.mode) != schema.CacheFamily(s.Mode()) {
			return nil, errorf(ErrInvalidArgument,
				"collection %s is cached in %s mode by domain %s on this Conn; a Repo in %s mode beside it would serve rows the other's writes do not invalidate: give both domains the same cache mode (identity and none mix, value and local mix)",
				s.Collection, cl.mode, cl.domain, s.Mode())
		}
		return cl, nil
	}
	cl := &collection{name: s.Collection, domain: s.Domain, mode: s.Mode(), s: s, turn: make(chan struct{}, 1)}
	c.colls[s.Collection] = cl
	return cl, nil
}

// prepare makes sure, once, that the collection's marker agrees with this
// Repo's mode (any operation) and that its unique index exists (writes).
// Its round trips are the Conn's, not the operation's: they are neither
// counted nor traced under it (as the readiness wait's).
func (cl *collection) prepare(ctx context.Context, c *Conn, write bool) error {
	if cl.marked.Load() && (!write || cl.indexed.Load()) || ctx.Err() != nil {
		// Done; or the caller gave up already, and nothing will be sent:
		// the operation reports it as any operation does.
		return nil
	}
	select {
	case cl.turn <- struct{}{}:
		defer func() { <-cl.turn }()
	case <-ctx.Done():
		return &cache.WaitError{Addr: c.redisAddr, Stage: "another operation was making sure of the collection's marker and indexes", Err: ctx.Err()}
	}
	uctx, cancel := housekeeping(ctx)
	defer cancel()
	if !cl.marked.Load() {
		switch err := c.checkMarker(uctx, cl); {
		case err == nil:
			cl.marked.Store(true)
		case errors.Is(err, errRetryMarker):
			// Not checked (Redis out of use, or not answering): tried
			// again at the next operation. A caller whose context ended
			// meanwhile is told it waited for Redis.
			if ctx.Err() != nil {
				return &cache.WaitError{Addr: c.redisAddr, Stage: "the check of the collection's marker had not answered", Err: ctx.Err()}
			}
		default:
			return err
		}
		if c.values != nil && schema.CacheFamily(cl.mode) == "rows" {
			_ = c.values.LoadScripts(uctx) // best effort: see LoadScripts
		}
	}
	if write && !cl.indexed.Load() {
		if err := c.makeSureOfIndexes(uctx, cl.s); err != nil {
			return err
		}
		cl.indexed.Store(true)
	}
	return nil
}

// checkMarker claims the collection's marker for this mode's family (mode
// none only reads it), or finds another family there (another process uses the collection in an
// incompatible mode): an error that says which and what to do. Redis down
// is not an error here: the check is tried again at the next operation.
func (c *Conn) checkMarker(ctx context.Context, cl *collection) error {
	if c.rdb == nil {
		return nil // a Conn without Redis: nothing to check (see docs/cache-modes.md)
	}
	if !c.breaker.Usable() {
		return errRetryMarker
	}
	key, want := schema.MarkerKey(c.cfg.KeyPrefix, cl.s.RedisPrefix, c.db.Name(), cl.name), schema.CacheFamily(cl.mode)
	cctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	// Every mode claims it, none too (it keeps nothing else in Redis):
	// otherwise a process of the other family arriving later would find
	// it free.
	p := c.rdb.Pipeline()
	p.SetArgs(cctx, key, want, redis.SetArgs{Mode: "NX"})
	get := p.Get(cctx, key)
	if _, err := p.Exec(cctx); err != nil && !errors.Is(err, redis.Nil) {
		var reply redis.Error
		switch {
		case errors.As(err, &reply) && (strings.HasPrefix(err.Error(), "NOPERM") || strings.HasPrefix(err.Error(), "WRONGTYPE")):
			// Refused for good (an ACL made before the marker existed,
			// another program's value of another type there): nothing to
			// check; said once.
			c.log.Warn("persistgen: the collection's marker cannot be checked; processes of another cache mode on it would not be found out", "collection", cl.name, "key", key, "err", err)
			return nil
		case errors.As(err, &reply):
			return errRetryMarker // LOADING, READONLY, CLUSTERDOWN...: a passing state
		}
		// Judged against the caller's context, not the check's own
		// timeout: a silent Redis opens the breaker.
		c.breaker.Fail(ctx, "cache marker", "marker", err)
		return errRetryMarker
	}
	if got := get.Val(); got != want {
		return errorf(ErrInvalidArgument,
			"collection %s is marked in Redis (%s) as used by a process whose cache keeps %s, and this Repo's %s mode keeps %s: one of them would serve rows the other's writes do not invalidate. Give every process the same cache mode for %s; once no process uses the old mode, delete %s",
			cl.name, key, got, cl.mode, want, cl.s.Domain, key)
	}
	return nil
}

// errRetryMarker is not returned to callers: prepare leaves the marker
// unchecked for the next operation when Redis failed.
var errRetryMarker = errors.New("marker not checked")

// makeSureOfIndexes makes sure, before a first write, that the
// collection's unique index exists: it creates the missing indexes
// (create-only, as EnsureIndexes) unless Config.DisableAutoIndexes or the
// user may not create indexes, and refuses the write when the unique index
// is missing or conflicts. Only the unique index decides: a conflict on
// another index, or a failure to create one, is logged and the write goes
// on (EnsureIndexes and persistgen-ops plan report them).
func (c *Conn) makeSureOfIndexes(ctx context.Context, s *Schema) error {
	if c.indexed(s.Collection) {
		return nil
	}
	bctx, cancel := c.bound(ctx, 0)
	defer cancel()
	steps, err := c.planIndexes(bctx, s)
	if err != nil {
		return err
	}
	// Each collection's unique index decides (the rows' one, and the
	// versions' one of a domain with history).
	var uniques []*PlanStep
	create := map[string][]mongo.IndexModel{}
	uniqueOnly := map[string][]mongo.IndexModel{}
	for i, st := range steps {
		switch {
		case st.unique:
			uniques = append(uniques, &steps[i])
		case st.Action == PlanConflict:
			c.log.Warn("persistgen: an index of the wanted name has another definition; writes go on (persistgen-ops plan reports it)", "collection", st.Collection, "index", st.Name, "detail", st.Detail)
			continue
		}
		if st.Action == PlanCreate {
			create[st.Collection] = append(create[st.Collection], st.model)
			if st.unique {
				uniqueOnly[st.Collection] = append(uniqueOnly[st.Collection], st.model)
			}
		}
	}
	missing := false
	for _, u := range uniques {
		if u.Action == PlanConflict {
			return errorf(ErrIndexConflict, "%s", u.Detail)
		}
		missing = missing || u.Action == PlanCreate
	}
	if len(uniques) == 0 {
		return fmt.Errorf("%s has no unique index in its schema", s.Domain) // not reached: every schema has one
	}
	if !missing && (len(create) == 0 || c.cfg.DisableAutoIndexes) {
		c.setIndexed(s.Collection)
		return nil
	}
	why := "this Conn does not create indexes (Config.DisableAutoIndexes)"
	if !c.cfg.DisableAutoIndexes {
		var err error
		for _, coll := range []string{s.Collection, s.HistoryCollection()} {
			if len(create[coll]) == 0 || err != nil {
				continue
			}
			if _, err = c.db.Collection(coll).Indexes().CreateMany(bctx, create[coll]); err != nil && len(uniqueOnly[coll]) > 0 && len(uniqueOnly[coll]) < len(create[coll]) {
				// An index the server cannot build (a TTL index on FerretDB
				// v1) must not keep the one that decides from being built.
				c.log.Warn("persistgen: an index could not be created; writes go on (persistgen-ops plan reports it)", "collection", coll, "err", c.secrets.scrub(err))
				_, err = c.db.Collection(coll).Indexes().CreateMany(bctx, uniqueOnly[coll])
			}
		}
		names := keyNames(s)
		switch {
		case err == nil:
			c.setIndexed(s.Collection)
			return nil
		case !missing:
			// The unique indexes are there; another failed: said, not fatal.
			c.log.Warn("persistgen: an index could not be created; writes go on (persistgen-ops plan reports it)", "collection", s.Collection, "err", c.secrets.scrub(err))
			c.setIndexed(s.Collection)
			return nil
		case (lostRace(err) == raceDuplicate || isDuplicateKeyIndexBuild(err)) && s.History != nil:
			return errorf(ErrIndexMissing, "a unique index of %s (on %s) or of its history %s (on %s, %s) cannot be built: the collection holds documents that share a key (%v). Find them (persistgen-ops audit reports the rows' duplicate-key; the versions' by hand), keep one of each, then retry",
				s.Collection, names, s.HistoryCollection(), names, FieldVersion, c.secrets.scrub(err))
		case lostRace(err) == raceDuplicate || isDuplicateKeyIndexBuild(err):
			return errorf(ErrIndexMissing, "a unique index of %s on (%s) cannot be built: the collection holds rows that share a key (%v). Find them with `persistgen-ops audit` (duplicate-key), keep one row of each key, then retry",
				s.Collection, names, c.secrets.scrub(err))
		case !isUnauthorized(err) && !errors.Is(err, ErrUnauthorized):
			return err
		}
		why = fmt.Sprintf("this Conn's user may not create it (%v)", c.secrets.scrub(err))
	}
	what := "the unique index of " + s.Collection + " on (" + keyNames(s) + ")"
	if s.History != nil {
		what = "a unique index of " + s.Collection + " or of its history " + s.HistoryCollection()
	}
	return errorf(ErrIndexMissing, "%s is missing and %s; without it, racing writers of one new key leave duplicate rows: run `persistgen-ops plan -apply` (or call EnsureIndexes) once, then retry",
		what, why)
}

// isDuplicateKeyIndexBuild reports a unique index build refused because
// rows share a key: MongoDB's E11000, DocumentDB's exclusion constraint,
// FerretDB v1's SQLite and PostgreSQL unique constraints (each server
// words it its own way).
func isDuplicateKeyIndexBuild(err error) bool {
	var se mongo.ServerError
	if errors.As(err, &se) && se.HasErrorCode(11000) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"could not create exclusion constraint", "could not create unique index", "UNIQUE constraint failed", "duplicate key"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// indexed and setIndexed record collections whose indexes were made sure
// of (by EnsureIndexes or before a first write).
func (c *Conn) indexed(collection string) bool {
	c.collsMu.Lock()
	defer c.collsMu.Unlock()
	return c.indexedColls[collection]
}

func (c *Conn) setIndexed(collection string) {
	c.collsMu.Lock()
	defer c.collsMu.Unlock()
	if c.indexedColls == nil {
		c.indexedColls = make(map[string]bool)
	}
	c.indexedColls[collection] = true
}

// keyNames lists the key fields of s, for messages.
func keyNames(s *Schema) string {
	names := make([]string, len(s.Key))
	for i, k := range s.Key {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}
