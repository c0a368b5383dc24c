# persistgen: see README.md.
.PHONY: test demo bench vet up down up-sharded down-sharded secrets

# docker compose (v2) when present, else docker-compose (v1).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

# The whole test suite against real servers (started when not running).
test:
	./scripts/test.sh

# The main job on embedded servers: nothing to install but Go. It says what
# it does while it builds (minutes on a cold build cache: scripts/demo.sh),
# then runs .cache/demo with $(DEMO_FLAGS).
demo:
	@./scripts/demo.sh $(DEMO_FLAGS)

# Benchmarks: ours against the raw driver and upstream's access pattern,
# written to BENCHMARKS.md (BENCH_REPS, BENCHTIME, BENCH=regexp to narrow).
bench:
	./scripts/bench.sh

vet:
	go vet ./...
	cd embedded && go vet ./...

# MongoDB 8, Redis 7.4 and the demo against them (needs a Docker engine).
# The passwords are files under .secrets/ (made once, random; see
# docs/deployment.md, "Secrets"), never variables or command-line arguments.
up: secrets
	$(COMPOSE) up --build

secrets:
	./scripts/secrets.sh

down:
	$(COMPOSE) down $(DOWN_FLAGS)

# The sharded deployment: config server, two shards and mongos (MongoDB 8),
# a Redis Cluster (3 masters, 3 replicas), persistgen-ops plan -apply, then
# the demo (needs a Docker engine; see docker-compose.sharded.yml).
up-sharded: secrets
	$(COMPOSE) -f docker-compose.sharded.yml up --build

down-sharded:
	$(COMPOSE) -f docker-compose.sharded.yml down $(DOWN_FLAGS)
