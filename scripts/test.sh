#!/usr/bin/env bash
# The whole test suite: formatting, go generate, go vet, staticcheck, then
# go test -race against a real Redis and a real MongoDB-wire server, on each
# rung of the server ladder that applies (scripts/servers.sh):
#
#   - PERSIST_TEST_MONGO_URI or PERSIST_TEST_BACKEND given: that server only;
#   - otherwise the faithful server (FerretDB v2 + DocumentDB) when its kit
#     is on the machine, for every package; then the embedded FerretDB v1
#     that make demo uses (SQLite; PERSIST_TEST_V1_BACKEND=ferretdb-pg
#     chooses PostgreSQL), for the integration tests (./tests/...; the other
#     packages do not talk to a server, and the demo's own test runs on it in
#     the embedded module); then, where PostgreSQL runs, the bulk-writer
#     tests on FerretDB v1 over PostgreSQL, whose connection pool they guard;
#   - without the kit (a user's machine): the embedded FerretDB v1 alone.
#
# Whatever this script starts, it stops, also on failure (the faithful
# server excepted: it is a machine-wide service, left running).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=servers.sh
. scripts/servers.sh

STATICCHECK_VERSION=v0.8.2 # honnef.co/go/tools 2025.2; built with `go run`, never in go.mod
V1_BACKEND=${PERSIST_TEST_V1_BACKEND:-ferretdb-sqlite}
V1_PG_TESTS='BulkWriters|ConcurrentBatchWriters|Capabilities|RoundTripBudgets'

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed on:"; echo "$unformatted"; exit 1; fi

echo "== go generate ./... (the committed repo/ must be what domains.yaml produces)"
go generate ./...
if [ "${CI:-}" = true ]; then
	dirty=$(git status --porcelain)
	if [ -n "$dirty" ]; then echo "go generate changed the tree; commit the regenerated code:"; echo "$dirty"; exit 1; fi
fi
go run ./cmd/persistgen check

for mod in . embedded tests/faults; do
	echo "== go vet ($mod)"
	(cd "$mod" && go vet ./...)
	echo "== staticcheck ($mod)"
	(cd "$mod" && go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...)
done

export PERSIST_TEST_REQUIRE=1
given=${PERSIST_TEST_MONGO_URI:-}${PERSIST_TEST_BACKEND:-}
# faults: the linearizability test under injected faults (a module of its
# own, tests/faults). Where the server's updates are not atomic (FerretDB
# v1), each key gets a single writer: what that server can promise.
faults() {
	local writers
	writers=$(writers)
	echo "== go test -race ./tests/faults ($BACKEND, ${PERSIST_TEST_FAULT_SECONDS:-30}s of faults, $writers writer(s) per key)"
	(cd tests/faults && PERSIST_TEST_FAULT_WRITERS=$writers go test -race -count=1 -v -run . ./... | grep -E '^(---|ok|FAIL|PASS)|faults:|not linearizable|_test.go')
}

# modelChecks: the model test's sequences are fewer on SQLite, which scans
# whole collections for every query.
modelChecks() {
	case "$BACKEND" in ferretdb-sqlite) echo "${PERSIST_TEST_MODEL_CHECKS:-25}" ;; *) echo "${PERSIST_TEST_MODEL_CHECKS:-}" ;; esac
}

# writers: where the server's updates of one document are not atomic
# (FerretDB v1), the history tests give each key a single writer too.
writers() {
	case "$BACKEND" in ferretdb-*) echo one ;; *) echo many ;; esac
}

# go test's own limit is 10 minutes per package binary: a deadline a slow
# machine can miss (the integration tests on the embedded SQLite server,
# which scans whole collections, came near it). The limit stays, as a
# guard against a hang, well past any run seen.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-timeout=45m"

start_servers
ran=("$BACKEND")
SECONDS=0
echo "== go test -race ./... ($BACKEND)"
PERSIST_TEST_FAULT_WRITERS=$(writers) PERSIST_TEST_MODEL_CHECKS=$(modelChecks) go test -race -count=1 ${GOTESTFLAGS:-} ./...
faults
echo "== $BACKEND: passed in ${SECONDS}s"

# The Redis Cluster subset: the tests whose subject is the cache's data
# paths (not one Redis's proxy, restart or round-trip count), against a
# loopback cluster of 3 masters and 3 replicas this script starts.
CLUSTER_TESTS='^(TestOnARedisClusterKeysSpreadOverMasters|TestValueCacheDistrustsAnotherServersState|TestValueCacheNeverStaleAfterWrite|TestValueCacheHerdReadsMongoOnce|TestCacheNoneNeverTouchesRedis|TestValueCacheWithRedisDown|TestLocalCacheNeverStaleAcrossConns|TestLocalCacheTwoWriters|TestLocalCacheWithValueModeWriters|TestLocalCacheIsBounded|TestLocalCacheHitsAreCallersOwn|TestGetManyAcrossReadChunks|TestConcurrentBatchWritersOnTheSameKeys|TestGeneratedRepositoriesOfAllSixteenDomains|TestCandlesOfTwoExchangesNeverMix|TestFeedsReadNewestFirstUpToTheEnginesLimits|TestLogEntryIsNeverOverwritten|TestBucketRemovalHidesButHasSeesAndAbsentRemovalCreatesNothing|TestLastWriterWinsAndAsOfThroughGeneratedRepos)$'
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
	SECONDS=0
	start_redis_cluster || exit 1
	echo "== go test -race ./tests on the Redis Cluster (the cluster subset; $BACKEND)"
	go test -race -count=1 -run "$CLUSTER_TESTS" ./tests
	echo "== Redis Cluster subset: passed in ${SECONDS}s"
	unset PERSIST_TEST_REDIS_CLUSTER
	ran+=("Redis Cluster (subset)")
else
	echo "== no redis-server or redis-cli here: the Redis Cluster subset is skipped"
fi

if [ -z "$given" ] && [ "$BACKEND" = documentdb ]; then
	SECONDS=0
	start_mongo "$V1_BACKEND"
	describe_servers
	echo "== go test -race ./tests/... ($BACKEND)"
	PERSIST_TEST_FAULT_WRITERS=$(writers) PERSIST_TEST_MODEL_CHECKS=$(modelChecks) go test -race -count=1 ${GOTESTFLAGS:-} ./tests/...
	PERSIST_TEST_FAULT_SECONDS=${PERSIST_TEST_FAULT_SECONDS:-15} faults
	echo "== $BACKEND: passed in ${SECONDS}s"
	stop_mongo
	ran+=("$BACKEND")
	if [ "$V1_BACKEND" != ferretdb-pg ] && pg_available; then
		# FerretDB v1 on PostgreSQL hangs once its pool of PostgreSQL
		# connections is held by matched updates: the tests that guard
		# against that run on it too.
		SECONDS=0
		start_mongo ferretdb-pg
		describe_servers
		echo "== go test -race -run '$V1_PG_TESTS' ./tests ($BACKEND)"
		go test -race -count=1 -run "$V1_PG_TESTS" ./tests
		echo "== $BACKEND (bulk-writer subset): passed in ${SECONDS}s"
		stop_mongo
		ran+=("$BACKEND (bulk-writer subset)")
	fi
fi

echo "== go test ./... (embedded: the demo on its embedded FerretDB v1 on SQLite and miniredis)"
(cd embedded && go test -count=1 ./...)
echo "== the suite passed on: ${ran[*]}"
