// The health check of mongos (mongosh, inside its container): the first
// time, creates the persistgen user from the password file through the
// localhost exception (the password is read here, never on a command
// line), then adds the two shards; healthy once both are in the cluster.
const admin = db.getSiblingDB("admin");
const user = process.env.MONGO_USER || "persistgen";
const fs = require("fs");
const pw = fs.readFileSync("/run/secrets/mongo_password", "utf8").trim();
let authed = false;
try {
  authed = admin.auth(user, pw).ok === 1;
} catch (e) {
  authed = false;
}
if (!authed) {
  admin.createUser({ user: user, pwd: pw, roles: ["root"] });
  admin.auth(user, pw);
}
const have = admin.runCommand({ listShards: 1 }).shards.map((s) => s._id);
for (const s of ["shard1", "shard2"]) {
  if (!have.includes(s)) {
    sh.addShard(`${s}/${s}:27017`);
  }
}
quit(admin.runCommand({ listShards: 1 }).shards.length === 2 ? 0 : 1);
