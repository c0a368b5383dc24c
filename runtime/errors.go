package runtime

import (
	"errors"
	"strings"

	"github.com/persistgen/persistgen/schema"
)

// Sentinel errors. Every error the runtime returns wraps one of these (or a
// driver error) inside an *OpError, so callers test them with errors.Is.
var (
	// ErrNotFound: no document for the key (or it is soft-removed, or its
	// when is later than an as-of read allows).
	ErrNotFound = errors.New("not found")
	// ErrInvalidKey: a key part is missing, empty, of an unsupported type or
	// not valid UTF-8 (the same value as schema.ErrInvalidKey).
	ErrInvalidKey = schema.ErrInvalidKey
	// ErrInvalidArgument: an argument other than the key is wrong (a when on a
	// domain that has none, a missing when, an oversized payload...).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnavailable: MongoDB (or Redis, where it is required: a strict
	// cache mode's write) did not answer. The same value as
	// schema.ErrUnavailable.
	ErrUnavailable = schema.ErrUnavailable
	// ErrUnauthorized: a server answered and refused: wrong credentials, or
	// a user without a privilege the runtime needs (docs/security.md,
	// "Least privilege"). Never retried: waiting does not fix credentials.
	// The same value as schema.ErrUnauthorized.
	ErrUnauthorized = schema.ErrUnauthorized
	// ErrNotInvalidated: a write to a value- or local-mode domain is
	// stored, but the caller's context ended before the cache could be
	// brought up to date; other processes may read the previous row for a
	// bounded time, which the error's text gives. The write itself
	// succeeded. The same value as schema.ErrNotInvalidated.
	ErrNotInvalidated = schema.ErrNotInvalidated
	// ErrIndexMissing: a write was refused because its collection's unique
	// index does not exist and the Conn may not create it
	// (Config.DisableAutoIndexes, or a user without createIndex). Run
	// `persistgen-ops plan -apply` or EnsureIndexes once.
	ErrIndexMissing = errors.New("unique index missing")
	// ErrIndexConflict: an index with the wanted name exists with another
	// definition. The runtime never drops or changes indexes on its own.
	ErrIndexConflict = errors.New("index conflict")
	// ErrHistoryPending: a write to a domain with history changed its row,
	// but its version could not be recorded in the history collection.
	// The write is not acknowledged; the row stands, and its version is
	// recorded by the key's next write or by `persistgen-ops audit`
	// (docs/history.md).
	ErrHistoryPending = errors.New("stored, version not recorded")
	// ErrSchema: a domain description is inconsistent (schema.ErrSchema).
	ErrSchema = schema.ErrSchema
)

// OpError carries the operation, the domain and the key of a failed call.
type OpError struct {
	Op     string // e.g. "Get", "PutMany", "ready"
	Domain string // e.g. "signal"; empty for connection-level operations
	Key    string // the key parts joined with "/"; empty for batches and connection-level operations
	Err    error
}

func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("persistgen: ")
	if e.Domain != "" {
		b.WriteString(e.Domain)
		b.WriteByte('.')
	}
	b.WriteString(e.Op)
	if e.Key != "" {
		b.WriteString(" [")
		b.WriteString(e.Key)
		b.WriteByte(']')
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *OpError) Unwrap() error { return e.Err }

// errorf attaches a sentinel to a specific message (schema.DetailError), so
// that errors.Is sees the sentinel while the text says what is wrong and
// what to do.
func errorf(kind error, format string, args ...any) error {
	return schema.Errorf(kind, format, args...)
}

// causeError pairs a sentinel (ErrUnavailable) with the error that caused
// it, so that errors.Is and errors.As see both.
type causeError struct {
	kind  error
	cause error
}

func (e *causeError) Error() string { return e.kind.Error() + ": " + e.cause.Error() }
func (e *causeError) Unwrap() []error {
	return []error{e.kind, e.cause}
}
