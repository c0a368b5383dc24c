package schema

import (
	"sort"
	"strings"
)

// RedisCommands lists the Redis commands the runtime sends for the identity
// cache that an ACL must grant: PING when it waits for the server, and GET,
// SET and DEL on identity keys (singly or pipelined). The handshake's AUTH
// and HELLO are open to every user; SELECT is sent only for a database
// other than 0 (grant +select then). The Conn's own client sends no CLIENT
// SETINFO. A Redis user granted these, on RedisKeyPatterns, can run
// everything persistgen does.
func RedisCommands() []string {
	return []string{"ping", "get", "set", "del"}
}

// globEscape escapes the characters Redis key patterns treat as special.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// RedisKeyPatterns returns the key patterns the schemas' identity keys
// match, behind a Conn's KeyPrefix: one "~prefix:*" per domain, sorted.
func RedisKeyPatterns(keyPrefix string, schemas ...*Schema) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range schemas {
		p := "~" + globEscape(keyPrefix+s.RedisPrefix+":") + "*"
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// RedisACL returns the ACL rules of a Redis user limited to what the
// runtime needs for the schemas: their keys, the commands of
// RedisCommands, no pub/sub channels. Use them as
// `ACL SETUSER name on >password <rules>` or in an ACL file.
func RedisACL(keyPrefix string, schemas ...*Schema) string {
	rules := []string{"resetkeys"}
	rules = append(rules, RedisKeyPatterns(keyPrefix, schemas...)...)
	rules = append(rules, "resetchannels", "-@all")
	for _, c := range RedisCommands() {
		rules = append(rules, "+"+c)
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
