package tests

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/persistgen/persistgen/internal/cache"
	"github.com/persistgen/persistgen/internal/testenv"
	"github.com/persistgen/persistgen/runtime"
)

// The Redis Cluster under faults, on a cluster of the test's own (3
// masters, 3 replicas): while writers and readers on two Conns (two
// processes) run, every slot holding the test's keys migrates to another
// master key by key (clients see ASK, then MOVED), or the master holding
// most of them is killed (SIGKILL) and its replica promoted. In each
// cache mode: no error reaches a caller (but the local mode's refusals of
// writes it could not mark, before MongoDB: it is strict) and no read
// returns a row older than the last write acknowledged before it began,
// or newer than the last one begun before it ended (one writer per key,
// versions increasing).
func TestRedisClusterSlotsMigratedMidRun(t *testing.T) {
	clusterFaultRun(t, "slot migration", migrateKeySlots)
}

func TestRedisClusterMasterKilled(t *testing.T) {
	clusterFaultRun(t, "master killed", killBusiestMaster)
}

// clusterFault breaks the cluster; slots are the hash slots of the keys
// the workload uses. It reports what it did.
type clusterFault func(t *testing.T, ctx context.Context, admin *redis.ClusterClient, slots map[int]bool) string

// opTimeout bounds the Conns' operations, and so a mark's life.
const opTimeout = 5 * time.Second

func clusterFaultRun(t *testing.T, name string, fault clusterFault) {
	for _, mode := range []runtime.CacheMode{runtime.CacheIdentity, runtime.CacheValue, runtime.CacheLocal} {
		t.Run(string(mode), func(t *testing.T) {
			s := memorySchemaIn(mode, 0)
			if mode != runtime.CacheIdentity {
				s.CacheTTL = 3 * time.Second // what a write that cannot reach Redis waits out
			}
			if mode == runtime.CacheLocal {
				s.LocalTTL = 200 * time.Millisecond
			}
			env := setup(t, s)
			addrs := testenv.StartRedisCluster(t)
			admin := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
			defer admin.Close()
			own := func(c *runtime.Config) {
				c.RedisClusterAddrs = addrs
				c.OpTimeout = opTimeout
				c.RedisRetryAfter = 100 * time.Millisecond
				c.Logger = slog.New(slog.NewTextHandler(tlog{t}, nil))
			}
			conns := []*runtime.Conn{env.Open(t, own), env.Open(t, own)}
			repos := []*runtime.Repo[memKey, memData]{newRepo[memKey, memData](t, conns[0], s), newRepo[memKey, memData](t, conns[1], s)}
			ctx := ctxT(t)
			w := newClusterWorkload(t, repos, 24)
			slots := map[int]bool{}
			for _, k := range w.keys {
				ck, err := repos[0].CacheKey(k)
				must(t, err)
				slot, err := admin.ClusterKeySlot(ctx, ck).Result()
				must(t, err)
				slots[int(slot)] = true
			}
			// Every key is stored before the fault: a strict mode may refuse
			// every write of a key while its master is out, and on a busy
			// machine a writer may not have reached a key before the fault;
			// after it, a key not found would then be no lost write at all.
			for _, k := range w.keys {
				must(t, repos[0].Put(ctx, k, memData{}, ms(0)))
			}
			w.start(ctx)
			time.Sleep(time.Second)
			before := w.ops.Load()
			did := fault(t, ctx, admin, slots)
			during := w.ops.Load() - before
			time.Sleep(1500 * time.Millisecond)
			w.stop()
			var hits, redisFailures int64
			for _, c := range conns {
				st := c.Stats()
				hits += st.Cache[string(mode)].Hits + st.Cache[string(mode)].LocalHits
				redisFailures += st.RedisFailures
			}
			t.Logf("%s, %s: %s; %d operations (%d during the fault), %d cache hits, %d Redis failures absorbed, %d writes refused by the strict mode",
				name, mode, did, w.ops.Load(), during, hits, redisFailures, w.refused.Load())
			if mode != runtime.CacheLocal && w.refused.Load() != 0 {
				t.Fatalf("%d writes refused in the %s mode, which is not strict", w.refused.Load(), mode)
			}
			if n := w.errs.Load(); n != 0 {
				t.Fatalf("%d errors reached callers; the first: %v", n, w.firstErr())
			}
			if n := w.wrong.Load(); n != 0 {
				t.Fatalf("%d wrong reads; the first: %s", n, w.firstWrong())
			}
			if during == 0 {
				t.Fatal("no operation completed while the fault ran: the test proved nothing")
			}
			if mode != runtime.CacheIdentity && hits == 0 {
				t.Fatal("no read was a cache hit: the cluster was never used")
			}
			// After the fault, the cache serves again: every key, read
			// twice on one Conn, is a hit the second time, once the marks of
			// writes whose ends the fault lost have passed their deadline
			// (dirtyFor: two OpTimeouts and a second). Without the slot
			// map's reload on failure, the dead master's keys never hit
			// here: go-redis sent them to it for a minute.
			if mode == runtime.CacheIdentity {
				return
			}
			deadline := time.Now().Add(2*opTimeout + 3*time.Second)
			for _, k := range w.keys {
				for {
					st := conns[0].Stats().Cache[string(mode)]
					for range 2 {
						if _, err := repos[0].Get(ctx, k); err != nil {
							t.Fatalf("after the fault, Get %v: %v", k, err)
						}
					}
					got := conns[0].Stats().Cache[string(mode)]
					if got.Hits+got.LocalHits > st.Hits+st.LocalHits {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("after the fault, %v is not served from the cache: %+v, %d Redis failures", k, got, conns[0].Stats().RedisFailures)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
}

// clusterWorkload: one writer goroutine per key group, versions
// increasing per key; readers on both Conns check every read against the
// versions acknowledged before it began and begun before it ended.
type clusterWorkload struct {
	refused atomic.Int64 // writes a strict mode refused, nothing written
	t       *testing.T
	repos   []*runtime.Repo[memKey, memData]
	keys    []memKey
	acked   []atomic.Int64
	begun   []atomic.Int64
	ops     atomic.Int64
	errs    atomic.Int64
	wrong   atomic.Int64
	mu      sync.Mutex
	err     error
	bad     string
	stopped atomic.Bool
	running sync.WaitGroup
}

func newClusterWorkload(t *testing.T, repos []*runtime.Repo[memKey, memData], n int) *clusterWorkload {
	w := &clusterWorkload{t: t, repos: repos, acked: make([]atomic.Int64, n), begun: make([]atomic.Int64, n)}
	for i := range n {
		w.keys = append(w.keys, memKey{"cluster", "fault", strconv.Itoa(i)})
	}
	return w
}

func (w *clusterWorkload) start(ctx context.Context) {
	const writers, readers = 4, 4
	for g := range writers {
		w.running.Go(func() {
			for round := 0; !w.stopped.Load(); round++ {
				for i := g; i < len(w.keys); i += writers {
					if w.stopped.Load() {
						return
					}
					v := w.begun[i].Load() + 1
					w.begun[i].Store(v)
					// Put leaves its row in the cache; PutMany deletes
					// it, so that reads miss and fill, racing writes.
					r := w.repos[(i+round)%2]
					var err error
					if round%2 == 0 {
						err = r.Put(ctx, w.keys[i], memData{Value: int(v)}, ms(v))
					} else {
						err = r.PutMany(ctx, []runtime.Item[memKey, memData]{{Key: w.keys[i], Payload: memData{Value: int(v)}, When: ms(v)}})
					}
					if ctx.Err() != nil {
						return
					}
					if me := (*cache.MarkError)(nil); errors.As(err, &me) {
						// A strict mode (local) refused the write before
						// MongoDB while the key's master was out: nothing
						// was written, which the readers' bounds allow.
						w.refused.Add(1)
						continue
					}
					if w.fail(err, "Put", i) {
						continue
					}
					w.acked[i].Store(v)
					w.ops.Add(1)
				}
			}
		})
	}
	for g := range readers {
		w.running.Go(func() {
			for n := g; !w.stopped.Load(); n++ {
				i := (n * 7) % len(w.keys)
				lo := w.acked[i].Load()
				rec, err := w.repos[g%2].Get(ctx, w.keys[i])
				hi := w.begun[i].Load()
				if ctx.Err() != nil {
					return
				}
				got := int64(0)
				if errors.Is(err, runtime.ErrNotFound) {
					err = nil
				} else if err == nil {
					got = int64(rec.Payload.Value)
				}
				if w.fail(err, "Get", i) {
					continue
				}
				w.ops.Add(1)
				if got < lo || got > hi {
					w.wrong.Add(1)
					w.mu.Lock()
					if w.bad == "" {
						w.bad = fmt.Sprintf("Get %v = version %d; acknowledged %d before the read, begun %d by its end", w.keys[i], got, lo, hi)
					}
					w.mu.Unlock()
				}
			}
		})
	}
}

func (w *clusterWorkload) fail(err error, op string, i int) bool {
	if err == nil {
		return false
	}
	w.errs.Add(1)
	w.mu.Lock()
	if w.err == nil {
		w.err = fmt.Errorf("%s %v: %w", op, w.keys[i], err)
	}
	w.mu.Unlock()
	return true
}

// stop lets each goroutine finish its operation (not cancelled: a write
// cancelled after its mark leaves the mark until its deadline) and waits.
func (w *clusterWorkload) stop() { w.stopped.Store(true); w.running.Wait() }

func (w *clusterWorkload) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *clusterWorkload) firstWrong() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bad
}

// slotOwners maps each slot to its master's address and node id.
func slotOwners(t *testing.T, ctx context.Context, admin *redis.ClusterClient) (addr map[int]string, id map[int]string) {
	t.Helper()
	shards, err := admin.ClusterShards(ctx).Result()
	must(t, err)
	addr, id = map[int]string{}, map[int]string{}
	for _, sh := range shards {
		for _, n := range sh.Nodes {
			if n.Role != "master" || n.Health != "online" {
				continue
			}
			for _, r := range sh.Slots {
				for s := int(r.Start); s <= int(r.End); s++ {
					addr[s], id[s] = n.IP+":"+strconv.FormatInt(n.Port, 10), n.ID
				}
			}
		}
	}
	return addr, id
}

func nodeClient(addr string) *redis.Client { return redis.NewClient(&redis.Options{Addr: addr}) }

// migrateKeySlots moves every slot of the workload's keys to the next
// master, as redis-cli --cluster reshard does: the target imports, the
// source migrates, keys move one MIGRATE at a time (the clients meanwhile
// get ASK for keys already moved), then every master learns the new owner
// (MOVED from then on).
func migrateKeySlots(t *testing.T, ctx context.Context, admin *redis.ClusterClient, slots map[int]bool) string {
	owner, ownerID := slotOwners(t, ctx, admin)
	var masters []string
	ids := map[string]string{}
	for s, a := range owner {
		if _, ok := ids[a]; !ok {
			masters = append(masters, a)
		}
		ids[a] = ownerID[s]
	}
	if len(masters) < 2 {
		t.Fatalf("masters: %v", masters)
	}
	moved, keys := 0, 0
	for slot := range slots {
		src := owner[slot]
		dst := masters[0]
		for i, m := range masters {
			if m == src {
				dst = masters[(i+1)%len(masters)]
			}
		}
		sc, dc := nodeClient(src), nodeClient(dst)
		must(t, dc.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src]).Err())
		must(t, sc.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[dst]).Err())
		host, port, _ := strings.Cut(dst, ":")
		for {
			ks, err := sc.ClusterGetKeysInSlot(ctx, slot, 1).Result()
			must(t, err)
			if len(ks) == 0 {
				break
			}
			must(t, sc.Migrate(ctx, host, port, ks[0], 0, 5*time.Second).Err())
			keys++
			time.Sleep(10 * time.Millisecond) // operations meet the slot half moved
		}
		for _, m := range masters {
			c := nodeClient(m)
			must(t, c.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", ids[dst]).Err())
			_ = c.Close()
		}
		_, _ = sc.Close(), dc.Close()
		moved++
	}
	after, _ := slotOwners(t, ctx, admin)
	for slot := range slots {
		if after[slot] == owner[slot] {
			t.Fatalf("slot %d still on %s after its migration", slot, owner[slot])
		}
	}
	return fmt.Sprintf("%d slots migrated (%d keys), each to another master", moved, keys)
}

// killBusiestMaster kills (SIGKILL) the master owning most of the
// workload's slots and waits until its replica has taken over.
func killBusiestMaster(t *testing.T, ctx context.Context, admin *redis.ClusterClient, slots map[int]bool) string {
	owner, _ := slotOwners(t, ctx, admin)
	count := map[string]int{}
	for slot := range slots {
		count[owner[slot]]++
	}
	victim := ""
	for a, n := range count {
		if victim == "" || n > count[victim] {
			victim = a
		}
	}
	vc := nodeClient(victim)
	defer vc.Close()
	info, err := vc.Info(ctx, "server").Result()
	must(t, err)
	pid := 0
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid == 0 {
		t.Fatalf("no process_id in INFO server of %s", victim)
	}
	must(t, syscall.Kill(pid, syscall.SIGKILL))
	killed := time.Now()
	deadline := time.Now().Add(patience)
	for {
		after, _ := slotOwners(t, ctx, admin)
		promoted := true
		for slot := range slots {
			if after[slot] == victim || after[slot] == "" {
				promoted = false
			}
		}
		if promoted {
			return fmt.Sprintf("master %s (%d of %d slots) killed, its replica took over after %s", victim, count[victim], len(slots), time.Since(killed).Round(100*time.Millisecond))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica of %s did not take over within %s", victim, patience)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(string(p)); return len(p), nil }
