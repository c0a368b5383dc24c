// Package gen turns a persistgen manifest (domains.yaml) into typed Go code
// in three steps: Parse reads the YAML into a Manifest, exactly as written;
// Resolve checks it and returns an immutable Spec (types resolved, defaults
// applied, each domain's family decided); Generate renders a Spec. Load is
// Parse then Resolve. Generation is a pure function: only cmd/persistgen
// writes to disk.
package gen

// Manifest is a domains.yaml as written: Parse fills it, Resolve reads it
// (and never changes it). A Manifest may also be built in code.
type Manifest struct {
	// File is the name errors report positions in.
	File    string
	Version int
	// Package is the Go package name of the generated code.
	Package string
	Types   []*TypeDecl
	Domains []*Domain
	// parsed: Parse made it, and has checked Version already.
	parsed bool
}

// Pos is a position in the manifest.
type Pos struct{ Line, Col int }

// TypeDecl declares a payload type: the generator emits a struct.
type TypeDecl struct {
	Pos  Pos
	Name string
	Doc  string
	// Include copies the fields of other declared types first (a storage row
	// is a signal row plus a few fields).
	Include []string
	Fields  []*Field
	// KeepUnknown adds an inline map that keeps fields this type does not
	// name, so what another engine wrote survives a Go write. Parse sets it
	// unless the YAML says keep_unknown: false; a TypeDecl built in code
	// must set it itself (its zero value is false).
	KeepUnknown bool
	// Tuple encodes the struct as a BSON array of its fields in order (and
	// decodes from an array or a document): upstream's [key, value] pairs.
	Tuple bool
}

// Field is one field of a declared type.
type Field struct {
	Pos Pos
	// Name is the BSON name; GoName the Go field name (derived when empty).
	Name, GoName string
	Type         string
	Optional     bool // omitted from the document when empty
	Doc          string
	at           map[string]Pos
}

// Domain is one domain: a collection, its key, its payload and its family
// of operations.
type Domain struct {
	Pos        Pos
	Name       string
	Doc        string
	Collection string
	// Family: single, bucket, list or series.
	Family  string
	Key     []*KeyField
	Redis   Redis
	When    bool
	Removed bool
	// AsOf emits reads "as of" a time; nil means the same as When.
	AsOf    *bool
	Payload Payload
	Indexes []*IndexSpec
	List    *ListSpec
	Series  *SeriesSpec
	Cache   *CacheSpec
	Shard   *ShardSpec
	// History keeps every version of every row (nil: no history).
	History *HistorySpec
	at      map[string]Pos
}

// HistorySpec turns on a domain's version history: every write also
// records the row as it became, so that reads can ask what a reader would
// have seen at an earlier time (GetAt, History, ListAt, GetAllAt).
type HistorySpec struct {
	Pos Pos
	// Keep is how long a version is kept after it was recorded: "forever",
	// whole days ("90d") or a Go duration ("36h", "90m"); whole seconds,
	// at least an hour (schema.MinHistoryKeep). Required.
	Keep string
	at   map[string]Pos
	// parseFailed: Parse reported keep already (not a scalar).
	parseFailed bool
}

// ShardSpec is a domain's shard key on a sharded MongoDB.
type ShardSpec struct {
	Pos Pos
	// Fields: the first key fields, in key order.
	Fields []string
	// Mode: ranged (the default) or hashed (refused: see schema.ShardKey).
	Mode string
	at   map[string]Pos
}

// where returns the position of a field's value, or fallback.
func where(at map[string]Pos, field string, fallback Pos) Pos {
	if p, ok := at[field]; ok {
		return p
	}
	return fallback
}

// KeyField is one part of the unique key.
type KeyField struct {
	Pos          Pos
	Name, GoName string
	Type         string // string, bool, int64 or float64
	Optional     bool   // may be the empty string
	// Words spell a bool part in the Redis key: [true-word, false-word].
	Words []string
	at    map[string]Pos
}

// Redis describes the identity key.
type Redis struct {
	Pos    Pos
	Prefix string
	// Order lists the key fields in Redis key order (default: key order).
	Order []string
	at    map[string]Pos
}

// Payload describes what a row stores.
type Payload struct {
	Pos Pos
	// Field is the document field that holds the payload; Inline stores the
	// payload's fields at the top level instead.
	Field  string
	Inline bool
	Type   string
	// Nullable payloads may be written as nothing (a null).
	Nullable bool
	// Empty: an absent row reads as the type's empty value ([] or {}) rather
	// than nil.
	Empty bool
	at    map[string]Pos
}

// IndexSpec is an extra index; Keys are field names, "-field" for
// descending.
type IndexSpec struct {
	Pos  Pos
	Name string
	Keys []string
}

// ListSpec configures the list family.
type ListSpec struct {
	Pos Pos
	// ID is the payload field whose value is the last key field of an item.
	ID string
	// ReadLimit is how many rows a read returns at most, newest first.
	ReadLimit int
	// AppendOnly: an existing item is never overwritten.
	AppendOnly bool
}

// SeriesSpec configures the series family.
type SeriesSpec struct {
	Pos Pos
	// Axis is the last key field, the time of each element (epoch ms).
	Axis string
	// Step names the key field holding the interval between elements
	// (1m, 5m, 1h, 1d...).
	Step string
}

// CacheSpec chooses what Redis holds for a domain.
type CacheSpec struct {
	Pos Pos
	// Mode: identity (the default), none, value, local or series (insert-only
	// series family domains: identities as identity keeps them, and
	// windows served from each process's memory).
	Mode string
	// Writers: "any" (the default) or "persistgen-only", which the value
	// and local modes require: they are stale if anything else writes the
	// collection.
	Writers string
	// TTL is how long a value lives in Redis, as a Go duration ("15s");
	// value and local only.
	TTL string
	// LocalTTL is how long a process serves its own copy of a row without
	// asking Redis ("100ms"); local only.
	LocalTTL string
	// Strict (value mode; the local mode always is): a write that cannot
	// mark its keys in Redis fails before it touches MongoDB.
	Strict *bool
	// ReadAhead (series mode): how many elements past a window's end a
	// window read that goes to MongoDB fetches with it (1,000 when unset).
	ReadAhead *int
	at        map[string]Pos
}
