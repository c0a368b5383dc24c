package cache

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/schema"
)

// Identity mode, the default and backtest-kit's: Redis maps each key to
// its row's _id (24 hex digits, no expiry), which a read checks against
// MongoDB with the key, so that a wrong or stale identity is a miss,
// never a wrong answer. Writes change no identity but a new row's, so
// they need no invalidation. Every Redis failure is absorbed.
type identityMode struct {
	rdb    Client
	guard  guard
	prefix string
	keys   *schema.Compiled
}

// NewIdentity returns identity mode for the domain keys describes, on a
// Conn whose keys start with prefix.
func NewIdentity(rdb Client, b *Breaker, prefix string, keys *schema.Compiled) Mode {
	return &identityMode{rdb: rdb, guard: guard{b, "identity cache"}, prefix: prefix, keys: keys}
}

func (c *identityMode) Kind() schema.CacheMode { return schema.CacheIdentity }
func (c *identityMode) Key(vals []any) string  { return c.keys.RedisKey(c.prefix, vals) }
func (c *identityMode) KeepsRows() bool        { return false }

func (c *identityMode) Read(ctx context.Context, key string) Lookup {
	if !c.guard.Usable() {
		return Lookup{}
	}
	s, err := c.rdb.Get(ctx, key).Result()
	if err != nil {
		if errors.Is(err, redis.Nil) || wrongType(err) {
			c.guard.ok()
		} else {
			c.guard.fail(ctx, "get", err)
		}
		return Lookup{}
	}
	c.guard.ok()
	id, err := bson.ObjectIDFromHex(s)
	return Lookup{ID: id, HasID: err == nil}
}

// Found backfills the identity of a row found by its key, and forgets one
// that led nowhere.
func (c *identityMode) Found(ctx context.Context, key string, l Lookup, raw bson.Raw) {
	if raw == nil {
		if l.HasID {
			c.del(ctx, key)
		}
		return
	}
	if id, ok := raw.Lookup(schema.FieldID).ObjectIDOK(); ok {
		c.set(ctx, key, id)
	}
}

func (c *identityMode) Failed(string, Lookup) {}

func (c *identityMode) Begin(context.Context, []string) (Write, error) { return Write{}, nil }

func (c *identityMode) End(_ context.Context, _ Write, werr error, _ bson.Raw) error { return werr }

// set stores one identity (no expiry, as upstream).
func (c *identityMode) set(ctx context.Context, key string, id bson.ObjectID) {
	if !c.guard.Usable() {
		return
	}
	if err := c.rdb.Set(ctx, key, id.Hex(), 0).Err(); err != nil {
		c.guard.fail(ctx, "set", err)
		return
	}
	c.guard.ok()
}

func (c *identityMode) del(ctx context.Context, key string) {
	if !c.guard.Usable() {
		return
	}
	if err := c.rdb.Del(ctx, key).Err(); err != nil {
		c.guard.fail(ctx, "del", err)
		return
	}
	c.guard.ok()
}

// Identities reads many identities in one pipeline.
func (c *identityMode) Identities(ctx context.Context, keys []string) (ids []bson.ObjectID, found []bool) {
	ids = make([]bson.ObjectID, len(keys))
	found = make([]bool, len(keys))
	if len(keys) == 0 || !c.guard.Usable() {
		return ids, found
	}
	p := c.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = p.Get(ctx, k)
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) && !wrongType(err) {
		c.guard.fail(ctx, "pipeline get", err)
		return ids, found
	}
	c.guard.ok()
	for i, cmd := range cmds {
		if s, err := cmd.Result(); err == nil {
			if id, err := bson.ObjectIDFromHex(s); err == nil {
				ids[i], found[i] = id, true
			}
		}
	}
	return ids, found
}

// Remember sets and deletes identities: one command for one identity,
// else one pipeline.
func (c *identityMode) Remember(ctx context.Context, set []Identity, forget []string) {
	switch {
	case len(set) == 0 && len(forget) == 0:
		return
	case len(set) == 1 && len(forget) == 0:
		c.set(ctx, set[0].Key, set[0].ID)
		return
	case !c.guard.Usable():
		return
	}
	p := c.rdb.Pipeline()
	for _, e := range set {
		p.Set(ctx, e.Key, e.ID.Hex(), 0)
	}
	for _, k := range forget {
		p.Del(ctx, k)
	}
	if _, err := p.Exec(ctx); err != nil {
		c.guard.fail(ctx, "pipeline set", err)
		return
	}
	c.guard.ok()
}
