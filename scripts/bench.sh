#!/usr/bin/env bash
# make bench: the benchmarks of tests/bench (floor, upstream and ours on the
# same data and connections) run BENCH_REPS times with a rotating order,
# plus the generator's benchmarks, turned into one table in BENCHMARKS.md.
# The servers come from scripts/servers.sh, as for make test: the faithful
# server (FerretDB v2 + DocumentDB) where its kit is, else the embedded
# FerretDB v1; PERSIST_TEST_BACKEND or PERSIST_TEST_MONGO_URI chooses.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=servers.sh
. scripts/servers.sh

REPS=${BENCH_REPS:-5}
BENCHTIME=${BENCHTIME:-300ms}
OUT=${BENCH_OUT:-$WORK/bench.txt}

start_servers
go test -c -o "$WORK/bench.test" ./tests/bench/
for rep in $(seq 1 "$REPS"); do
	echo "== repetition $rep of $REPS"
	BENCH_REP=$rep "$WORK/bench.test" -test.run '^$' -test.bench "${BENCH:-.}" -test.benchmem -test.count 1 -test.benchtime "$BENCHTIME" | tee -a "$OUT"
done
echo "== telemetry on vs off"
go test -run '^$' -bench Telemetry -benchmem -count "$REPS" ./telemetry | tee -a "$OUT"
echo "== series tier: memory per candle, a hit"
go test -run '^$' -bench SeriesTier -benchmem -count "$REPS" ./internal/cache | tee -a "$OUT"
echo "== generator"
go test -run '^$' -bench Generate -benchmem -count "$REPS" ./gen | tee -a "$OUT"
go run ./tests/bench/report -in "$OUT" -out "${BENCH_REPORT:-BENCHMARKS.md}" -benchtime "$BENCHTIME" -notes tests/bench/NOTES.md -server-note "$BACKEND: $SERVER_NOTE"
