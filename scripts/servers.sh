# Sourced by test.sh and bench.sh: provides a Redis and a MongoDB-wire
# server in PERSIST_TEST_REDIS_URL and PERSIST_TEST_MONGO_URI, starting them
# when they are not given or running, and stops what it started on exit.
#
#   Redis:   $PERSIST_TEST_REDIS_URL; else the Redis on 127.0.0.1:6379 if it
#            answers; else a redis-server started on a free port.
#   MongoDB: $PERSIST_TEST_MONGO_URI (a real MongoDB, say); else an embedded
#            FerretDB (embedded/cmd/ferretdb-test) on a temporary PostgreSQL
#            database when 127.0.0.1:5432 answers, else on SQLite in a
#            temporary directory (PERSIST_TEST_BACKEND=sqlite forces SQLite).
WORK=$(mktemp -d)
PIDS=()

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

start_servers() {
	if [ -z "${PERSIST_TEST_REDIS_URL:-}" ]; then
		if redis_pong 127.0.0.1 6379 2>/dev/null; then
			export PERSIST_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
		else
			command -v redis-server >/dev/null || { echo "no Redis on 127.0.0.1:6379 and no redis-server to start: apt-get install redis-server, or set PERSIST_TEST_REDIS_URL" >&2; exit 1; }
			port=$(free_port)
			redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
			PIDS+=($!)
			for _ in $(seq 1 100); do redis_pong 127.0.0.1 "$port" 2>/dev/null && break; sleep 0.1; done
			redis_pong 127.0.0.1 "$port" || { echo "redis-server did not start:"; cat "$WORK/redis.log"; exit 1; } >&2
			export PERSIST_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
		fi
	fi

	if [ -z "${PERSIST_TEST_MONGO_URI:-}" ]; then
		echo "== building the embedded FerretDB (embedded/cmd/ferretdb-test)"
		(cd embedded && go build -o "$WORK/ferretdb-test" ./cmd/ferretdb-test)
		if [ "${PERSIST_TEST_BACKEND:-}" != sqlite ] && answers 127.0.0.1 5432; then
			backend=(-pg-admin "${PERSIST_TEST_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}")
			kind="FerretDB on PostgreSQL"
		else
			backend=(-sqlite "$WORK/sqlite")
			kind="FerretDB on SQLite"
		fi
		"$WORK/ferretdb-test" "${backend[@]}" >"$WORK/ferret.out" 2>"$WORK/ferret.err" &
		PIDS+=($!)
		for _ in $(seq 1 300); do
			grep -q '^MONGODB_URI=' "$WORK/ferret.out" 2>/dev/null && break
			kill -0 "${PIDS[-1]}" 2>/dev/null || break
			sleep 0.1
		done
		uri=$(sed -n 's/^MONGODB_URI=//p' "$WORK/ferret.out")
		[ -n "$uri" ] || { echo "FerretDB did not start:"; cat "$WORK/ferret.err"; exit 1; } >&2
		export PERSIST_TEST_MONGO_URI="$uri"
	else
		kind="given by PERSIST_TEST_MONGO_URI"
	fi
	echo "== servers: MongoDB wire $PERSIST_TEST_MONGO_URI ($kind), Redis $PERSIST_TEST_REDIS_URL"
}
