package runtime

import (
	"bytes"
	"testing"
)

// Ids only increase, across the counter's wrap and into the next second,
// where bson.NewObjectID's go back at the wrap.
func TestIDsIncreaseAcrossTheCounterWrap(t *testing.T) {
	g := newIDGen()
	g.ctr = 1<<24 - 3
	prev := g.next()
	for i := 0; i < 10; i++ {
		id := g.next()
		if bytes.Compare(id[:], prev[:]) <= 0 {
			t.Fatalf("id %d (%s) is not after %s", i, id.Hex(), prev.Hex())
		}
		prev = id
	}
	g.mid = [5]byte{0xff, 0xff, 0xff, 0xff, 0xff}
	g.ctr = 1<<24 - 2
	before := g.next()
	after := g.next() // wraps and carries out of the random bytes, into the timestamp
	if bytes.Compare(after[:], before[:]) <= 0 {
		t.Fatalf("the carry out of the random bytes went back: %s after %s", after.Hex(), before.Hex())
	}
}
