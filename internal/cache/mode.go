package cache

import (
	"context"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/schema"
)

// Mode is one domain's cache: what a repository asks of Redis around its
// MongoDB reads and writes. Each cache mode (schema.CacheMode) is a type
// of its own: None, Identity and Value (which serves the value and the
// local modes). A repository holds one Mode and calls every method, in
// every mode; a mode that has nothing to do for a call does nothing.
//
// Reads: Read, then, unless it was a hit, one MongoDB read whose answer
// goes to Found (a row, or nil for none) or Failed (an error).
// Writes: Begin before the MongoDB write and End after it, whatever its
// outcome; Remember after a write or a batch read that learnt rows' _ids.
type Mode interface {
	// Kind is the mode's name in the manifest.
	Kind() schema.CacheMode
	// Key is the Redis key that caches the row with key values vals (""
	// in mode none). prefix-free: the values only.
	Key(vals []any) string
	// Read says what the cache knows of the row under key.
	Read(ctx context.Context, key string) Lookup
	// Found tells the cache what MongoDB answered for a Lookup that was
	// not a hit: the row, or nil when there is none.
	Found(ctx context.Context, key string, l Lookup, raw bson.Raw)
	// Failed tells the cache MongoDB's read for l failed.
	Failed(key string, l Lookup)
	// Identities returns the _ids Redis remembers for keys (identity
	// mode; none otherwise): found[i] is false where it has none.
	Identities(ctx context.Context, keys []string) (ids []bson.ObjectID, found []bool)
	// Remember stores identities and forgets stale ones (identity mode).
	Remember(ctx context.Context, set []Identity, forget []string)
	// Begin is called before a write of the rows under keys, End after
	// it with the write's error (which End returns unless it has a worse
	// one: ErrNotInvalidated when the write is stored but the cache could
	// not be brought up to date) and, for a single-key write that
	// returned its row, that row. An error from Begin (a strict mode that
	// could not mark the keys: a *MarkError) means the write must not be
	// sent, and End is not called.
	Begin(ctx context.Context, keys []string) (Write, error)
	End(ctx context.Context, w Write, werr error, row bson.Raw) error
	// KeepsRows reports whether End keeps the row a write returned: a
	// write then asks the server for the whole row, not only its _id.
	KeepsRows() bool
}

// Lookup is what the cache knew of one row before MongoDB was asked.
type Lookup struct {
	// Hit: the cache answered (value and local modes): Absent, or Raw.
	Hit    bool
	Absent bool
	Raw    bson.Raw
	// Decoded is shared by the hits on one in-process copy (local mode):
	// the first decodes Raw and keeps the record there; nil otherwise.
	Decoded *atomic.Pointer[any]
	// ID is the _id Redis remembers for the key (identity mode, HasID):
	// a hint, which the reader checks against MongoDB with the key.
	ID    bson.ObjectID
	HasID bool

	// Err, when set, is why the read must fail: the caller's context
	// ended while the cache waited for Redis (a *WaitError).
	Err error

	token string // the lease to fill (value and local modes)
	stamp uint64 // the local tier's stamp before READ
}

// Identity is a key's remembered _id.
type Identity struct {
	Key string
	ID  bson.ObjectID
}

// Write is a write's side in the cache, from Begin to End.
type Write struct {
	keys  []string
	token string // names the write in the keys' marks
	began bool
	// unsent: the caller's ctx ended before the write was sent (during
	// the wait for other processes' copies): its outcome is known.
	unsent bool
	epoch  int64
	alone  bool
	t0     int64 // BEGIN's Redis time, ms
	// until is when the marks may lapse, on this process's clock (zero:
	// no mark): the write must be sent, retries and all, before then.
	until time.Time
}

// Deadline is when the write's marks may lapse (ok false: it has none):
// a write still in flight after it could land unseen by the protocol, so
// the caller bounds its MongoDB calls, retries included, by it.
func (w Write) Deadline() (time.Time, bool) { return w.until, !w.until.IsZero() }

// Unsent reports whether the caller's context ended during Begin's wait,
// before the write could be sent: the write must not be sent then.
func (w Write) Unsent() bool { return w.unsent }

// None is mode none: Redis holds nothing; every call does nothing.
type None struct{}

var _ Mode = None{}

func (None) Kind() schema.CacheMode                                       { return schema.CacheNone }
func (None) Key([]any) string                                             { return "" }
func (None) Read(context.Context, string) Lookup                          { return Lookup{} }
func (None) Found(context.Context, string, Lookup, bson.Raw)              {}
func (None) Failed(string, Lookup)                                        {}
func (None) Remember(context.Context, []Identity, []string)               {}
func (None) Begin(context.Context, []string) (Write, error)               { return Write{}, nil }
func (None) End(_ context.Context, _ Write, werr error, _ bson.Raw) error { return werr }
func (None) KeepsRows() bool                                              { return false }
func (None) Identities(_ context.Context, keys []string) ([]bson.ObjectID, []bool) {
	return make([]bson.ObjectID, len(keys)), make([]bool, len(keys))
}
