#!/usr/bin/env bash
# make demo: builds the demo (embedded/cmd/demo, with the FerretDB and the
# Redis-protocol server it embeds) into .cache/demo, saying what it does,
# then runs it with the given arguments (the Makefile's DEMO_FLAGS).
#
# A cold build compiles some 700 packages (FerretDB, SQLite, the MongoDB
# and Redis drivers): minutes on a small machine, during which go build
# says nothing. So the build prints a line every STEP seconds while it
# lasts, with the count of packages compiled so far (go build -v names
# each one it compiles; a cached one is not named). On a warm cache it
# takes a second or two and prints nothing but its two lines; go build
# leaves an up-to-date .cache/demo as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.cache/demo
LOG=$ROOT/.cache/demo-build.log
STEP=${DEMO_PROGRESS_SECONDS:-15}
mkdir -p "$ROOT/.cache"

# progress: the modules go build has downloaded (a fresh machine's module
# cache is empty) and the packages it has named so far (its other lines
# are errors, with a space or a leading "#").
progress() {
	local got made
	got=$(grep -c '^go: downloading ' "$LOG" 2>/dev/null || true)
	made=$(grep -c '^[^ #][^ ]*$' "$LOG" 2>/dev/null || true)
	if [ "${got:-0}" != 0 ]; then printf '%s modules downloaded, ' "$got"; fi
	printf '%s packages compiled so far' "${made:-0}"
}

echo "== building the demo and its embedded servers (FerretDB, SQLite; the first build takes a few minutes) ..."
: >"$LOG"
start=$(date +%s)
# The ticker sleeps a second at a time, its sleep holding no output open,
# so that once killed it leaves nothing that keeps a pipe (make demo | tee)
# waiting.
(
	next=$((start + STEP))
	while sleep 1 </dev/null >/dev/null 2>&1; do
		now=$(date +%s)
		[ "$now" -ge "$next" ] || continue
		next=$((next + STEP))
		echo "   still building ($((now - start)) s, $(progress))"
	done
) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true' EXIT
status=0
(cd embedded && go build -v -o "$BIN" ./cmd/demo) >"$LOG" 2>&1 || status=$?
kill "$ticker" 2>/dev/null || true
wait "$ticker" 2>/dev/null || true
trap - EXIT
if [ "$status" != 0 ]; then
	grep -v '^[^ #][^ ]*$' "$LOG" >&2 || cat "$LOG" >&2
	echo "== the demo did not build (go build exited $status)" >&2
	exit "$status"
fi

echo "== running the demo"
cd embedded
exec "$BIN" "$@"
