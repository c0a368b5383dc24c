package schema

import (
	"errors"
	"fmt"
)

// Sentinel errors of the contract. The runtime re-exports them, so callers
// test either name with errors.Is.
var (
	// ErrInvalidKey: a key part is missing, empty, of the wrong type or not
	// valid UTF-8.
	ErrInvalidKey = errors.New("invalid key")
	// ErrSchema: a domain description is inconsistent.
	ErrSchema = errors.New("invalid schema")
	// ErrUnavailable: MongoDB (or Redis, where it is required) did not
	// answer.
	ErrUnavailable = errors.New("server unavailable")
	// ErrUnauthorized: a server answered and refused: wrong credentials, or
	// a user without a privilege the runtime needs (docs/security.md,
	// "Least privilege"). Never retried: waiting does not fix credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotInvalidated: a write to a value- or local-mode domain is
	// stored, but the caller's context ended before the cache could be
	// brought up to date; other processes may read the previous row for a
	// bounded time, which the error's text gives. The write itself
	// succeeded.
	ErrNotInvalidated = errors.New("stored, cache not invalidated")
)

// DetailError attaches a sentinel to a specific message: errors.Is sees the
// sentinel while the text says what is wrong and what to do.
type DetailError struct {
	Kind error
	Msg  string
}

func (e *DetailError) Error() string { return e.Kind.Error() + ": " + e.Msg }
func (e *DetailError) Unwrap() error { return e.Kind }

// Errorf returns a DetailError of kind with a formatted message.
func Errorf(kind error, format string, args ...any) error {
	return &DetailError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Message returns a DetailError's message without its kind, so that an
// error wrapped with another message does not name its kind twice; any
// other error's text as is.
func Message(err error) string {
	var d *DetailError
	if errors.As(err, &d) {
		return d.Msg
	}
	return err.Error()
}
