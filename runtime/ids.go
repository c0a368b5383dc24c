package runtime

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// idGen makes a Conn's client-made _ids: ObjectIDs (a timestamp in seconds,
// 5 random bytes, a 3-byte counter) that only ever increase, so that newest
// first (createDate, then _id) follows the order of the Conn's writes. The
// driver's bson.NewObjectID goes backwards where its counter wraps (it
// starts at a random value); here a wrap carries into the random bytes
// instead, and the timestamp never moves back with the clock.
type idGen struct {
	mu  sync.Mutex
	sec uint32
	mid [5]byte
	ctr uint32
}

func newIDGen() *idGen {
	g := &idGen{}
	var b [8]byte
	_, _ = rand.Read(b[:])
	copy(g.mid[:], b[:5])
	g.ctr = uint32(b[5])<<16 | uint32(b[6])<<8 | uint32(b[7])
	return g
}

func (g *idGen) next() bson.ObjectID {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := uint32(time.Now().Unix()); s > g.sec {
		g.sec = s
	}
	g.ctr++
	if g.ctr == 1<<24 {
		g.ctr = 0
		carried := true
		for i := len(g.mid) - 1; i >= 0 && carried; i-- {
			g.mid[i]++
			carried = g.mid[i] == 0
		}
		if carried { // 2^40 wraps later: into the timestamp
			g.sec++
		}
	}
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[:4], g.sec)
	copy(id[4:9], g.mid[:])
	id[9], id[10], id[11] = byte(g.ctr>>16), byte(g.ctr>>8), byte(g.ctr)
	return id
}
