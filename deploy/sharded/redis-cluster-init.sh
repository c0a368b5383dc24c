#!/bin/sh
# Forms the Redis Cluster once (3 masters, one replica each), from the
# nodes' fixed addresses. On later starts the nodes keep their cluster in
# their volumes (they know each other): this then only waits until it is
# ok again, and never runs create on nodes that are not empty. The
# password reaches redis-cli through REDISCLI_AUTH, never its command line.
set -eu
REDISCLI_AUTH=$(cat /run/secrets/redis_password)
export REDISCLI_AUTH
known=$(redis-cli -h 172.30.0.11 cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')
if [ "${known:-1}" -le 1 ]; then
	redis-cli --cluster create 172.30.0.11:6379 172.30.0.12:6379 172.30.0.13:6379 \
		172.30.0.14:6379 172.30.0.15:6379 172.30.0.16:6379 --cluster-replicas 1 --cluster-yes
fi
for _ in $(seq 1 120); do
	if redis-cli -h 172.30.0.11 cluster info | grep -q '^cluster_state:ok'; then
		echo "the Redis Cluster is ok"
		exit 0
	fi
	sleep 1
done
echo "the Redis Cluster did not reach cluster_state:ok" >&2
exit 1
