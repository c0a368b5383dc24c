# Sourced by test.sh and bench.sh: the ladder of test servers. Provides a
# Redis and a MongoDB-wire server in PERSIST_TEST_REDIS_URL and
# PERSIST_TEST_MONGO_URI, starting them when needed, and stops what it
# started on exit (except the faithful server, a machine-wide service).
#
#   Redis:   $PERSIST_TEST_REDIS_URL; else a redis-server of the run's own,
#            started on a free loopback port with nothing saved or loaded
#            (so no keys and no scripts from earlier runs), stopped on exit.
#            Never whatever answers on 127.0.0.1:6379: a run must not depend
#            on what earlier runs left there.
#   MongoDB, the first that applies:
#     1. $PERSIST_TEST_MONGO_URI (a real MongoDB, say), unless
#        PERSIST_TEST_BACKEND forces one of the others;
#     2. documentdb: FerretDB v2 + DocumentDB, the faithful server, built and
#        started by the kit's start.sh when the kit is present (development
#        and CI machines): $PERSIST_TEST_DOCUMENTDB_KIT, else
#        ../shared/documentdb beside the checkout
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

# redis_process_id PORT: prints the process id of the Redis answering on
# 127.0.0.1:PORT (INFO server; nothing when it is not a Redis, or one that
# wants a password), so that a server found there is known to be ours.
redis_process_id() (
	local line
	exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
	printf 'INFO server\r\n' >&3
	while IFS= read -r -t 2 line <&3; do
		line=${line%$'\r'}
		case "$line" in
		process_id:*) echo "${line#process_id:}"; break ;;
		-*) break ;;
		esac
	done
)

# loopback_port BUS USED...: prints a port of 127.0.0.1 that nothing
# listens on, drawn from 12000-21999: below the kernel's ephemeral range
# (32768 up), so that no outgoing connection of the suite can take it
# between now and the server's bind, and apart from USED (servers started
# that may not listen yet). BUS=bus wants the cluster bus port (port +
# 10000, so 22000-31999: still below that range) free too; BUS=- does not.
loopback_port() {
	local bus=$1 p u clash
	shift
	for _ in $(seq 1 200); do
		p=$((12000 + RANDOM % 10000))
		clash=0
		for u in "$@"; do [ "$u" = "$p" ] && clash=1; done
		[ "$clash" = 0 ] || continue
		answers 127.0.0.1 "$p" && continue
		[ "$bus" = bus ] && answers 127.0.0.1 $((p + 10000)) && continue
		echo "$p"
		return 0
	done
	echo "== no free loopback port in 12000-21999" >&2
	return 1
}

# start_redis_node NAME BUS USED... [-- ARGS...]: starts a redis-server of
# this run's own on a free loopback port (loopback_port BUS USED...), with
# nothing saved or loaded, in a directory of its own under WORK, with ARGS
# added to its command line, and sets NODE_PORT to its port (not printed:
# the server's pid must reach PIDS in this shell, not in a subshell). The
# server is taken once the process answering on the port is the one
# started (not another that took the port meanwhile); one that does not
# answer (say, its port was taken first) is retried on another port, five
# times, each failure's log shown, and then it returns 1.
start_redis_node() {
	# (${a[@]+"${a[@]}"}: an empty array under set -u, in any bash)
	local name=$1 bus=$2 used=() args=() p dir pid try
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do used+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	args=("$@")
	for try in 1 2 3 4 5; do
		p=$(loopback_port "$bus" ${used[@]+"${used[@]}"}) || return 1
		dir="$WORK/$name-$p"
		mkdir -p "$dir"
		redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" ${args[@]+"${args[@]}"} >"$dir/redis.log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			if [ "$(redis_process_id "$p" 2>/dev/null)" = "$pid" ]; then
				NODE_PORT=$p
				return 0
			fi
			sleep 0.1
		done
		kill -TERM "$pid" 2>/dev/null || true
		used+=("$p")
		echo "== redis-server ($name) did not start on 127.0.0.1:$p (try $try of 5); its log:" >&2
		tail -n 20 "$dir/redis.log" | sed 's/^/   /' >&2
	done
	return 1
}

# documentdb_kit prints the faithful server's start.sh, if the kit is here.
# A kit given by PERSIST_TEST_DOCUMENTDB_KIT is the only one looked at (none:
# as on a machine without it). Otherwise the shared/ folder beside the
# checkout (where the development machines and CI have it; a clone made
# elsewhere names its kit with PERSIST_TEST_DOCUMENTDB_KIT). No path of one
# particular machine is looked at.
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
	d="$ROOT/../shared/documentdb"
	[ -x "$d/start.sh" ] || return 1
	echo "$(cd "$d" && pwd)/start.sh"
}

# start_redis: the Redis of the run in PERSIST_TEST_REDIS_URL: the one
# given there, else a redis-server of the run's own (start_redis_node),
# empty: no keys and no scripts from earlier runs.
start_redis() {
	if [ -n "${PERSIST_TEST_REDIS_URL:-}" ]; then
		echo "== Redis: given by PERSIST_TEST_REDIS_URL"
		return 0
	fi
	if ! command -v redis-server >/dev/null; then
		cat >&2 <<-'MSG'
		make test and make bench start a Redis of their own and need redis-server for it,
		which is not installed here. Install it:
		  apt-get install redis-server    (Debian, Ubuntu; brew install redis on macOS)
		or set PERSIST_TEST_REDIS_URL to a Redis the tests may write to,
		  e.g. PERSIST_TEST_REDIS_URL=redis://127.0.0.1:6379/0 make test
		MSG
		exit 1
	fi
	start_redis_node redis - || {
		echo "redis-server did not start (see its log above); or set PERSIST_TEST_REDIS_URL to a Redis the tests may use" >&2
		exit 1
	}
	export PERSIST_TEST_REDIS_URL="redis://127.0.0.1:$NODE_PORT/0"
	echo "== Redis: a redis-server of this run's own on 127.0.0.1:$NODE_PORT (empty, saves nothing; stopped on exit)"
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
		start_redis_node cluster bus ${ports[@]+"${ports[@]}"} -- --cluster-enabled yes --cluster-config-file nodes.conf \
			--cluster-node-timeout 2000 --repl-diskless-sync-delay 0 || return 1
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
	# The kit's FerretDB binary and PostgreSQL, for the tests that start a
	# FerretDB of their own on them (a TLS listener, logins required), where
	# the kit built them: its ready line names its PostgreSQL and its log
	# under its work directory ("(postgres HOST:PORT, log DIR/run/postgres.log)"),
	# wherever DOCUMENTDB_DIR and PGPORT put them.
	local pg dir
	pg=$(echo "$out" | sed -n 's/^.*ready: mongodb:[^ ]* *(postgres \([^,]*\), log \(.*\)\/run\/postgres\.log).*$/\1/p' | tail -n 1)
	dir=$(echo "$out" | sed -n 's/^.*ready: mongodb:[^ ]* *(postgres \([^,]*\), log \(.*\)\/run\/postgres\.log).*$/\2/p' | tail -n 1)
	if [ -n "$pg" ] && [ -x "$dir/bin/ferretdb" ]; then
		export PERSIST_TEST_FERRETDB2_BIN="$dir/bin/ferretdb"
		export PERSIST_TEST_FERRETDB2_PG="postgres://postgres@$pg/postgres"
	else
		echo "== the kit's ready line names no PostgreSQL and work directory with a bin/ferretdb: the tests that start a FerretDB v2 of their own (TLS, logins) will be skipped" >&2
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
