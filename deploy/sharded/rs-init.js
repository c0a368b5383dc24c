// The health check of a config server or shard (mongosh, inside its own
// container): the first time, initiates the one-member replica set
// RS_NAME through the localhost exception; once the member is primary,
// creates the persistgen user on it (password read from the secret's file,
// never a command line), which closes the localhost exception, as MongoDB
// advises for shards. Healthy once primary with its user. `hello` needs
// no login.
const fs = require("fs");
const h = db.hello();
if (!h.setName) {
  rs.initiate({
    _id: process.env.RS_NAME,
    configsvr: process.env.CONFIGSVR === "true",
    members: [{ _id: 0, host: process.env.RS_HOST }],
  });
}
if (!db.hello().isWritablePrimary) {
  quit(1);
}
const admin = db.getSiblingDB("admin");
const user = process.env.MONGO_USER || "persistgen";
const pw = fs.readFileSync("/run/secrets/mongo_password", "utf8").trim();
let authed = false;
try {
  authed = admin.auth(user, pw).ok === 1;
} catch (e) {
  authed = false;
}
if (!authed) {
  admin.createUser({ user: user, pwd: pw, roles: ["root"] });
}
quit(0);
