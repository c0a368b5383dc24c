// Package cache is what Redis holds for persistgen's domains, and the
// protocol that keeps it true. A repository holds one Mode, chosen by its
// domain's cache mode in the manifest:
//
//   - None: Redis holds nothing for the domain.
//   - Identity (NewIdentity), the default and backtest-kit's: Redis maps a
//     key to its row's _id. A read checks the _id against MongoDB with
//     the key, so a wrong identity is a miss, never a wrong answer; it
//     saves MongoDB the search by key, not the round trip.
//   - Value (Shared.Value with schema.CacheValue): Redis holds the row
//     itself, and a warm read is one Redis round trip and no MongoDB.
//   - Local (Shared.Value with schema.CacheLocal): value mode plus an
//     in-process copy per Conn for a short while (local_ttl), and a warm
//     read is no round trip at all.
//
// # The value and local protocol
//
// Each row of those modes is one Redis hash, "pgv:{prefix:db.collection:key}"
// (the braces make it one cluster hash tag), whose fields are: v (the
// document, "D"+BSON, or "A" for a row known to be absent) and vx (its
// expiry); lt, la, lx (a reader's lease: token, grant time, expiry) and
// lt2, la2, lx2 (the last lease taken over, which may still fill); wc,
// wd, we and w:<token> (the writers' mark: how many writers are in flight,
// the mark's deadline, the writers' epoch, each writer's token); g:<proc>
// (until when a process may hold a copy); n (which Redis process stored
// this state); dc, dm (the windows a key another process stored opens).
// All times are Redis's clock, in milliseconds. Six Lua scripts, in lua/,
// are the only code that changes a hash:
//
//   - READ (Value.Read): a live value is a hit (in local mode, with a
//     grant of a copy); a marked key sends the reader to MongoDB and fills
//     nothing; another reader's live lease makes this one wait for its
//     fill, so a herd of cold readers costs one MongoDB read; otherwise
//     the reader gets the lease.
//   - FILL (Found): the lease holder stores what MongoDB answered, only
//     while its token is still the key's lease (no write or newer lease
//     came between), with an expiry anchored at the grant, which came
//     before the MongoDB read.
//   - RELEASE (Failed): a holder whose MongoDB read failed gives its lease
//     back.
//   - BEGIN (Begin): a writer marks the key before it writes MongoDB;
//     until the mark ends or its deadline (two OpTimeouts and a second)
//     passes, no hit, lease, fill or grant is given. It replies how long
//     other processes' copies may still live; the writer waits that long
//     before its commit.
//   - END (End): after MongoDB answered, the writer lifts its mark and
//     deletes the value, or keeps the row its single-key write returned
//     when no other writer marked the key since its BEGIN (the epoch).
//     A write whose outcome is unknown leaves its mark to its deadline.
//   - CLEAR (End, after a BEGIN that could not reach Redis): deletes the
//     value and lease once the write is stored.
//
// Why a read is never stale once a write has returned: every value or copy
// that holds what the write replaced was filled under a lease granted
// before the write's BEGIN (which voided the lease and the value), or
// granted before the write's commit to a process whose copy the writer
// waited out. A fill after BEGIN finds its lease gone and is refused. A
// write that cannot reach Redis after its commit retries until the TTL
// has passed since the commit, by when every value from before it has
// expired; its caller's deadline ends the wait with ErrNotInvalidated.
//
// The breaker (Breaker) takes Redis out of use for a while after a
// failure: reads go to MongoDB alone and never wait for Redis.
//
// A restarted Redis, a promoted replica or a migrated slot may have lost
// marks or grants: a script that finds a Redis younger than a mark's life
// treats every writer as not alone, and one that finds state another Redis
// process stored (field n) drops it and opens two windows: until dc a
// writer waits as for live copies, until dm no write leaves its row.
package cache
