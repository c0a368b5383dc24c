package runtime

import (
	"errors"
	"iter"
)

// PayloadOf unwraps the result of Get or GetAsOf: the payload and true for
// a row, the zero value and false (and no error) for ErrNotFound.
func PayloadOf[K Key, P any](rec Record[K, P], err error) (P, bool, error) {
	var zero P
	if errors.Is(err, ErrNotFound) {
		return zero, false, nil
	}
	if err != nil {
		return zero, false, err
	}
	return rec.Payload, true, nil
}

// Payloads drains a list into its payloads; capHint sizes the slice (the
// list's limit), sparing the copies of a growing slice.
func Payloads[K Key, P any](seq iter.Seq2[Record[K, P], error], capHint int) ([]P, error) {
	out := make([]P, 0, max(capHint, 0))
	for rec, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, rec.Payload)
	}
	return out, nil
}

// NewestFirst sorts a list by creation, newest first.
func NewestFirst() []SortField { return []SortField{{Field: FieldCreateDate, Desc: true}} }
