// The health check of a config server or shard (mongosh, inside its own
// container): initiates the one-member replica set RS_NAME the first time
// (through the localhost exception: no user exists on a shard; clients go
// through mongos), then reports healthy once the member is primary.
// `hello` needs no login.
const name = process.env.RS_NAME;
const h = db.hello();
if (!h.setName) {
  rs.initiate({
    _id: name,
    configsvr: process.env.CONFIGSVR === "true",
    members: [{ _id: 0, host: process.env.RS_HOST }],
  });
}
quit(db.hello().isWritablePrimary ? 0 : 1);
