package schema

import (
	"sort"
	"strings"
)

// redisCommands lists the Redis commands the runtime sends for domains of
// a cache mode that an ACL must grant. Every mode but none: PING when the
// Conn waits for the server. Identity: GET, SET and DEL on identity keys
// (singly or pipelined). Value and local: their scripts (SCRIPT LOAD before
// a Conn's first operation on such a domain, EVALSHA, and EVAL when a
// restarted Redis lost them)
// and the commands they run (TIME, HGET,
// HMGET, HGETALL, HKEYS, HSET, HINCRBY, HDEL, PEXPIREAT, PTTL, and INFO,
// which writes read the server's uptime from: copies and marks granted
// before a restart outlive it), and DEL. The handshake's AUTH and HELLO
// are open to every user; SELECT is sent only for a database other than 0
// (grant +select then). The Conn's own client sends no CLIENT SETINFO.
// Every mode reads and sets its collections' markers (MarkerKey) with GET
// and SET.
func redisCommands(mode CacheMode) []string {
	switch mode {
	case CacheNone:
		return []string{"ping", "get", "set"} // Ready waits for Redis; the marker (MarkerKey)
	case CacheValue, CacheLocal:
		return []string{"ping", "get", "set", "script|load", "evalsha", "eval", "time", "hget", "hmget", "hgetall", "hkeys", "hset", "hincrby", "hdel", "pexpireat", "pttl", "del", "info"}
	}
	return []string{"ping", "get", "set", "del"}
}

// GlobEscape escapes the characters Redis key patterns (ACL, SCAN MATCH)
// treat as special.
func GlobEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// redisKeyPatterns returns the key patterns the schemas' Redis keys match,
// behind a Conn's KeyPrefix, sorted: "~prefix:*" for an identity domain,
// "~pgv:{prefix:*" for a value domain, and "~pgm:{prefix:*" (the
// collection's marker) for every domain.
func redisKeyPatterns(keyPrefix string, schemas ...*Schema) []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, s := range schemas {
		add("~" + GlobEscape(keyPrefix+"pgm:{"+s.RedisPrefix+":") + "*")
		switch s.Mode() {
		case CacheNone:
		case CacheValue, CacheLocal:
			add("~" + GlobEscape(keyPrefix+"pgv:{"+s.RedisPrefix+":") + "*")
		default:
			add("~" + GlobEscape(keyPrefix+s.RedisPrefix+":") + "*")
		}
	}
	sort.Strings(out)
	return out
}

// MarkerKey is the Redis key that records which cache family a
// collection is used with (the value "rows" for the value and local
// modes, "identities" for identity and none): every Conn checks it before
// its first operation on the collection, so that processes whose modes
// cannot share a collection find out (and persistgen-ops audit reports
// it). Its braces make it one cluster hash tag.
func MarkerKey(keyPrefix, redisPrefix, database, collection string) string {
	return keyPrefix + "pgm:{" + redisPrefix + ":" + database + "." + collection + "}"
}

// CacheFamily is the marker's value for a cache mode: the value and local
// modes keep rows in Redis that every writer must mark and invalidate
// ("rows"); identity and none keep at most identities, which a reader
// checks against MongoDB ("identities"); the series mode keeps identities
// too, but its processes keep the elements they read, trusting that no
// writer overwrites or removes one, which a Put of identity or none
// would ("series"). Modes of one family may share a collection; modes of
// two may not.
func CacheFamily(m CacheMode) string {
	switch m {
	case CacheValue, CacheLocal:
		return "rows"
	case CacheSeries:
		return "series"
	}
	return "identities"
}

// RedisACL returns the ACL rules of a Redis user limited to what the
// runtime needs for the schemas: their keys, the commands their cache
// modes send (redisCommands), no pub/sub channels. Use them as
// `ACL SETUSER name on >password <rules>` or in an ACL file.
func RedisACL(keyPrefix string, schemas ...*Schema) string {
	rules := []string{"resetkeys"}
	rules = append(rules, redisKeyPatterns(keyPrefix, schemas...)...)
	rules = append(rules, "resetchannels", "-@all")
	seen := map[string]bool{}
	for _, s := range schemas {
		for _, c := range redisCommands(s.Mode()) {
			if !seen[c] {
				seen[c] = true
				rules = append(rules, "+"+c)
			}
		}
	}
	return strings.Join(rules, " ")
}

// mongoActions lists the MongoDB privilege actions the runtime needs on
// each domain's collection: reads (find), upserts and soft deletes
// (insert, update; findAndModify needs both), EnsureIndexes (createIndex,
// listIndexes). It never drops, renames or deletes from them.
func mongoActions() []string {
	return []string{"find", "insert", "update", "createIndex", "listIndexes"}
}

// probeActions lists the actions the capability probe needs on its own
// collection (ProbeCollection): it writes test documents and removes them.
// Without them, set runtime.Config.Capabilities and grant nothing there.
func probeActions() []string { return []string{"find", "insert", "update", "remove"} }

// ProbeCollection is the collection where a Conn probes what the server
// can store, once, at its first operation.
const ProbeCollection = "persistgen-probe"

// MongoRole returns a mongosh command that creates a role with exactly the
// privileges the runtime needs on database db for the schemas.
func MongoRole(role, db string, schemas ...*Schema) string {
	var b strings.Builder
	q := func(s string) string { return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"` }
	list := func(xs []string) string {
		parts := make([]string, len(xs))
		for i, x := range xs {
			parts[i] = q(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	b.WriteString("db.getSiblingDB(\"admin\").createRole({role: " + q(role) + ", roles: [], privileges: [\n")
	for _, s := range schemas {
		b.WriteString("  {resource: {db: " + q(db) + ", collection: " + q(s.Collection) + "}, actions: " + list(mongoActions()) + "},\n")
	}
	b.WriteString("  {resource: {db: " + q(db) + ", collection: " + q(ProbeCollection) + "}, actions: " + list(probeActions()) + "},\n")
	b.WriteString("]})")
	return b.String()
}
