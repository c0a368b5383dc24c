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
