package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/persistgen/persistgen/repo"
	"github.com/persistgen/persistgen/runtime"
)

// impl is one way of doing each job. The three implementations share one
// runtime.Conn's MongoDB and Redis clients, so their round trips are counted
// the same way and they compete for the same connections.
type impl interface {
	name() string
	readSignal(ctx context.Context, k repo.SignalKey) (*repo.SignalRow, bool, error)
	writeSignal(ctx context.Context, k repo.SignalKey, row *repo.SignalRow) error
	window(ctx context.Context, ex, sym, interval string, since int64, n int) ([]repo.Candle, bool, error)
	writeCandles(ctx context.Context, ex, sym, interval string, cs []repo.Candle) error
	readList(ctx context.Context, domain string, backtest bool) (int, error)
	writeList(ctx context.Context, domain string, backtest bool, ids []string) error
	writeMemory(ctx context.Context, k repo.MemoryKey, v repo.MemoryEntry, when time.Time) error
	readMemory(ctx context.Context, k repo.MemoryKey) (repo.MemoryEntry, bool, error)
}

// listSpec is one of the three feeds.
type listSpec struct {
	domain, coll, key string
	limit             int
}

func lists() []listSpec {
	return []listSpec{
		{"storage", "storage-items", "signalId", 50},
		{"notification", "notification-items", "notificationId", 500},
		{"log", "log-items", "entryId", 1000},
	}
}

func listOf(domain string) listSpec {
	for _, l := range lists() {
		if l.domain == domain {
			return l
		}
	}
	panic("unknown list " + domain)
}

func signalFilter(k repo.SignalKey) bson.D {
	return bson.D{{Key: "symbol", Value: k.Symbol}, {Key: "strategyName", Value: k.StrategyName}, {Key: "exchangeName", Value: k.ExchangeName}}
}

func memoryFilter(k repo.MemoryKey) bson.D {
	return bson.D{{Key: "signalId", Value: k.SignalID}, {Key: "bucketName", Value: k.BucketName}, {Key: "memoryId", Value: k.MemoryID}}
}

func candleDoc(ex, sym, interval string, c repo.Candle, now time.Time) bson.D {
	return bson.D{{Key: "exchangeName", Value: ex}, {Key: "symbol", Value: sym}, {Key: "interval", Value: interval}, {Key: "timestamp", Value: c.Timestamp},
		{Key: "open", Value: c.Open}, {Key: "high", Value: c.High}, {Key: "low", Value: c.Low}, {Key: "close", Value: c.Close}, {Key: "volume", Value: c.Volume},
		{Key: "createDate", Value: now}, {Key: "updatedDate", Value: now}}
}

func listFilter(l listSpec, backtest bool) bson.D {
	if l.domain == "log" {
		return bson.D{}
	}
	return bson.D{{Key: "backtest", Value: backtest}}
}

func listItem(l listSpec, id string) any {
	switch l.domain {
	case "storage":
		return repo.StorageRow{ID: id, Status: "opened", Symbol: "BTCUSDT", PriceOpen: 100}
	case "notification":
		return repo.Notification{ID: id, Type: "signal.opened", Timestamp: 1}
	}
	return repo.LogEntry{ID: id, Type: "info", Topic: "bench", Args: []any{"x", 1.0}}
}

// ---- floor: the fewest plain driver calls, no cache.

type floor struct {
	db    *mongo.Database
	chunk int
}

func (floor) name() string { return "floor" }

func (f floor) readSignal(ctx context.Context, k repo.SignalKey) (*repo.SignalRow, bool, error) {
	var doc struct {
		Payload *repo.SignalRow `bson:"payload"`
	}
	err := f.db.Collection("signal-items").FindOne(ctx, signalFilter(k)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false, nil
	}
	return doc.Payload, err == nil, err
}

func (f floor) writeSignal(ctx context.Context, k repo.SignalKey, row *repo.SignalRow) error {
	now := time.Now()
	_, err := f.db.Collection("signal-items").UpdateOne(ctx, signalFilter(k), bson.D{
		{Key: "$set", Value: bson.D{{Key: "payload", Value: row}, {Key: "updatedDate", Value: now}}},
		{Key: "$setOnInsert", Value: bson.D{{Key: "createDate", Value: now}}},
	}, options.UpdateOne().SetUpsert(true))
	return err
}

func (f floor) window(ctx context.Context, ex, sym, interval string, since int64, n int) ([]repo.Candle, bool, error) {
	step, _ := runtime.IntervalStep(interval)
	filter := bson.D{{Key: "exchangeName", Value: ex}, {Key: "symbol", Value: sym}, {Key: "interval", Value: interval},
		{Key: "timestamp", Value: bson.D{{Key: "$gte", Value: float64(since)}, {Key: "$lt", Value: float64(since + int64(n)*step.Milliseconds())}}}}
	cur, err := f.db.Collection("candle-items").Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "timestamp", Value: 1}}).SetLimit(int64(n)).SetBatchSize(int32(n+1)))
	if err != nil {
		return nil, false, err
	}
	var out []repo.Candle
	if err := cur.All(ctx, &out); err != nil {
		return nil, false, err
	}
	for i, c := range out {
		if c.Timestamp != float64(since+int64(i)*step.Milliseconds()) {
			return nil, false, nil
		}
	}
	return out, len(out) == n, nil
}

func (f floor) writeCandles(ctx context.Context, ex, sym, interval string, cs []repo.Candle) error {
	now := time.Now()
	docs := make([]any, len(cs))
	for i, c := range cs {
		docs[i] = candleDoc(ex, sym, interval, c, now)
	}
	_, err := f.db.Collection("candle-items").InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return err
}

func (f floor) readList(ctx context.Context, domain string, backtest bool) (int, error) {
	l := listOf(domain)
	cur, err := f.db.Collection(l.coll).Find(ctx, listFilter(l, backtest),
		options.Find().SetSort(bson.D{{Key: "createDate", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(l.limit)).SetBatchSize(int32(l.limit+1)))
	if err != nil {
		return 0, err
	}
	return decodeList(ctx, cur, domain)
}

// decodeList decodes the payloads into their Go types, as any program that
// uses them must.
func decodeList(ctx context.Context, cur *mongo.Cursor, domain string) (int, error) {
	switch domain {
	case "storage":
		var docs []struct {
			Payload repo.StorageRow `bson:"payload"`
		}
		err := cur.All(ctx, &docs)
		return len(docs), err
	case "notification":
		var docs []struct {
			Payload repo.Notification `bson:"payload"`
		}
		err := cur.All(ctx, &docs)
		return len(docs), err
	}
	var docs []struct {
		Payload repo.LogEntry `bson:"payload"`
	}
	err := cur.All(ctx, &docs)
	return len(docs), err
}

func (f floor) writeList(ctx context.Context, domain string, backtest bool, ids []string) error {
	l := listOf(domain)
	coll := f.db.Collection(l.coll)
	now := time.Now()
	if domain == "log" {
		docs := make([]any, len(ids))
		for i, id := range ids {
			docs[i] = bson.D{{Key: l.key, Value: id}, {Key: "payload", Value: listItem(l, id)}, {Key: "createDate", Value: now}, {Key: "updatedDate", Value: now}}
		}
		_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		if mongo.IsDuplicateKeyError(err) {
			return nil
		}
		return err
	}
	models := make([]mongo.WriteModel, len(ids))
	for i, id := range ids {
		models[i] = mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "backtest", Value: backtest}, {Key: l.key, Value: id}}).SetUpsert(true).SetUpdate(bson.D{
			{Key: "$set", Value: bson.D{{Key: "payload", Value: listItem(l, id)}, {Key: "updatedDate", Value: now}}},
			{Key: "$setOnInsert", Value: bson.D{{Key: "createDate", Value: now}}}})
	}
	for start := 0; start < len(models); start += f.chunk { // FerretDB hangs on large bulk updates
		if _, err := coll.BulkWrite(ctx, models[start:min(start+f.chunk, len(models))], options.BulkWrite().SetOrdered(false)); err != nil {
			return err
		}
	}
	return nil
}

func (f floor) writeMemory(ctx context.Context, k repo.MemoryKey, v repo.MemoryEntry, when time.Time) error {
	now := time.Now()
	_, err := f.db.Collection("memory-items").UpdateOne(ctx, memoryFilter(k), bson.D{
		{Key: "$set", Value: bson.D{{Key: "payload", Value: v}, {Key: "when", Value: float64(when.UnixMilli())}, {Key: "removed", Value: false}, {Key: "updatedDate", Value: now}}},
		{Key: "$setOnInsert", Value: bson.D{{Key: "createDate", Value: now}}},
	}, options.UpdateOne().SetUpsert(true))
	return err
}

func (f floor) readMemory(ctx context.Context, k repo.MemoryKey) (repo.MemoryEntry, bool, error) {
	var doc struct {
		Payload repo.MemoryEntry `bson:"payload"`
		Removed bool             `bson:"removed"`
	}
	err := f.db.Collection("memory-items").FindOne(ctx, memoryFilter(k)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return repo.MemoryEntry{}, false, nil
	}
	return doc.Payload, err == nil && !doc.Removed, err
}

// ---- upstream: the TypeScript adapter's access pattern, faithfully.
// Identity GET then find by _id per key; one sequential find and SET per
// candle (its candle keys lack the exchange); one upsert and one SET per
// list item; lists read with a sort on a field that does not exist, capped
// at 200 (the log unsorted at 1000).

type upstream struct {
	db  *mongo.Database
	rdb runtime.RedisClient
	ns  string
}

func (upstream) name() string { return "upstream" }

// readOne is upstream's read path: identity, find by _id, else find by the
// filter and backfill the identity.
func (u upstream) readOne(ctx context.Context, coll, key string, filter bson.D, out any) (bool, error) {
	c := u.db.Collection(coll)
	if id, err := u.rdb.Get(ctx, u.ns+key).Result(); err == nil {
		if oid, err := bson.ObjectIDFromHex(id); err == nil {
			err := c.FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Decode(out)
			if err == nil {
				return true, nil
			}
			if !errors.Is(err, mongo.ErrNoDocuments) {
				return false, err
			}
		}
	}
	raw, err := c.FindOne(ctx, filter).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := u.rdb.Set(ctx, u.ns+key, raw.Lookup("_id").ObjectID().Hex(), 0).Err(); err != nil {
		return false, err
	}
	return true, bson.Unmarshal(raw, out)
}

// writeOne is upstream's write path: findOneAndUpdate upsert, then SET.
func (u upstream) writeOne(ctx context.Context, coll, key string, filter, update bson.D) error {
	var got struct {
		ID bson.ObjectID `bson:"_id"`
	}
	err := u.db.Collection(coll).FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&got)
	if err != nil {
		return err
	}
	return u.rdb.Set(ctx, u.ns+key, got.ID.Hex(), 0).Err()
}

func signalRedisKey(k repo.SignalKey) string {
	return "signal_cache:" + k.ExchangeName + ":" + k.StrategyName + ":" + k.Symbol
}

func (u upstream) readSignal(ctx context.Context, k repo.SignalKey) (*repo.SignalRow, bool, error) {
	var doc struct {
		Payload *repo.SignalRow `bson:"payload"`
	}
	ok, err := u.readOne(ctx, "signal-items", signalRedisKey(k), signalFilter(k), &doc)
	return doc.Payload, ok, err
}

func (u upstream) writeSignal(ctx context.Context, k repo.SignalKey, row *repo.SignalRow) error {
	now := time.Now()
	return u.writeOne(ctx, "signal-items", signalRedisKey(k), signalFilter(k), bson.D{
		{Key: "$set", Value: bson.D{{Key: "payload", Value: row}, {Key: "updatedDate", Value: now}}},
		{Key: "$setOnInsert", Value: bson.D{{Key: "createDate", Value: now}}}})
}

func upstreamCandleKey(sym, interval string, ts float64) string {
	return fmt.Sprintf("candle_cache:%s:%s:%d", sym, interval, int64(ts))
}

func (u upstream) window(ctx context.Context, ex, sym, interval string, since int64, n int) ([]repo.Candle, bool, error) {
	step, _ := runtime.IntervalStep(interval)
	out := make([]repo.Candle, 0, n)
	for i := 0; i < n; i++ {
		ts := float64(since + int64(i)*step.Milliseconds())
		var c repo.Candle
		ok, err := u.readOne(ctx, "candle-items", upstreamCandleKey(sym, interval, ts),
			bson.D{{Key: "exchangeName", Value: ex}, {Key: "symbol", Value: sym}, {Key: "interval", Value: interval}, {Key: "timestamp", Value: ts}}, &c)
		if err != nil || !ok {
			return nil, false, err
		}
		out = append(out, c)
	}
	return out, true, nil
}

func (u upstream) writeCandles(ctx context.Context, ex, sym, interval string, cs []repo.Candle) error {
	for _, c := range cs {
		now := time.Now()
		doc := candleDoc(ex, sym, interval, c, now)
		if err := u.writeOne(ctx, "candle-items", upstreamCandleKey(sym, interval, c.Timestamp), doc[:4], bson.D{{Key: "$setOnInsert", Value: doc[4:]}}); err != nil {
			return err
		}
	}
	return nil
}

func (u upstream) readList(ctx context.Context, domain string, backtest bool) (int, error) {
	l := listOf(domain)
	o := options.Find().SetSort(bson.D{{Key: "createdAt", Value: -1}}).SetLimit(200) // createdAt: a field the documents do not have
	if domain == "log" {
		o = options.Find().SetLimit(1000) // unsorted
	}
	cur, err := u.db.Collection(l.coll).Find(ctx, listFilter(l, backtest), o)
	if err != nil {
		return 0, err
	}
	return decodeList(ctx, cur, domain)
}

func (u upstream) writeList(ctx context.Context, domain string, backtest bool, ids []string) error {
	l := listOf(domain)
	for _, id := range ids {
		now := time.Now()
		filter := bson.D{{Key: "backtest", Value: backtest}, {Key: l.key, Value: id}}
		key := fmt.Sprintf("%s_cache:%s:%s", domain, map[bool]string{true: "backtest", false: "live"}[backtest], id)
		if domain == "log" {
			filter, key = bson.D{{Key: l.key, Value: id}}, "log_cache:"+id
		}
		if err := u.writeOne(ctx, l.coll, key, filter, bson.D{
			{Key: "$set", Value: bson.D{{Key: "payload", Value: listItem(l, id)}, {Key: "updatedDate", Value: now}}},
			{Key: "$setOnInsert", Value: bson.D{{Key: "createDate", Value: now}}}}); err != nil {
			return err
		}
	}
	return nil
}

func memoryRedisKey(k repo.MemoryKey) string {
	return "memory_cache:" + k.SignalID + ":" + k.BucketName + ":" + k.MemoryID
}

func (u upstream) writeMemory(ctx context.Context, k repo.MemoryKey, v repo.MemoryEntry, when time.Time) error {
	now := time.Now()
	return u.writeOne(ctx, "memory-items", memoryRedisKey(k), memoryFilter(k), bson.D{
		{Key: "$set", Value: bson.D{{Key: "payload", Value: v}, {Key: "when", Value: float64(when.UnixMilli())}, {Key: "removed", Value: false}, {Key: "updatedDate", Value: now}}},
		{Key: "$setOnInsert", Value: bson.D{{Key: "createDate", Value: now}}}})
}

func (u upstream) readMemory(ctx context.Context, k repo.MemoryKey) (repo.MemoryEntry, bool, error) {
	var doc struct {
		Payload repo.MemoryEntry `bson:"payload"`
		Removed bool             `bson:"removed"`
	}
	ok, err := u.readOne(ctx, "memory-items", memoryRedisKey(k), memoryFilter(k), &doc)
	return doc.Payload, ok && !doc.Removed, err
}

// ---- ours: the generated repositories.

type ours struct{ r *repo.Repos }

func (ours) name() string { return "ours" }

func (o ours) readSignal(ctx context.Context, k repo.SignalKey) (*repo.SignalRow, bool, error) {
	return o.r.Signal.Get(ctx, k)
}

func (o ours) writeSignal(ctx context.Context, k repo.SignalKey, row *repo.SignalRow) error {
	return o.r.Signal.Put(ctx, k, row)
}

func (o ours) window(ctx context.Context, ex, sym, interval string, since int64, n int) ([]repo.Candle, bool, error) {
	return o.r.Candle.Window(ctx, ex, sym, interval, since, n)
}

func (o ours) writeCandles(ctx context.Context, ex, sym, interval string, cs []repo.Candle) error {
	_, err := o.r.Candle.Put(ctx, ex, sym, interval, cs)
	return err
}

func (o ours) readList(ctx context.Context, domain string, backtest bool) (int, error) {
	switch domain {
	case "storage":
		v, err := o.r.Storage.GetAll(ctx, backtest)
		return len(v), err
	case "notification":
		v, err := o.r.Notification.GetAll(ctx, backtest)
		return len(v), err
	}
	v, err := o.r.Log.GetAll(ctx)
	return len(v), err
}

func (o ours) writeList(ctx context.Context, domain string, backtest bool, ids []string) error {
	l := listOf(domain)
	switch domain {
	case "storage":
		items := make([]repo.StorageRow, len(ids))
		for i, id := range ids {
			items[i] = listItem(l, id).(repo.StorageRow)
		}
		return o.r.Storage.PutAll(ctx, backtest, items)
	case "notification":
		items := make([]repo.Notification, len(ids))
		for i, id := range ids {
			items[i] = listItem(l, id).(repo.Notification)
		}
		return o.r.Notification.PutAll(ctx, backtest, items)
	}
	items := make([]repo.LogEntry, len(ids))
	for i, id := range ids {
		items[i] = listItem(l, id).(repo.LogEntry)
	}
	_, err := o.r.Log.Append(ctx, items)
	return err
}

func (o ours) writeMemory(ctx context.Context, k repo.MemoryKey, v repo.MemoryEntry, when time.Time) error {
	return o.r.Memory.Put(ctx, k, v, when)
}

func (o ours) readMemory(ctx context.Context, k repo.MemoryKey) (repo.MemoryEntry, bool, error) {
	return o.r.Memory.Get(ctx, k)
}

// ---- cached and local: ours with per-domain cache modes. Signals and
// memory entries in value mode (Redis holds the row; "cached") or local mode
// (and each process a copy; "local"), candles in mode none (no Redis);
// lists as ours.

type cached struct {
	ours
	mode   runtime.CacheMode
	signal *runtime.Repo[repo.SignalKey, *repo.SignalRow]
	memory *runtime.Repo[repo.MemoryKey, repo.MemoryEntry]
	candle *runtime.Repo[repo.CandleKey, repo.Candle]
}

func newCached(conn *runtime.Conn, o ours, mode runtime.CacheMode) (cached, error) {
	sig, mem, cdl := repo.SignalSchema(), repo.MemorySchema(), repo.CandleSchema()
	sig.Cache, mem.Cache, cdl.Cache = mode, mode, runtime.CacheNone
	// Rows kept in Redis need collections of their own: one collection,
	// one cache family (identity and none beside ours share theirs).
	// (Candles too: a series-mode collection takes no other mode on a Conn.)
	sig.Collection, mem.Collection, cdl.Collection = cachedCollection(sig.Collection), cachedCollection(mem.Collection), cachedCollection(cdl.Collection)
	c := cached{ours: o, mode: mode}
	var err error
	if c.signal, err = runtime.NewRepo[repo.SignalKey, *repo.SignalRow](conn, sig); err != nil {
		return c, err
	}
	if c.memory, err = runtime.NewRepo[repo.MemoryKey, repo.MemoryEntry](conn, mem); err != nil {
		return c, err
	}
	c.candle, err = runtime.NewRepo[repo.CandleKey, repo.Candle](conn, cdl)
	return c, err
}

// cachedCollection is the collection of the value and local modes' copy
// of a domain's rows in the benchmarks.
func cachedCollection(c string) string { return c + "-cached" }

func (c cached) name() string {
	if c.mode == runtime.CacheLocal {
		return "local"
	}
	return "cached"
}

func (c cached) readSignal(ctx context.Context, k repo.SignalKey) (*repo.SignalRow, bool, error) {
	return runtime.PayloadOf(c.signal.Get(ctx, k))
}

func (c cached) writeSignal(ctx context.Context, k repo.SignalKey, row *repo.SignalRow) error {
	return c.signal.Put(ctx, k, row, time.Time{})
}

func (c cached) window(ctx context.Context, ex, sym, interval string, since int64, n int) ([]repo.Candle, bool, error) {
	return runtime.SeriesWindow(ctx, c.candle, []any{ex, sym, interval}, interval, since, n)
}

func (c cached) writeCandles(ctx context.Context, ex, sym, interval string, cs []repo.Candle) error {
	items := make([]runtime.Item[repo.CandleKey, repo.Candle], len(cs))
	for i, cd := range cs {
		items[i] = runtime.Item[repo.CandleKey, repo.Candle]{Key: repo.CandleKey{ExchangeName: ex, Symbol: sym, Interval: interval, Timestamp: cd.Timestamp}, Payload: cd}
	}
	_, err := runtime.PutSeries(ctx, c.candle, interval, items)
	return err
}

func (c cached) writeMemory(ctx context.Context, k repo.MemoryKey, v repo.MemoryEntry, when time.Time) error {
	return c.memory.Put(ctx, k, v, when)
}

func (c cached) readMemory(ctx context.Context, k repo.MemoryKey) (repo.MemoryEntry, bool, error) {
	return runtime.PayloadOf(c.memory.Get(ctx, k))
}
