package schema

import (
	"sort"
	"strings"
)

// redisCommands lists the Redis commands the runtime sends for domains of
// a cache mode that an ACL must grant. Every mode but none: PING when the
// Conn waits for the server. Identity: GET, SET and DEL on identity keys
// (singly or pipelined). Value and local: their scripts (SCRIPT LOAD when
// the Conn is ready, EVALSHA, and EVAL when a restarted Redis lost them)
// and the commands they run (TIME, HGET,
// HMGET, HGETALL, HKEYS, HSET, HINCRBY, HDEL, PEXPIREAT, PTTL, and INFO,
// which writes read the server's uptime from: copies and marks granted
// before a restart outlive it), and DEL. The handshake's AUTH and HELLO
// are open to every user; SELECT is sent only for a database other than 0
// (grant +select then). The Conn's own client sends no CLIENT SETINFO.
func redisCommands(mode CacheMode) []string {
	switch mode {
	case CacheNone:
		return []string{"ping"} // Ready waits for Redis whatever the modes
	case CacheValue, CacheLocal:
		return []string{"ping", "script|load", "evalsha", "eval", "time", "hget", "hmget", "hgetall", "hkeys", "hset", "hincrby", "hdel", "pexpireat", "pttl", "del", "info"}
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
// "~pgv:{prefix:*" for a value domain, nothing for mode none.
func redisKeyPatterns(keyPrefix string, schemas ...*Schema) []string {
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
