package runtime

import (
	"fmt"
	"strings"
)

// Outcome is what became of one item of a batch write (PutMany,
// InsertMany).
type Outcome uint8

const (
	// Stored: the item is stored. For InsertMany: inserted by this call.
	Stored Outcome = iota + 1
	// Kept: InsertMany only: the key already had a row (written before, or
	// by an earlier item of the same call), and that row was kept, first
	// writer wins. Not a failure.
	Kept
	// NotStored: the item is certainly not stored: the server refused it, or
	// it was never sent. It can be sent again.
	NotStored
	// Unknown: the item was sent, but whether the server applied it is not
	// known (a timeout, a lost connection, the caller's context ending). A
	// read of its key tells; writing it again is safe for PutMany.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case Stored:
		return "stored"
	case Kept:
		return "kept"
	case NotStored:
		return "not stored"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// BatchError is the error of a batch write that did not store every item:
// it says, per item, what became of it, so that a caller can send exactly
// the rest again. It is always wrapped in an *OpError; get it with
// errors.As. errors.Is sees its cause (ErrUnavailable, ErrInvalidArgument, a
// context error...).
type BatchError struct {
	// Outcomes has one entry per item of the call, in the caller's order.
	Outcomes []Outcome
	// Refused maps the index of an item the server refused (NotStored) to
	// the server's reason.
	Refused map[int]error
	// Err is why the batch stopped: the first refusal, or the error that
	// left items unknown or unsent.
	Err error
}

// Items returns the indexes of the items with outcome o, in order.
func (e *BatchError) Items(o Outcome) []int {
	var out []int
	for i, got := range e.Outcomes {
		if got == o {
			out = append(out, i)
		}
	}
	return out
}

func (e *BatchError) Error() string {
	counts := map[Outcome]int{}
	for _, o := range e.Outcomes {
		counts[o]++
	}
	var parts []string
	for _, o := range []Outcome{Stored, Kept, NotStored, Unknown} {
		if counts[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[o], o))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d items: %s", len(e.Outcomes), strings.Join(parts, ", "))
	if n := counts[NotStored]; n > 0 {
		fmt.Fprintf(&b, " (not stored: items %s)", indexList(e.Items(NotStored)))
	}
	if n := counts[Unknown]; n > 0 {
		fmt.Fprintf(&b, " (unknown: items %s; read them to know)", indexList(e.Items(Unknown)))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *BatchError) Unwrap() error { return e.Err }

// indexList renders indexes compactly: "0-3, 7, 9-12".
func indexList(ix []int) string {
	var b strings.Builder
	for j := 0; j < len(ix); {
		k := j
		for k+1 < len(ix) && ix[k+1] == ix[k]+1 {
			k++
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		if b.Len() > 200 {
			fmt.Fprintf(&b, "… (%d more)", len(ix)-j)
			break
		}
		if k > j {
			fmt.Fprintf(&b, "%d-%d", ix[j], ix[k])
		} else {
			fmt.Fprintf(&b, "%d", ix[j])
		}
		j = k + 1
	}
	return b.String()
}
