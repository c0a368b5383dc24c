#!/usr/bin/env bash
# The whole test suite: formatting, go vet, staticcheck, then go test -race
# against a real Redis and a real MongoDB-wire server.
#
# The servers come from scripts/servers.sh (given by the environment, already
# running, or started here).
# Whatever this script starts, it stops, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=servers.sh
. scripts/servers.sh

STATICCHECK_VERSION=v0.8.2 # honnef.co/go/tools 2025.2; built with `go run`, never in go.mod

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

for mod in . embedded; do
	echo "== go vet ($mod)"
	(cd "$mod" && go vet ./...)
	echo "== staticcheck ($mod)"
	(cd "$mod" && go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...)
done

start_servers
export PERSIST_TEST_REQUIRE=1
echo "== go test -race ./..."
go test -race -count=1 ${GOTESTFLAGS:-} ./...
echo "== go test ./... (embedded)"
(cd embedded && go test -count=1 ./...)
