package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

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

	mu      sync.Mutex  // held while prepare makes sure of either
	marked  atomic.Bool // the marker was checked (or there is no Redis)
	indexed atomic.Bool // the unique index was made sure of
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
		if schema.CacheFamily(cl.mode) != schema.CacheFamily(s.Mode()) {
			return nil, errorf(ErrInvalidArgument,
				"collection %s is cached in %s mode by domain %s on this Conn; a Repo in %s mode beside it would serve rows the other's writes do not invalidate: give both domains the same cache mode (identity and none mix, value and local mix)",
				s.Collection, cl.mode, cl.domain, s.Mode())
		}
		return cl, nil
	}
	cl := &collection{name: s.Collection, domain: s.Domain, mode: s.Mode(), s: s}
	c.colls[s.Collection] = cl
	return cl, nil
}

// prepare makes sure, once, that the collection's marker agrees with this
// Repo's mode (any operation) and that its unique index exists (writes).
// Its round trips are the Conn's, not the operation's: they are neither
// counted nor traced under it (as the readiness wait's).
func (cl *collection) prepare(ctx context.Context, c *Conn, write bool) error {
	if cl.marked.Load() && (!write || cl.indexed.Load()) {
		return nil
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	uctx, cancel := housekeeping(ctx)
	defer cancel()
	if !cl.marked.Load() {
		switch err := c.checkMarker(uctx, cl); {
		case err == nil:
			cl.marked.Store(true)
		case !errors.Is(err, errRetryMarker):
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
	if c.rdb == nil || !c.breaker.Usable() {
		return nil
	}
	key, want := schema.MarkerKey(c.cfg.KeyPrefix, cl.s.RedisPrefix, c.db.Name(), cl.name), schema.CacheFamily(cl.mode)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	// Mode none keeps nothing in Redis, its marker neither: it only looks.
	p := c.rdb.Pipeline()
	if cl.mode != schema.CacheNone {
		p.SetArgs(ctx, key, want, redis.SetArgs{Mode: "NX"})
	}
	get := p.Get(ctx, key)
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		var reply redis.Error
		if errors.As(err, &reply) {
			// Redis refused (an ACL without the marker's key, another
			// program's value of another type there): nothing to check.
			return nil
		}
		c.breaker.Fail(ctx, "cache marker", "marker", err)
		return errRetryMarker
	}
	if got := get.Val(); got != want && (got != "" || cl.mode != schema.CacheNone) {
		return errorf(ErrInvalidArgument,
			"collection %s is marked in Redis (%s) as used by a process whose cache keeps %s, and this Repo's %s mode keeps %s: one of them would serve rows the other's writes do not invalidate. Give every process the same cache mode for %s; once no process uses the old mode, delete %s",
			cl.name, key, got, cl.mode, want, cl.s.Domain, key)
	}
	return nil
}

// errRetryMarker is not returned to callers: prepare leaves the marker
// unchecked for the next operation when Redis failed.
var errRetryMarker = errors.New("marker not checked")

// makeSureOfIndexes creates the collection's missing indexes (create-only,
// as EnsureIndexes) unless Config.DisableAutoIndexes, or the user may not
// create indexes; then it checks that the unique index exists, and refuses
// the write when it does not.
func (c *Conn) makeSureOfIndexes(ctx context.Context, s *Schema) error {
	if c.indexed(s.Collection) {
		return nil
	}
	var createErr error
	if !c.cfg.DisableAutoIndexes {
		if createErr = c.ensure(ctx, s); createErr == nil {
			c.setIndexed(s.Collection)
			return nil
		}
		if errors.Is(createErr, ErrIndexConflict) || !isUnauthorized(createErr) && !errors.Is(createErr, ErrUnauthorized) {
			return createErr
		}
	}
	bctx, cancel := c.bound(ctx, 0)
	defer cancel()
	steps, err := c.planIndexes(bctx, s)
	if err != nil {
		return err
	}
	for _, st := range steps {
		if st.unique && (st.Action == PlanOK || st.Action == PlanOther) {
			c.setIndexed(s.Collection)
			return nil
		}
	}
	why := "this Conn does not create indexes (Config.DisableAutoIndexes)"
	if createErr != nil {
		why = fmt.Sprintf("this Conn's user may not create it (%v)", createErr)
	}
	names := make([]string, len(s.Key))
	for i, k := range s.Key {
		names[i] = k.Name
	}
	return errorf(ErrIndexMissing, "the unique index of %s on (%s) is missing and %s; without it, racing writers of one new key leave duplicate rows: run `persistgen-ops plan -apply` (or call EnsureIndexes) once, then retry",
		s.Collection, strings.Join(names, ", "), why)
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
