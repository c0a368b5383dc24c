#!/bin/sh
# A Redis Cluster node: the password (a Docker secret) goes into a config
# file, for clients (requirepass) and for its replica link (masterauth),
# never onto a command line; then the image's entrypoint drops to the redis
# user. The node's cluster state and data persist in its volume (/data).
set -eu
umask 077
pw=$(cat /run/secrets/redis_password)
printf 'port 6379\ncluster-enabled yes\ncluster-config-file /data/nodes.conf\ncluster-node-timeout 5000\nappendonly yes\nmaxmemory-policy noeviction\nrequirepass %s\nmasterauth %s\n' "$pw" "$pw" >/tmp/redis.conf
chown redis:redis /tmp/redis.conf
exec docker-entrypoint.sh redis-server /tmp/redis.conf
