package schema

import (
	"sort"
	"strings"
)

// RedisCommands lists the Redis commands the runtime sends for domains of
// a cache mode that an ACL must grant. Every mode but none: PING when the
// Conn waits for the server. Identity: GET, SET and DEL on identity keys
// (singly or pipelined). Value and local: their scripts (EVALSHA, and EVAL
// when a restarted Redis lost them) and the commands they run (TIME, HGET,
// HMGET, HGETALL, HKEYS, HSET, HINCRBY, HDEL, PEXPIREAT, PTTL, and INFO,
// which writes read the server's uptime from: copies and marks granted
// before a restart outlive it), and DEL. The handshake's AUTH and HELLO
// are open to every user; SELECT is sent only for a database other than 0
// (grant +select then). The Conn's own client sends no CLIENT SETINFO.
func RedisCommands(mode CacheMode) []string {
	switch mode {
	case CacheNone:
		return []string{"ping"} // Ready waits for Redis whatever the modes
	case CacheValue, CacheLocal:
		return []string{"ping", "evalsha", "eval", "time", "hget", "hmget", "hgetall", "hkeys", "hset", "hincrby", "hdel", "pexpireat", "pttl", "del", "info"}
	}
	return []string{"ping", "get", "set", "del"}
}

// ValueKey is the Redis key of a value-cached row, from its identity key
// without a Conn's KeyPrefix ("signal_cache:a:b"): a hash tag, so that every
// script touches one cluster slot.
func ValueKey(keyPrefix, redisKey string) string { return keyPrefix + "pgv:{" + redisKey + "}" }

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

// RedisKeyPatterns returns the key patterns the schemas' Redis keys match,
// behind a Conn's KeyPrefix, sorted: "~prefix:*" for an identity domain,
// "~pgv:{prefix:*" for a value domain, nothing for mode none.
func RedisKeyPatterns(keyPrefix string, schemas ...*Schema) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range schemas {
		var p string
		switch s.Mode() {
		case CacheNone:
			continue
		case CacheValue, CacheLocal:
			p = "~" + GlobEscape(keyPrefix+"pgv:{"+s.RedisPrefix+":") + "*"
		default:
			p = "~" + GlobEscape(keyPrefix+s.RedisPrefix+":") + "*"
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// RedisACL returns the ACL rules of a Redis user limited to what the
// runtime needs for the schemas: their keys, the commands their cache
// modes send (RedisCommands), no pub/sub channels. Use them as
// `ACL SETUSER name on >password <rules>` or in an ACL file.
func RedisACL(keyPrefix string, schemas ...*Schema) string {
	rules := []string{"resetkeys"}
	rules = append(rules, RedisKeyPatterns(keyPrefix, schemas...)...)
	rules = append(rules, "resetchannels", "-@all")
	seen := map[string]bool{}
	for _, s := range schemas {
		for _, c := range RedisCommands(s.Mode()) {
			if !seen[c] {
				seen[c] = true
				rules = append(rules, "+"+c)
			}
		}
	}
	return strings.Join(rules, " ")
}

// MongoActions lists the MongoDB privilege actions the runtime needs on
// each domain's collection: reads (find), upserts and soft deletes
// (insert, update; findAndModify needs both), EnsureIndexes (createIndex,
// listIndexes). It never drops, renames or deletes from them.
func MongoActions() []string {
	return []string{"find", "insert", "update", "createIndex", "listIndexes"}
}

// ProbeActions lists the actions the capability probe needs on its own
// collection (ProbeCollection): it writes test documents and removes them.
// Without them, set runtime.Config.Capabilities and grant nothing there.
func ProbeActions() []string { return []string{"find", "insert", "update", "remove"} }

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
		b.WriteString("  {resource: {db: " + q(db) + ", collection: " + q(s.Collection) + "}, actions: " + list(MongoActions()) + "},\n")
	}
	b.WriteString("  {resource: {db: " + q(db) + ", collection: " + q(ProbeCollection) + "}, actions: " + list(ProbeActions()) + "},\n")
	b.WriteString("]})")
	return b.String()
}
