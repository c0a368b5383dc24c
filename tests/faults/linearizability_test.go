package faults

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/anishathalye/porcupine"
	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// The linearizability test: concurrent clients, each a Conn of its own (as
// separate processes would be), write and read a few keys while faults are
// injected through toxiproxy between them and the servers: Redis cut, slow
// and reset; MongoDB connections dropped (also mid-batch) and slowed; and
// callers that give up early. Every history is checked with porcupine
// against a register per key: a read returns the last write that took
// effect before it. A write that returned an error is ambiguous (it may or
// may not have taken effect), unless its BatchError says it was not stored.
//
// It runs for PERSIST_TEST_FAULT_SECONDS (30 by default) and reports the
// histories and operations checked, violations (which fail it) and
// histories the checker could not decide in time.
//
// PERSIST_TEST_FAULT_WRITERS=one gives each key a single writer (every
// client still reads every key): what FerretDB v1 can honestly promise, as
// its updates are not atomic (a Put racing a Remove of one key loses one
// of them there, faults or not). The default is every client writing every
// key.

type regKey struct {
	Run string `bson:"run"`
	Key string `bson:"key"`
}

func (k regKey) KeyValues() []any { return []any{k.Run, k.Key} }

type regVal struct {
	V int `bson:"v"`
}

func regSchema() *runtime.Schema {
	return &runtime.Schema{Domain: "reg", Collection: "reg-items", RedisPrefix: "reg_cache",
		Key: []runtime.KeyField{{Name: "run", Type: runtime.TypeString}, {Name: "key", Type: runtime.TypeString}}, HasRemoved: true, Payload: "payload"}
}

// flavor is one kind of round: a cache mode, and in the value mode
// whether it is strict (a write that cannot mark its key fails before it
// reaches MongoDB).
type flavor struct {
	name   string // identity, value, value-strict, local
	schema *runtime.Schema
}

// regSchemaIn is regSchema in a flavor: the modes that keep rows in Redis
// use a collection of their own (one collection, one cache family); the
// value mode's TTL is short, so that writes waiting it out (Redis
// unreachable) keep the rounds short.
func regSchemaIn(name string) *runtime.Schema {
	s := regSchema()
	mode, strict := runtime.CacheMode(name), false
	if name == "value-strict" {
		mode, strict = runtime.CacheValue, true
	}
	s.Cache, s.CacheStrict = mode, strict
	if s.ValueCached() {
		s.Collection = "reg-rows"
		s.CacheTTL = 500 * time.Millisecond
	}
	if mode == runtime.CacheLocal {
		// Copies that live long enough to outdate: a write that did not
		// wait for them would be seen serving an older row.
		s.CacheTTL, s.LocalTTL = time.Second, 300*time.Millisecond
	}
	return s
}

// linearizable reports whether a flavor's histories are checked for
// linearizability in a round with Redis faults: every flavor but the
// value mode's available default, which promises read-after-write then
// (a write that cannot mark its key goes ahead, and a process may serve
// the previous row until the write has invalidated it or the TTL passed).
func (f flavor) linearizable(redisFaults bool) bool {
	return f.name != "value" || !redisFaults
}

// input and output of one operation on one key.
type regIn struct {
	write  bool
	remove bool
	v      int
}

type regOut struct {
	v       int  // a read's value (0: absent)
	removed bool // Remove's answer
}

var regModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Metadata.(string)
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(int), input.(regIn), output.(regOut)
		switch {
		case in.remove:
			// A Remove's answer says whether the row was visible; an
			// ambiguous Remove's output is not checked (see ambiguous).
			if out.v == -1 {
				return true, 0
			}
			return out.removed == (s != 0), 0
		case in.write:
			return true, in.v
		}
		return out.v == s, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regIn), output.(regOut)
		switch {
		case in.remove:
			return fmt.Sprintf("remove -> %v", out.removed)
		case in.write:
			return fmt.Sprintf("put(%d)", in.v)
		}
		return fmt.Sprintf("get -> %d", out.v)
	},
}

// ambiguous is the return time of an operation whose effect is unknown: it
// may take effect at any time after its call, or never.
const ambiguous = math.MaxInt64

type recorder struct {
	mu  sync.Mutex
	ops []porcupine.Operation
	t0  time.Time
}

func (r *recorder) now() int64 { return int64(time.Since(r.t0)) }

func (r *recorder) add(client int, key string, in regIn, out regOut, call, ret int64) {
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret, Metadata: key})
	r.mu.Unlock()
}

type faultProxy struct {
	p    *toxiproxy.Proxy
	name string
}

func newFaultProxy(t *testing.T, srv *toxiproxy.ApiServer, name, upstream string) *faultProxy {
	t.Helper()
	p := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("toxiproxy %s: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return &faultProxy{p: p, name: name}
}

func (f *faultProxy) toxic(t *testing.T, name, typ, stream string, attrs string) {
	js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":1,"attributes":{%s}}`, name, typ, stream, attrs)
	if _, err := f.p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		t.Errorf("add toxic %s: %v", name, err)
	}
}

func (f *faultProxy) clear() { f.p.Toxics.ResetToxics(context.Background()) }

// ownRedis is a redis-server of the test's own, which the "redis restart"
// fault shuts down (losing everything) and starts again, empty.
type ownRedis struct {
	port  int
	admin *goredis.Client
}

// startOwnRedis starts one, or returns nil where redis-server is not
// installed (the test then uses the given Redis, without that fault).
func startOwnRedis(t *testing.T) *ownRedis {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Logf("faults: no redis-server on PATH: no Redis restarts, on the given Redis")
		return nil
	}
	port := testenv.StartRedisServer(t)
	testenv.WaitPort(t, port)
	r := &ownRedis{port: port, admin: goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})}
	t.Cleanup(func() { r.admin.Close() })
	// A Redis younger than a write mark's life (2 OpTimeouts and a second,
	// here 5 s) makes no write leave its row: a restart may have lost
	// marks. The first rounds should see the cache at work, so wait.
	time.Sleep(7 * time.Second)
	return r
}

func (r *ownRedis) stop(*testing.T) {
	_ = r.admin.Do(context.Background(), "SHUTDOWN", "NOSAVE").Err() // answered by the connection closing
}

func (r *ownRedis) start(t *testing.T) {
	if r.admin.Ping(context.Background()).Err() == nil {
		return // running
	}
	testenv.StartRedisServerOn(t, r.port)
	testenv.WaitPort(t, r.port)
}

// faults are the ones the test injects, each for a short while.
func faults(mongo, redis *faultProxy, own *ownRedis) []struct {
	name string
	on   func(t *testing.T)
	off  func(t *testing.T)
} {
	restart := func(f *faultProxy) func(t *testing.T) {
		return func(t *testing.T) {
			if err := f.p.Start(); err != nil && !errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
				t.Errorf("restart %s: %v", f.name, err)
			}
		}
	}
	clear := func(f *faultProxy) func(t *testing.T) { return func(*testing.T) { f.clear() } }
	set := []struct {
		name string
		on   func(t *testing.T)
		off  func(t *testing.T)
	}{
		{"redis cut", func(*testing.T) { redis.p.Stop() }, restart(redis)},
		{"redis slow", func(t *testing.T) { redis.toxic(t, "slow", "latency", "downstream", `"latency":400`) }, clear(redis)},
		{"redis reset", func(t *testing.T) { redis.toxic(t, "reset", "reset_peer", "upstream", `"timeout":0`) }, clear(redis)},
		{"mongo connections dropped", func(*testing.T) { mongo.p.Stop() }, restart(mongo)},
		{"mongo reset mid-stream", func(t *testing.T) { mongo.toxic(t, "reset", "reset_peer", "downstream", `"timeout":20`) }, clear(mongo)},
		{"mongo slow", func(t *testing.T) { mongo.toxic(t, "slow", "latency", "downstream", `"latency":80`) }, clear(mongo)},
	}
	if own != nil {
		set = append(set, struct {
			name string
			on   func(t *testing.T)
			off  func(t *testing.T)
		}{"redis restart", own.stop, own.start})
	}
	return set
}

func TestLinearizableUnderFaults(t *testing.T) {
	mongoURI, redisURL := testenv.URIs(t)
	seconds := 30
	if s, err := strconv.Atoi(os.Getenv("PERSIST_TEST_FAULT_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	mu, err := url.Parse(mongoURI)
	if err != nil {
		t.Fatal(err)
	}
	ru, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	mongo := newFaultProxy(t, srv, "mongo", mu.Host)
	own := startOwnRedis(t)
	redisHost := ru.Host
	if own != nil {
		redisHost = "127.0.0.1:" + strconv.Itoa(own.port)
	}
	redis := newFaultProxy(t, srv, "redis", redisHost)
	proxiedMongo := strings.Replace(mongoURI, mu.Host, mongo.p.Listen, 1)
	proxiedRedis := strings.Replace(redisURL, ru.Host, redis.p.Listen, 1)
	if own != nil {
		proxiedRedis = "redis://" + redis.p.Listen + "/0"
	}

	const clients = 4
	env := testenv.New(t, func(c *runtime.Config) {
		c.MongoURI, c.RedisURL = proxiedMongo, proxiedRedis
		c.RedisTimeout = 150 * time.Millisecond
		c.RedisRetryAfter = 100 * time.Millisecond
		c.OpTimeout = 2 * time.Second
		c.ReadyTimeout = 10 * time.Second
	})
	ctx := context.Background()
	// The Conn's bounds are short, for the faults to come; on a busy
	// machine the set-up (the readiness probe, the indexes) can take longer
	// than they allow, and is tried again, for at most two minutes.
	for deadline := time.Now().Add(2 * time.Minute); ; {
		err := env.Conn.EnsureIndexes(ctx, regSchema(), regSchemaIn("value"))
		if err == nil {
			break
		}
		if !errors.Is(err, runtime.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		t.Logf("faults: set-up: %v; again", err)
	}
	// Flavors, one per round in turn (PERSIST_TEST_FAULT_MODES, default
	// identity,value,value-strict,local).
	names := []string{"identity", "value", "value-strict", "local"}
	if v := os.Getenv("PERSIST_TEST_FAULT_MODES"); v != "" {
		names = strings.Split(v, ",")
	}
	var modes []flavor
	for _, n := range names {
		modes = append(modes, flavor{name: n, schema: regSchemaIn(n)})
	}
	conns := make([]*runtime.Conn, clients)
	for i := range conns {
		conns[i] = env.Conn
		if i > 0 {
			conns[i] = env.Open(t)
		}
	}
	reposIn := map[string][]*runtime.Repo[regKey, regVal]{}
	for _, m := range modes {
		for _, c := range conns {
			r, err := runtime.NewRepo[regKey, regVal](c, m.schema)
			if err != nil {
				t.Fatal(err)
			}
			reposIn[m.name] = append(reposIn[m.name], r)
		}
	}

	var histories, ops, violations, undecided, writesAcked, rawChecked, combined atomic.Int64
	faultSet := faults(mongo, redis, own)
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	for round := 0; time.Now().Before(deadline); round++ {
		run := fmt.Sprintf("%s-%d", testenv.ID(), round)
		mode := modes[round%len(modes)]
		repos := reposIn[mode.name]
		// Rounds take turns, per flavor, in phases (short runs get the
		// first ones): no faults (concurrency alone, where writes are
		// often alone on their key and leave copies to outdate); Redis
		// and MongoDB faults both at once (one injector each, so that
		// they overlap at random); Redis faults; MongoDB faults. What is
		// checked is what the promise table (docs/guarantees.md) says:
		// linearizability, except for the value mode's available default
		// under Redis faults, which promises read-after-write (checked in
		// every value-mode round, both ways).
		phase := (round / len(modes)) % 4
		quiet := phase == 0
		redisFaults := phase == 1 || phase == 2
		var injectors [][]struct {
			name string
			on   func(t *testing.T)
			off  func(t *testing.T)
		}
		split := func(redisSide bool) (out []struct {
			name string
			on   func(t *testing.T)
			off  func(t *testing.T)
		}) {
			for _, f := range faultSet {
				if strings.HasPrefix(f.name, "redis") == redisSide {
					out = append(out, f)
				}
			}
			return out
		}
		switch phase {
		case 1:
			injectors = append(injectors, split(true), split(false))
		case 2:
			injectors = append(injectors, split(true))
		case 3:
			injectors = append(injectors, split(false))
		}
		if phase > 0 {
			combined.Add(int64(len(injectors) / 2))
		}
		keys := []string{"x", "y", "z", "w"}
		rec := &recorder{t0: time.Now()}
		var next atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		// Faults: each injector one at a time, on and off during the
		// round (PERSIST_TEST_FAULTS=none: none, to tell the server's
		// behaviour from the faults').
		for _, roundFaults := range injectors {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if os.Getenv("PERSIST_TEST_FAULTS") == "none" || len(roundFaults) == 0 {
					return
				}
				inject(t, roundFaults, stop)
			}()
		}
		var clientsWG sync.WaitGroup
		for c := 0; c < clients; c++ {
			clientsWG.Add(1)
			go func() {
				defer clientsWG.Done()
				r := repos[c]
				for i := 0; i < 25; i++ {
					opCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
					if !quiet && rand.IntN(10) == 0 { // a caller that gives up early (a fault too)
						cancel()
						opCtx, cancel = context.WithTimeout(ctx, time.Duration(1+rand.IntN(30))*time.Millisecond)
					}
					writable := keys
					if os.Getenv("PERSIST_TEST_FAULT_WRITERS") == "one" {
						writable = keys[c%len(keys) : c%len(keys)+1]
					}
					doOp(opCtx, r, c, run, keys, writable, rec, &next, &writesAcked)
					cancel()
				}
			}()
		}
		clientsWG.Wait()
		close(stop)
		wg.Wait()
		mongo.clear()
		redis.clear()
		for _, f := range faultSet {
			if f.name == "redis cut" || f.name == "mongo connections dropped" || f.name == "redis restart" {
				f.off(t)
			}
		}
		// A final read of every key, faults off: an acknowledged write that
		// was lost shows up here at the latest.
		for _, k := range keys {
			readFinal(t, repos[0], run, k, rec)
		}
		if mode.schema.ValueCached() {
			rawChecked.Add(1)
			for _, v := range readAfterWrite(rec.ops) {
				violations.Add(1)
				t.Errorf("round %d (%s, phase %d): %s", round, mode.name, phase, v)
			}
		}
		if !mode.linearizable(redisFaults) {
			continue
		}
		res, info := porcupine.CheckOperationsVerbose(regModel, rec.ops, 20*time.Second)
		histories.Add(1)
		ops.Add(int64(len(rec.ops)))
		switch res {
		case porcupine.Illegal:
			violations.Add(1)
			path := fmt.Sprintf("%s/linearizability-%s.html", t.TempDir(), run)
			if err := porcupine.VisualizePath(regModel, info, path); err == nil {
				t.Errorf("round %d (%s, phase %d): history is not linearizable (%d operations); visualization: %s", round, mode.name, phase, len(rec.ops), path)
			} else {
				t.Errorf("round %d (%s, phase %d): history is not linearizable (%d operations)", round, mode.name, phase, len(rec.ops))
			}
		case porcupine.Unknown:
			undecided.Add(1)
		}
	}
	t.Logf("faults: %d histories checked for linearizability, %d operations (%d acknowledged writes), %d value-mode histories checked for read-after-write, %d rounds with Redis and MongoDB faults together, %d violations, %d undecided by the checker in time",
		histories.Load(), ops.Load(), writesAcked.Load(), rawChecked.Load(), combined.Load(), violations.Load(), undecided.Load())
	if histories.Load() == 0 {
		t.Fatal("no history was checked")
	}
	if slices.ContainsFunc(modes, func(f flavor) bool { return f.name == "local" }) {
		// The in-process tier must have answered reads, or the local
		// rounds tested nothing beyond the value mode.
		var local runtime.CacheStats
		for _, c := range conns {
			st := c.Stats().Cache["local"]
			local.LocalHits += st.LocalHits
			local.WriterWaits += st.WriterWaits
			local.Installs += st.Installs
		}
		t.Logf("faults: local mode: %d reads answered in process, %d writes waited for other processes' copies, %d writes left their row in Redis",
			local.LocalHits, local.WriterWaits, local.Installs)
		// (Writer waits depend on timing: with one writer per key on a
		// slow server, other clients' copies may never be live when a
		// write comes; TestLocalCacheNeverStaleAcrossConns counts them.)
		if local.LocalHits == 0 {
			t.Errorf("the local rounds never served a read in process: they tested nothing the value rounds do not")
		}
	}
}

// inject turns faults on and off, one at a time, until stop: each on for
// 50 to 300 ms after 20 to 100 ms off; a Redis restart at most once (after
// one, every local write waits out copies for 2 s).
func inject(t *testing.T, set []struct {
	name string
	on   func(t *testing.T)
	off  func(t *testing.T)
}, stop <-chan struct{}) {
	restarted := false
	for {
		f := set[rand.IntN(len(set))]
		if f.name == "redis restart" {
			if restarted {
				continue
			}
			restarted = true
		}
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(20+rand.IntN(80)) * time.Millisecond):
		}
		f.on(t)
		select {
		case <-stop:
		case <-time.After(time.Duration(50+rand.IntN(250)) * time.Millisecond):
		}
		f.off(t)
	}
}

// doOp runs one random operation and records it (per key for batches).
func doOp(ctx context.Context, r *runtime.Repo[regKey, regVal], client int, run string, keys, writable []string, rec *recorder, next, acked *atomic.Int64) {
	k := keys[rand.IntN(len(keys))]
	w := writable[rand.IntN(len(writable))]
	call := rec.now()
	kind := rand.IntN(6)
	if only := os.Getenv("PERSIST_TEST_FAULT_OPS"); only != "" {
		// Only some kinds (a comma-separated list of 0-5), to tell which
		// operation breaks a history.
		kinds := strings.Split(only, ",")
		kind, _ = strconv.Atoi(kinds[rand.IntN(len(kinds))])
	}
	switch kind {
	case 0, 1: // Put
		v := int(next.Add(1))
		err := r.Put(ctx, regKey{run, w}, regVal{v}, time.Time{})
		ret := rec.now()
		if err != nil {
			ret = ambiguous
		} else {
			acked.Add(1)
		}
		rec.add(client, w, regIn{write: true, v: v}, regOut{}, call, ret)
		if err == nil && rand.IntN(2) == 0 {
			// Read back what was just written, and again: in the local
			// mode the process's own copy answers, which another
			// client's write must outdate.
			for range 2 {
				readOne(ctx, r, client, run, w, rec)
			}
		}
	case 2: // Get
		readOne(ctx, r, client, run, k, rec)
	case 3: // Remove
		removed, err := r.Remove(ctx, regKey{run, w})
		ret := rec.now()
		out := regOut{removed: removed}
		if err != nil {
			ret, out = ambiguous, regOut{v: -1}
		}
		rec.add(client, w, regIn{remove: true}, out, call, ret)
	case 4: // PutMany over every key it may write
		items := make([]runtime.Item[regKey, regVal], len(writable))
		for i, key := range writable {
			items[i] = runtime.Item[regKey, regVal]{Key: regKey{run, key}, Payload: regVal{int(next.Add(1))}}
		}
		err := r.PutMany(ctx, items)
		ret := rec.now()
		var be *runtime.BatchError
		batch := errors.As(err, &be)
		for i, it := range items {
			switch {
			case err == nil || batch && be.Outcomes[i] == runtime.Stored:
				acked.Add(1)
				rec.add(client, it.Key.Key, regIn{write: true, v: it.Payload.V}, regOut{}, call, ret)
			case batch && be.Outcomes[i] == runtime.NotStored:
				// Certainly not stored: not an operation on the register.
			default:
				rec.add(client, it.Key.Key, regIn{write: true, v: it.Payload.V}, regOut{}, call, ambiguous)
			}
		}
	case 5: // GetMany over every key
		ks := make([]regKey, len(keys))
		for i, key := range keys {
			ks[i] = regKey{run, key}
		}
		got, err := r.GetMany(ctx, ks)
		ret := rec.now()
		if err != nil {
			return
		}
		for i, g := range got {
			v := 0
			if g != nil {
				v = g.Payload.V
			}
			rec.add(client, keys[i], regIn{}, regOut{v: v}, call, ret)
		}
	}
}

func readFinal(t *testing.T, r *runtime.Repo[regKey, regVal], run, k string, rec *recorder) {
	t.Helper()
	// Bounded only to stop a hung test: the faults are off, but a busy
	// machine may need several tries.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		call := rec.now()
		got, err := r.Get(ctx, regKey{run, k})
		ret := rec.now()
		switch {
		case errors.Is(err, runtime.ErrNotFound):
			rec.add(99, k, regIn{}, regOut{v: 0}, call, ret)
			return
		case err == nil:
			rec.add(99, k, regIn{}, regOut{v: got.Payload.V}, call, ret)
			return
		case ctx.Err() != nil:
			t.Fatalf("final read of %s: %v", k, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readAfterWrite checks the weaker promise, per key: every read returns the
// value of a write called before the read returned (nothing from the
// future), never a value older than a write that returned before the read
// was called, and "absent" only when no write that returned before the
// read could still be undone by a remove. Writes carry unique values, so
// each value names its write; "older" is judged only where real time
// orders the two writes (one returned before the other was called), so the
// check raises no false alarm.
func readAfterWrite(h []porcupine.Operation) []string {
	type op struct {
		in        regIn
		out       regOut
		call, ret int64
	}
	byKey := map[string][]op{}
	for _, o := range h {
		byKey[o.Metadata.(string)] = append(byKey[o.Metadata.(string)], op{o.Input.(regIn), o.Output.(regOut), o.Call, o.Return})
	}
	var bad []string
	for k, ops := range byKey {
		writeOf := map[int]op{}
		for _, o := range ops {
			if o.in.write {
				writeOf[o.in.v] = o
			}
		}
		for _, r := range ops {
			if r.in.write || r.in.remove {
				continue
			}
			if r.out.v == 0 {
				for _, w := range ops {
					if !w.in.write || w.ret == ambiguous || w.ret >= r.call {
						continue
					}
					undone := false
					for _, rm := range ops {
						if rm.in.remove && (rm.ret == ambiguous || rm.ret > w.call) {
							undone = true
						}
					}
					if !undone {
						bad = append(bad, fmt.Sprintf("key %s: a read called at %d returned absent after put(%d) returned at %d", k, r.call, w.in.v, w.ret))
						break
					}
				}
				continue
			}
			w, ok := writeOf[r.out.v]
			switch {
			case !ok:
				bad = append(bad, fmt.Sprintf("key %s: a read returned %d, which nobody wrote", k, r.out.v))
				continue
			case w.call > r.ret:
				bad = append(bad, fmt.Sprintf("key %s: a read returned %d before put(%d) was called", k, r.out.v, r.out.v))
				continue
			}
			for _, later := range ops {
				if (later.in.write || later.in.remove) && later.ret != ambiguous && later.ret < r.call && w.ret != ambiguous && w.ret < later.call {
					bad = append(bad, fmt.Sprintf("key %s: a read called at %d returned %d, older than %s, which returned at %d", k, r.call, r.out.v, describe(later.in), later.ret))
					break
				}
			}
		}
	}
	return bad
}

func describe(in regIn) string {
	if in.remove {
		return "a remove"
	}
	return fmt.Sprintf("put(%d)", in.v)
}

// The read-after-write checker finds what it names, and nothing else.
func TestReadAfterWriteChecker(t *testing.T) {
	w := func(v int, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: regIn{write: true, v: v}, Output: regOut{}, Call: call, Return: ret, Metadata: "k"}
	}
	r := func(v int, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: regIn{}, Output: regOut{v: v}, Call: call, Return: ret, Metadata: "k"}
	}
	for _, tc := range []struct {
		name string
		h    []porcupine.Operation
		bad  bool
	}{
		{"fresh", []porcupine.Operation{w(1, 0, 10), w(2, 20, 30), r(2, 40, 50)}, false},
		{"stale after a returned write", []porcupine.Operation{w(1, 0, 10), w(2, 20, 30), r(1, 40, 50)}, true},
		{"concurrent writes may read either", []porcupine.Operation{w(1, 0, 30), w(2, 5, 30), r(1, 40, 50)}, false},
		{"from the future", []porcupine.Operation{r(1, 0, 10), w(1, 20, 30)}, true},
		{"absent after a returned write", []porcupine.Operation{w(1, 0, 10), r(0, 20, 30)}, true},
		{"absent while the write runs", []porcupine.Operation{w(1, 0, 40), r(0, 20, 30)}, false},
		{"absent after a remove", []porcupine.Operation{w(1, 0, 10), {Input: regIn{remove: true}, Output: regOut{removed: true}, Call: 15, Return: 18, Metadata: "k"}, r(0, 20, 30)}, false},
		{"nobody wrote it", []porcupine.Operation{r(7, 0, 10)}, true},
	} {
		if got := readAfterWrite(tc.h); (len(got) > 0) != tc.bad {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
}

// readOne runs and records a Get of k (an error is no outcome to record).
func readOne(ctx context.Context, r *runtime.Repo[regKey, regVal], client int, run, k string, rec *recorder) {
	call := rec.now()
	got, err := r.Get(ctx, regKey{run, k})
	ret := rec.now()
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		rec.add(client, k, regIn{}, regOut{v: 0}, call, ret)
	case err == nil:
		rec.add(client, k, regIn{}, regOut{v: got.Payload.V}, call, ret)
	}
}
