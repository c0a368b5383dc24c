package bench

// History's costs (issue 22): a write with history against the same write
// without, in the same run on the same Conn; a known-at read; and the
// bytes a version takes in the history collection, with the estimate per
// million writes.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

// historySchema is the shipped signal domain under a collection of its
// own, with history on or off.
func historySchema(on bool) *runtime.Schema {
	s := repo.SignalSchema()
	s.Collection = "bench-history-signal-off"
	s.History = nil
	if on {
		s.Collection = "bench-history-signal-on"
		s.History = &runtime.History{}
	}
	return s
}

func BenchmarkHistory(b *testing.B) {
	if fx == nil {
		b.Skip("no servers: run make bench")
	}
	ctx := context.Background()
	repos := map[bool]*runtime.Repo[repo.SignalKey, *repo.SignalRow]{}
	for _, on := range []bool{false, true} {
		s := historySchema(on)
		if err := fx.conn.EnsureIndexes(ctx, s); err != nil {
			b.Fatal(err)
		}
		r, err := runtime.NewRepo[repo.SignalKey, *repo.SignalRow](fx.conn, s)
		if err != nil {
			b.Fatal(err)
		}
		repos[on] = r
	}
	k := fx.sig
	write := func(on bool) func(b *testing.B) {
		return func(b *testing.B) {
			r := repos[on]
			if err := r.Put(ctx, k, signalRow(-1), time.Time{}); err != nil {
				b.Fatal(err)
			}
			tctx, tr := runtime.WithTrace(ctx)
			if err := r.Put(tctx, k, signalRow(0), time.Time{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := r.Put(ctx, k, signalRow(i), time.Time{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(tr.Mongo()), "mongo/op")
			b.ReportMetric(float64(tr.Total()), "rt/op")
		}
	}
	b.Run("Write/off", write(false))
	b.Run("Write/on", write(true))
	b.Run("GetAt", func(b *testing.B) {
		r := repos[true]
		now := time.Now().Add(time.Minute)
		tctx, tr := runtime.WithTrace(ctx)
		if _, err := r.GetAt(tctx, k, time.Time{}, now); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := r.GetAt(ctx, k, time.Time{}, now); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(tr.Mongo()), "mongo/op")
		b.ReportMetric(float64(tr.Total()), "rt/op")
	})
	b.Run("Bytes", func(b *testing.B) {
		// The stored size of the versions the writes above made, against
		// their rows': what a version costs beyond the row it copies.
		b.StopTimer()
		versions, vbytes := docBytes(ctx, b, historySchema(true).HistoryCollection())
		_, rbytes := docBytes(ctx, b, historySchema(true).Collection)
		if versions == 0 {
			b.Fatal("no versions")
		}
		per := float64(vbytes) / float64(versions)
		b.ReportMetric(per, "B/version")
		b.ReportMetric(per-float64(rbytes), "B/version-over-row")
		b.ReportMetric(per*1e6/(1<<20), "MiB/million-writes")
		b.Logf("%d versions, %.0f B each (the row: %d B); %.0f MiB per million writes before indexes and compression", versions, per, rbytes, per*1e6/(1<<20))
	})
}

// docBytes counts a collection's documents and their BSON bytes.
func docBytes(ctx context.Context, b *testing.B, coll string) (n, bytes int) {
	cur, err := fx.conn.Database().Collection(coll).Find(ctx, bson.D{})
	if err != nil {
		b.Fatal(err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		n++
		bytes += len(cur.Current)
	}
	if err := cur.Err(); err != nil {
		b.Fatal(fmt.Errorf("%s: %w", coll, err))
	}
	return n, bytes
}
