// Package schema is the contract the generator and the runtime share: a
// domain described as data (its key fields, index names and the rule that
// derives them, reserved field names) and the rules that turn key values
// into a filter, a Redis key and a canonical identity. It imports no
// driver, so the generator links none.
package schema

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Document field names shared by every domain.
const (
	FieldID          = "_id"
	FieldCreateDate  = "createDate"
	FieldUpdatedDate = "updatedDate"
	FieldWhen        = "when"
	FieldRemoved     = "removed"
	// FieldVersion and FieldRecorded are a history domain's bookkeeping
	// (see History): the row's version number, counted per key from 1,
	// and the time its version was recorded. Each version in the history
	// collection carries them too, with FieldRow, the _id of its row.
	FieldVersion  = "_hv"
	FieldRecorded = "_hr"
	FieldRow      = "_hrow"
)

// reserved lists the document fields persistgen manages: no key field, payload
// field or inline payload field may take one of these names.
func reserved() []string {
	return []string{FieldID, FieldCreateDate, FieldUpdatedDate, FieldWhen, FieldRemoved, FieldVersion, FieldRecorded, FieldRow}
}

// IsReserved reports whether name is one of reserved.
func IsReserved(name string) bool { return slices.Contains(reserved(), name) }

// KeyType is the type of a key field's values.
type KeyType string

// The key types. A key value is given as the Go type of the same name (int
// and int32 are taken as int64; an int for a float64 field, or an integral
// float64 for an int64 field, is converted).
const (
	TypeString  KeyType = "string"
	TypeBool    KeyType = "bool"
	TypeInt64   KeyType = "int64"
	TypeFloat64 KeyType = "float64"
)

// KeyField is one part of a domain's unique key.
type KeyField struct {
	// Name is the BSON field name.
	Name string
	// Type is the type of the field's values. Empty accepts any key type
	// (string, bool, int64 or float64) without checking it.
	Type KeyType
	// Optional allows the empty string (frameName in live mode). Other empty
	// parts are rejected with ErrInvalidKey.
	Optional bool
	// TrueWord and FalseWord spell a bool part in the Redis key ("backtest"
	// and "live" for upstream's backtest flag). "true"/"false" when empty.
	TrueWord, FalseWord string
}

// IndexKey is one field of an index.
type IndexKey struct {
	Field string
	Desc  bool
}

// Index is an index definition with an explicit, stable name.
type Index struct {
	Name   string
	Keys   []IndexKey
	Unique bool
	// ExpireAfter, when set, makes it a TTL index: the server removes a
	// document this long after the date in its (single) field.
	ExpireAfter time.Duration
}

// IndexName returns MongoDB's default name for keys ("a_1_b_-1"), the name
// Mongoose and the mongo shell give the same index, so that both engines
// create and recognise one index.
func IndexName(keys []IndexKey) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('_')
		}
		b.WriteString(k.Field)
		if k.Desc {
			b.WriteString("_-1")
		} else {
			b.WriteString("_1")
		}
	}
	return b.String()
}

// Schema describes one domain as data: the generic repository needs nothing
// else to store it.
type Schema struct {
	// Domain is the short name used in errors and statistics ("signal").
	Domain string
	// Collection is the MongoDB collection ("signal-items").
	Collection string
	// Key lists the key fields in unique-index order.
	Key []KeyField
	// RedisPrefix starts every identity key ("signal_cache").
	RedisPrefix string
	// RedisOrder lists the key field names in the order they appear in the
	// Redis key; nil means index order.
	RedisOrder []string
	// HasWhen: the domain stores the simulation time of each write.
	HasWhen bool
	// HasRemoved: the domain soft-deletes.
	HasRemoved bool
	// PayloadRemoved: the payload (a document) carries a "removed" flag of
	// its own, as upstream's measure, interval and memory entries do; Remove
	// sets it along with the document's.
	PayloadRemoved bool
	// Payload is the field that holds the payload; empty means the payload's
	// fields are stored at the top level of the document (candles).
	Payload string
	// Indexes are extra non-unique indexes beyond the ones every domain gets.
	Indexes []Index
	// Cache is what Redis holds for the domain (CacheIdentity when empty).
	Cache CacheMode
	// CacheTTL is how long a value lives in a CacheValue or CacheLocal
	// domain's Redis cache (DefaultCacheTTL when zero). A write that cannot
	// reach Redis to invalidate waits it out before returning.
	CacheTTL time.Duration
	// Shard, when set, is how the collection is sharded on a sharded
	// MongoDB (see ShardKey and Validate's rules).
	Shard *ShardKey
	// LocalTTL is how long a process may serve its in-process copy of a
	// CacheLocal row without asking Redis (DefaultLocalTTL when zero). A
	// write waits until every other process's copy has expired, at most
	// this long, before it commits.
	LocalTTL time.Duration
	// CacheStrict (value mode): a write that cannot mark its keys in Redis
	// fails, with ErrUnavailable, before it touches MongoDB, so that reads
	// stay linearizable while Redis is unreachable, at the cost of writes.
	// Without it, such a write goes ahead unmarked and, after its commit,
	// waits until it has invalidated the row or the TTL has passed. The
	// local mode is always strict.
	CacheStrict bool
	// SeriesReadAhead (series mode): how many elements past a window's end
	// a window read that goes to MongoDB fetches with it
	// (DefaultSeriesReadAhead when zero; Config.SeriesReadAhead overrides
	// it per Conn).
	SeriesReadAhead int
	// History, when set, keeps every version of every row: each write
	// also records the row as it became in HistoryCollection, numbered
	// per key, with the time it was recorded, so that reads can ask what
	// a reader would have seen at an earlier time (see History).
	History *History
}

// History is a domain's version history: how long versions are kept.
type History struct {
	// Keep is how long a version is kept after it was recorded (a TTL
	// index removes older ones); zero keeps every version forever.
	Keep time.Duration
}

// HistorySuffix names a domain's history collection after its own.
const HistorySuffix = "-history"

// HistoryCollection is the collection of the domain's versions
// ("signal-items-history"), or "" when the domain keeps no history.
func (s *Schema) HistoryCollection() string {
	if s.History == nil {
		return ""
	}
	return s.Collection + HistorySuffix
}

// MinHistoryKeep bounds a chosen History.Keep from below: a version must
// outlive the writes that may still repair it.
const MinHistoryKeep = time.Hour

// HistoryIndexes are the indexes of the history collection: one version
// per key and number (unique; every versioned read walks it newest
// first), and, with a Keep, the TTL index on the recorded time.
func (s *Schema) HistoryIndexes() []Index {
	if s.History == nil {
		return nil
	}
	keys := make([]IndexKey, 0, len(s.Key)+1)
	for _, k := range s.Key {
		keys = append(keys, IndexKey{Field: k.Name})
	}
	keys = append(keys, IndexKey{Field: FieldVersion, Desc: true})
	out := []Index{{Name: IndexName(keys), Keys: keys, Unique: true}}
	if s.History.Keep > 0 {
		k := []IndexKey{{Field: FieldRecorded}}
		out = append(out, Index{Name: IndexName(k), Keys: k, ExpireAfter: s.History.Keep})
	}
	return out
}

// Strict reports whether a write that cannot mark its keys fails before it
// touches MongoDB (CacheStrict, and the local mode always).
func (s *Schema) Strict() bool {
	return s.Mode() == CacheLocal || s.CacheStrict && s.Mode() == CacheValue
}

// ShardKey is a domain's shard key: Fields, in order, ranged (ascending)
// or Hashed. MongoDB keeps a unique index on a sharded collection only
// when the shard key is ranged and a prefix of the index, so Fields must
// be the first key fields in key order and Hashed is refused (every domain
// has its unique compound key). Every filter the runtime sends names every
// key field, so upserts always carry the whole shard key.
type ShardKey struct {
	Fields []string
	Hashed bool
}

// ShardCheck reports why k cannot shard a collection whose unique key is
// keys (in order), or "".
func ShardCheck(k ShardKey, keys []string) string {
	switch {
	case len(k.Fields) == 0:
		return "a shard key needs fields: the first fields of the key, in order"
	case k.Hashed:
		return "a hashed shard key cannot keep the unique key: MongoDB enforces a unique index on a sharded collection only when the shard key is ranged and a prefix of it; use a ranged shard key"
	case len(k.Fields) > len(keys):
		return "the shard key has more fields than the key (" + strings.Join(keys, ", ") + "); use its first fields, in order"
	}
	for i, f := range k.Fields {
		if f != keys[i] {
			return "the shard key must be a prefix of the key (" + strings.Join(keys, ", ") + "), in order: MongoDB enforces the unique key across shards only then; field " + strconv.Itoa(i+1) + " is " + f + ", not " + keys[i]
		}
	}
	return ""
}

// CacheMode says what Redis holds for a domain.
type CacheMode string

// The cache modes.
const (
	// CacheIdentity (the default, also spelled ""): each key's document
	// _id, as upstream stores it, shared with backtest-kit. A warm read is
	// a Redis round trip and a MongoDB one.
	CacheIdentity CacheMode = "identity"
	// CacheNone: no Redis at all for the domain (candles, append-only
	// feeds: read by range queries, never by identity).
	CacheNone CacheMode = "none"
	// CacheValue: Redis holds each row's document, filled under a lease
	// and invalidated after every write, so a warm read is one Redis round
	// trip and never stale once a write has returned. Correct only when
	// every writer of the domain is persistgen.
	CacheValue CacheMode = "value"
	// CacheLocal: CacheValue with an in-process tier in front of it: a
	// read that Redis answered leaves a copy in the process, served
	// without any round trip for LocalTTL; a write waits out the other
	// processes' copies before it commits. Correct only when every writer
	// of the domain is persistgen.
	CacheLocal CacheMode = "local"
	// CacheSeries: an insert-only time series (candles). Redis keeps
	// identities as in CacheIdentity (so backtest-kit reads the same
	// keys), and each process keeps the elements its window reads
	// fetched, with SeriesReadAhead more past each window's end, and
	// answers later windows from memory. Correct because a stored element
	// never changes: the repository refuses every write but an insert.
	CacheSeries CacheMode = "series"
)

// DefaultSeriesReadAhead is how many elements past a window's end a
// CacheSeries window read fetches with it when Schema.SeriesReadAhead is
// zero; MaxSeriesReadAhead bounds a chosen one.
const (
	DefaultSeriesReadAhead = 1000
	MaxSeriesReadAhead     = 100_000
)

// DefaultCacheTTL is a CacheValue entry's life when Schema.CacheTTL is zero;
// MinCacheTTL and MaxCacheTTL bound a chosen one.
const (
	DefaultCacheTTL = 15 * time.Second
	MinCacheTTL     = 100 * time.Millisecond
	MaxCacheTTL     = 10 * time.Minute
)

// DefaultLocalTTL is a CacheLocal copy's life when Schema.LocalTTL is zero;
// MinLocalTTL and MaxLocalTTL bound a chosen one (and it must be shorter
// than the domain's CacheTTL).
const (
	DefaultLocalTTL = 100 * time.Millisecond
	MinLocalTTL     = 10 * time.Millisecond
	MaxLocalTTL     = 2 * time.Second
)

// cacheModes lists the modes a manifest may name.
func cacheModes() []CacheMode {
	return []CacheMode{CacheIdentity, CacheNone, CacheValue, CacheLocal, CacheSeries}
}

// ValueCached reports a domain whose rows Redis holds (CacheValue and
// CacheLocal).
func (s *Schema) ValueCached() bool { return s.Mode() == CacheValue || s.Mode() == CacheLocal }

// ttl is the domain's CacheTTL or its default.
func (s *Schema) ttl() time.Duration {
	if s.CacheTTL > 0 {
		return s.CacheTTL
	}
	return DefaultCacheTTL
}

// Mode returns the domain's cache mode, CacheIdentity when unset.
func (s *Schema) Mode() CacheMode {
	if s.Cache == "" {
		return CacheIdentity
	}
	return s.Cache
}

// Validate reports the first inconsistency of the description.
func (s *Schema) Validate() error {
	bad := func(format string, args ...any) error {
		return Errorf(ErrSchema, "domain %q: "+format, append([]any{s.Domain}, args...)...)
	}
	if s.Domain == "" {
		return Errorf(ErrSchema, "a schema has no Domain name")
	}
	if s.Collection == "" {
		return bad("no Collection")
	}
	if s.RedisPrefix == "" || strings.Contains(s.RedisPrefix, ":") {
		return bad("RedisPrefix %q must be non-empty and contain no ':'", s.RedisPrefix)
	}
	if len(s.Key) == 0 {
		return bad("no Key fields")
	}
	seen := map[string]bool{}
	for _, k := range s.Key {
		if k.Name == "" || strings.HasPrefix(k.Name, "$") || strings.Contains(k.Name, ".") {
			return bad("key field name %q is not a plain BSON field name", k.Name)
		}
		if IsReserved(k.Name) {
			return bad("key field %q is a reserved field name", k.Name)
		}
		if seen[k.Name] {
			return bad("key field %q listed twice", k.Name)
		}
		switch k.Type {
		case "", TypeString, TypeBool, TypeInt64, TypeFloat64:
		default:
			return bad("key field %q has type %q; use string, bool, int64 or float64", k.Name, k.Type)
		}
		seen[k.Name] = true
	}
	if s.PayloadRemoved && (!s.HasRemoved || s.Payload == "") {
		return bad("PayloadRemoved needs HasRemoved and a Payload field")
	}
	if s.Payload != "" && (seen[s.Payload] || IsReserved(s.Payload)) {
		return bad("payload field %q collides with a key or reserved field", s.Payload)
	}
	if s.RedisOrder != nil {
		if len(s.RedisOrder) != len(s.Key) {
			return bad("RedisOrder has %d fields, the key has %d: list every key field exactly once", len(s.RedisOrder), len(s.Key))
		}
		inOrder := map[string]bool{}
		for _, n := range s.RedisOrder {
			if !seen[n] || inOrder[n] {
				return bad("RedisOrder field %q is not a key field or is listed twice", n)
			}
			inOrder[n] = true
		}
	}
	for _, ix := range s.Indexes {
		if ix.Name == "" || len(ix.Keys) == 0 {
			return bad("an extra index needs a Name and Keys")
		}
	}
	if !slices.Contains(cacheModes(), s.Mode()) {
		return bad("cache mode %q: use identity, none, value, local or series", s.Cache)
	}
	if s.Mode() == CacheSeries {
		switch last := s.Key[len(s.Key)-1]; {
		case last.Type != TypeFloat64 && last.Type != TypeInt64:
			t := string(last.Type)
			if t == "" {
				t = "untyped (any type)"
			}
			return bad("the series cache mode needs the last key field to be the time axis, a number of epoch milliseconds (type float64 or int64); %q is %s", last.Name, t)
		case s.HasRemoved || s.HasWhen:
			return bad("the series cache mode keeps elements that never change: it does not apply to a domain with soft removal or a when column")
		}
	}
	if s.SeriesReadAhead != 0 && (s.Mode() != CacheSeries || s.SeriesReadAhead < 0 || s.SeriesReadAhead > MaxSeriesReadAhead) {
		return bad("SeriesReadAhead %d: it applies to the series cache mode only, from 0 to %d elements", s.SeriesReadAhead, MaxSeriesReadAhead)
	}
	if s.CacheTTL != 0 && (!s.ValueCached() || s.CacheTTL < MinCacheTTL || s.CacheTTL > MaxCacheTTL) {
		return bad("CacheTTL %s: it applies to the value and local cache modes only, from %s to %s (a write that cannot reach Redis waits it out)", s.CacheTTL, MinCacheTTL, MaxCacheTTL)
	}
	if s.Shard != nil {
		names := make([]string, len(s.Key))
		for i, k := range s.Key {
			names[i] = k.Name
		}
		if why := ShardCheck(*s.Shard, names); why != "" {
			return bad("Shard: %s", why)
		}
	}
	if s.CacheStrict && s.Mode() != CacheValue && s.Mode() != CacheLocal {
		return bad("CacheStrict applies to the value and local cache modes only (the local mode is always strict), not %s", s.Mode())
	}
	if h := s.History; h != nil && (h.Keep < 0 || h.Keep > 0 && (h.Keep < MinHistoryKeep || h.Keep%time.Second != 0)) {
		return bad("History.Keep %s: keep versions whole seconds, at least %s (zero keeps them forever)", h.Keep, MinHistoryKeep)
	}
	if s.LocalTTL != 0 && (s.Mode() != CacheLocal || s.LocalTTL < MinLocalTTL || s.LocalTTL > MaxLocalTTL || s.LocalTTL >= s.ttl()) {
		return bad("LocalTTL %s: it applies to the local cache mode only, from %s to %s and shorter than the CacheTTL (%s)", s.LocalTTL, MinLocalTTL, MaxLocalTTL, s.ttl())
	}
	return nil
}

// AllIndexes returns every index the domain needs, in a stable order: the
// unique compound key, one per key field, when and removed where present,
// then the extra indexes.
func (s *Schema) AllIndexes() []Index {
	keys := make([]IndexKey, len(s.Key))
	for i, k := range s.Key {
		keys[i] = IndexKey{Field: k.Name}
	}
	out := []Index{{Name: IndexName(keys), Keys: keys, Unique: true}}
	add := func(field string) {
		k := []IndexKey{{Field: field}}
		out = append(out, Index{Name: IndexName(k), Keys: k})
	}
	if len(s.Key) > 1 {
		for _, k := range s.Key {
			add(k.Name)
		}
	}
	if s.HasWhen {
		add(FieldWhen)
	}
	if s.HasRemoved {
		add(FieldRemoved)
	}
	return append(out, s.Indexes...)
}
