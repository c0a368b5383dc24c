# Sourced by test.sh and bench.sh: the ladder of test servers. Provides a
# Redis and a MongoDB-wire server in PERSIST_TEST_REDIS_URL and
# PERSIST_TEST_MONGO_URI, starting them when needed, and stops what it
# started on exit (except the faithful server, a machine-wide service).
#
#   Redis:   $PERSIST_TEST_REDIS_URL; else the Redis on 127.0.0.1:6379 if it
#            answers; else a redis-server started on a free port.
#   MongoDB, the first that applies:
#     1. $PERSIST_TEST_MONGO_URI (a real MongoDB, say), unless
#        PERSIST_TEST_BACKEND forces one of the others;
#     2. documentdb: FerretDB v2 + DocumentDB, the faithful server, built and
#        started by the kit's start.sh when the kit is present (development
#        and CI machines): $PERSIST_TEST_DOCUMENTDB_KIT, ../shared/documentdb
#        beside the checkout, or /work/shared/documentdb
#        (PERSIST_TEST_DOCUMENTDB_KIT=none acts as a machine without it);
#     3. ferretdb-pg: the embedded FerretDB v1 (embedded/cmd/ferretdb-test)
#        on a temporary PostgreSQL database, when 127.0.0.1:5432 answers;
#     4. ferretdb-sqlite: the embedded FerretDB v1 on SQLite in a temporary
#        directory (what make demo uses; needs nothing).
#   PERSIST_TEST_BACKEND=documentdb|ferretdb-pg|ferretdb-sqlite forces one
#   (sqlite is accepted for ferretdb-sqlite).
#
# start_servers sets BACKEND (the rung used) and SERVER_NOTE (a line naming
# the server and its version), and exports PERSIST_TEST_EXPECT_CAPABILITIES
# for the servers whose capabilities are known, so that the suite checks
# the runtime's probe against them.
WORK=$(mktemp -d)
PIDS=()
MONGO_PID=

cleanup() {
	local pid
	for pid in "${PIDS[@]:-}"; do
		[ -n "$pid" ] || continue
		kill -TERM "$pid" 2>/dev/null || true
		# ferretdb-test drops its PostgreSQL database on the way out.
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# answers HOST PORT: true when something accepts TCP connections there.
answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

redis_pong() {
	local line
	exec 3<>"/dev/tcp/$1/$2" || return 1
	printf 'PING\r\n' >&3
	IFS= read -r -t 2 line <&3 || true
	exec 3>&- 3<&-
	[[ "$line" == +PONG* ]]
}

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 20000))
		answers 127.0.0.1 "$p" || { echo "$p"; return 0; }
	done
	echo "no free port found" >&2
	return 1
}

# documentdb_kit prints the faithful server's start.sh, if the kit is here.
# A kit given by PERSIST_TEST_DOCUMENTDB_KIT is the only one looked at (none:
# as on a machine without it). Otherwise: beside the checkout, then where the
# development machines of this project keep it (/work/shared), for clones
# made elsewhere on them, such as CI's.
documentdb_kit() {
	local d
	case "${PERSIST_TEST_DOCUMENTDB_KIT:-}" in
	none) return 1 ;;
	"") ;;
	*)
		[ -x "$PERSIST_TEST_DOCUMENTDB_KIT/start.sh" ] || { echo "PERSIST_TEST_DOCUMENTDB_KIT=$PERSIST_TEST_DOCUMENTDB_KIT holds no executable start.sh" >&2; exit 1; }
		echo "$(cd "$PERSIST_TEST_DOCUMENTDB_KIT" && pwd)/start.sh"
		return 0
		;;
	esac
	for d in "$ROOT/../shared/documentdb" /work/shared/documentdb; do
		[ -x "$d/start.sh" ] && { echo "$(cd "$d" && pwd)/start.sh"; return 0; }
	done
	return 1
}

start_redis() {
	if [ -n "${PERSIST_TEST_REDIS_URL:-}" ]; then return; fi
	if redis_pong 127.0.0.1 6379 2>/dev/null; then
		export PERSIST_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
		return
	fi
	command -v redis-server >/dev/null || { echo "no Redis on 127.0.0.1:6379 and no redis-server to start: apt-get install redis-server, or set PERSIST_TEST_REDIS_URL" >&2; exit 1; }
	local port
	port=$(free_port)
	redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 1 100); do redis_pong 127.0.0.1 "$port" 2>/dev/null && break; sleep 0.1; done
	redis_pong 127.0.0.1 "$port" || { echo "redis-server did not start:"; cat "$WORK/redis.log"; exit 1; } >&2
	export PERSIST_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
}

# start_cluster_node USED...: starts one cluster-enabled redis-server and
# sets NODE_PORT to its port (not printed: the node's pid must reach PIDS in
# this shell, not in a subshell). Ports are drawn below the kernel's ephemeral range
# (32768 up), so that neither a node's port nor its cluster bus (port +
# 10000) can be taken by an outgoing connection of the suite, and apart
# from USED (nodes that may not listen yet); a node that does not answer
# is retried on another port, five times, then its log is shown.
start_cluster_node() {
	local p dir pid u clash found
	for _ in 1 2 3 4 5; do
		found=0
		for _ in $(seq 1 200); do
			p=$((12000 + RANDOM % 10000))
			clash=0
			for u in "$@"; do [ "$u" = "$p" ] && clash=1; done
			if [ "$clash" = 0 ] && ! answers 127.0.0.1 "$p" && ! answers 127.0.0.1 $((p + 10000)); then found=1; break; fi
		done
		[ "$found" = 1 ] || continue
		dir="$WORK/cluster-$p"
		mkdir -p "$dir"
		redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
			--cluster-node-timeout 2000 --repl-diskless-sync-delay 0 --save "" --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			# the node answering is ours, not another server that took the port
			if redis_pong 127.0.0.1 "$p" 2>/dev/null && redis-cli -p "$p" info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$pid"; then
				NODE_PORT=$p
				return 0
			fi
			sleep 0.1
		done
		kill -TERM "$pid" 2>/dev/null || true
		echo "== a Redis Cluster node did not start on port $p:" >&2
		tail -n 5 "$dir/redis.log" >&2
	done
	return 1
}

# start_redis_cluster: a loopback Redis Cluster of 3 masters with one
# replica each (redis-server and redis-cli --cluster create), its seed
# addresses exported as PERSIST_TEST_REDIS_CLUSTER; returns 1 (saying why)
# where redis-server or redis-cli is missing or the cluster does not form.
start_redis_cluster() {
	if [ -n "${PERSIST_TEST_REDIS_CLUSTER:-}" ]; then return 0; fi
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null || { echo "== no redis-server or redis-cli: no Redis Cluster" >&2; return 1; }
	local ports=() addrs=() p
	for _ in 1 2 3 4 5 6; do
		start_cluster_node "${ports[@]}" || return 1
		p=$NODE_PORT
		ports+=("$p")
		addrs+=("127.0.0.1:$p")
	done
	if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$WORK/cluster-create.log" 2>&1; then
		echo "== the Redis Cluster did not form:" >&2
		cat "$WORK/cluster-create.log" >&2
		return 1
	fi
	for _ in $(seq 1 100); do
		ok=1
		for p in "${ports[@]}"; do
			redis-cli -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || ok=0
		done
		[ "$ok" = 1 ] && break
		sleep 0.1
	done
	[ "$ok" = 1 ] || { echo "== the Redis Cluster did not reach cluster_state:ok" >&2; return 1; }
	PERSIST_TEST_REDIS_CLUSTER=$(IFS=,; echo "${addrs[*]}")
	export PERSIST_TEST_REDIS_CLUSTER
	echo "== Redis Cluster: 3 masters, 3 replicas at $PERSIST_TEST_REDIS_CLUSTER"
}

# start_documentdb: the faithful server; returns 1 when it cannot be had.
start_documentdb() {
	local kit out uri
	kit=$(documentdb_kit) || { echo "== the faithful server's kit (../shared/documentdb) is not on this machine" >&2; return 1; }
	echo "== starting the faithful server: $kit (the first time on a machine builds it, about 2 minutes)"
	if ! out=$("$kit" 2>&1); then
		echo "$out" | tail -n 20 >&2
		echo "== $kit failed" >&2
		return 1
	fi
	uri=$(echo "$out" | sed -n 's/^.*ready: \(mongodb:[^ ]*\).*$/\1/p' | tail -n 1)
	[ -n "$uri" ] || { echo "$out" | tail -n 5 >&2; echo "== $kit printed no ready line" >&2; return 1; }
	export PERSIST_TEST_MONGO_URI="$uri"
	local tarball
	tarball=$(ls "$(dirname "$kit")"/documentdb-*.tar.gz 2>/dev/null | head -n 1)
	SERVER_NOTE="FerretDB v2 + DocumentDB ($(basename "${tarball:-documentdb}" .tar.gz)), the faithful server"
	echo "== the faithful server is a machine-wide service and stays running ($(dirname "$kit")/stop.sh stops it)"
	export PERSIST_TEST_EXPECT_CAPABILITIES="bulk_results,findandmodify_projection,infinity,nan,nested_arrays,nul_in_strings,rare_types"
	# The kit's FerretDB binary and PostgreSQL, for the test that starts a
	# TLS listener of its own on them (TestMongoOverTLS).
	local bin="${DOCUMENTDB_DIR:-/tmp/documentdb}/bin/ferretdb"
	if [ -x "$bin" ]; then
		export PERSIST_TEST_FERRETDB2_BIN="$bin"
		export PERSIST_TEST_FERRETDB2_PG="postgres://postgres@127.0.0.1:${PGPORT:-5499}/postgres"
	fi
}

# start_ferretdb pg|sqlite: the embedded FerretDB v1.
start_ferretdb() {
	local backend=() uri version expect
	version=$(awk '$1 == "github.com/FerretDB/FerretDB" {print $2}' "$ROOT/embedded/go.mod")
	echo "== building the embedded FerretDB $version (embedded/cmd/ferretdb-test)"
	(cd "$ROOT/embedded" && go build -o "$WORK/ferretdb-test" ./cmd/ferretdb-test)
	if [ "$1" = pg ]; then
		backend=(-pg-admin "${PERSIST_TEST_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}")
		SERVER_NOTE="embedded FerretDB $version on PostgreSQL"
		expect=""
	else
		backend=(-sqlite "$WORK/sqlite")
		SERVER_NOTE="embedded FerretDB $version on SQLite"
		expect="nul_in_strings"
	fi
	"$WORK/ferretdb-test" "${backend[@]}" >"$WORK/ferret.out" 2>"$WORK/ferret.err" &
	MONGO_PID=$!
	PIDS+=("$MONGO_PID")
	for _ in $(seq 1 300); do
		grep -q '^MONGODB_URI=' "$WORK/ferret.out" 2>/dev/null && break
		kill -0 "$MONGO_PID" 2>/dev/null || break
		sleep 0.1
	done
	uri=$(sed -n 's/^MONGODB_URI=//p' "$WORK/ferret.out")
	[ -n "$uri" ] || { echo "FerretDB did not start:"; cat "$WORK/ferret.err"; exit 1; } >&2
	export PERSIST_TEST_MONGO_URI="$uri"
	export PERSIST_TEST_EXPECT_CAPABILITIES="$expect"
}

# stop_mongo stops an embedded FerretDB that start_ferretdb started (to run
# the suite again on another rung).
stop_mongo() {
	[ -n "$MONGO_PID" ] || return 0
	kill -TERM "$MONGO_PID" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 "$MONGO_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$MONGO_PID" 2>/dev/null || true
	local kept=() pid
	for pid in "${PIDS[@]:-}"; do [ "$pid" = "$MONGO_PID" ] || kept+=("$pid"); done
	PIDS=("${kept[@]:-}")
	MONGO_PID=
}

# pg_available: a PostgreSQL for the embedded FerretDB (given, or on 5432).
pg_available() { [ -n "${PERSIST_TEST_PG_ADMIN:-}" ] || answers 127.0.0.1 5432; }

# start_mongo [BACKEND]: one rung of the ladder (the given one, or the first
# that applies).
start_mongo() {
	local want=${1:-${PERSIST_TEST_BACKEND:-}}
	unset PERSIST_TEST_EXPECT_CAPABILITIES
	[ "$want" = sqlite ] && want=ferretdb-sqlite
	case "$want" in
	"")
		if [ -n "${PERSIST_TEST_MONGO_URI:-}" ]; then
			BACKEND=given
			SERVER_NOTE="given by PERSIST_TEST_MONGO_URI"
		elif documentdb_kit >/dev/null; then
			# The kit is here (a development or CI machine): a failure to
			# start it is a failure, not a reason to test less.
			BACKEND=documentdb
			start_documentdb || { [ "${PERSIST_TEST_ALLOW_FALLBACK:-}" = 1 ] && start_mongo_fallback; } || {
				echo "the faithful server's kit is here but did not start (see above); fix it, or set PERSIST_TEST_ALLOW_FALLBACK=1 to fall back to the embedded FerretDB v1, or PERSIST_TEST_DOCUMENTDB_KIT=none" >&2
				exit 1
			}
		elif pg_available; then
			echo "== no kit for the faithful server on this machine: the embedded FerretDB v1 on PostgreSQL" >&2
			BACKEND=ferretdb-pg
			start_ferretdb pg
		else
			echo "== no kit for the faithful server on this machine: the embedded FerretDB v1 on SQLite" >&2
			BACKEND=ferretdb-sqlite
			start_ferretdb sqlite
		fi
		;;
	documentdb)
		BACKEND=documentdb
		start_documentdb || { echo "PERSIST_TEST_BACKEND=documentdb: the faithful server could not be started (set PERSIST_TEST_DOCUMENTDB_KIT to the directory holding start.sh)" >&2; exit 1; }
		;;
	ferretdb-pg)
		pg_available || { echo "PERSIST_TEST_BACKEND=ferretdb-pg: no PostgreSQL on 127.0.0.1:5432 (set PERSIST_TEST_PG_ADMIN)" >&2; exit 1; }
		BACKEND=ferretdb-pg
		start_ferretdb pg
		;;
	ferretdb-sqlite)
		BACKEND=ferretdb-sqlite
		start_ferretdb sqlite
		;;
	*)
		echo "PERSIST_TEST_BACKEND=$want: use documentdb, ferretdb-pg or ferretdb-sqlite (or unset it)" >&2
		exit 2
		;;
	esac
}

# start_mongo_fallback: the embedded FerretDB v1, when the faithful server
# was wanted but is not to be had and PERSIST_TEST_ALLOW_FALLBACK=1.
start_mongo_fallback() {
	echo "== PERSIST_TEST_ALLOW_FALLBACK=1: falling back to the embedded FerretDB v1" >&2
	if pg_available; then
		BACKEND=ferretdb-pg
		start_ferretdb pg
	else
		BACKEND=ferretdb-sqlite
		start_ferretdb sqlite
	fi
}

# describe_servers prints which servers run, with their versions and the
# capabilities persistgen probed (never a connection string: they may hold
# passwords).
describe_servers() {
	echo "== MongoDB wire ($BACKEND): $SERVER_NOTE"
	(cd "$ROOT" && go run ./internal/testenv/serverinfo) | sed 's/^/== /'
}

start_servers() {
	start_redis
	start_mongo "$@"
	describe_servers
}
