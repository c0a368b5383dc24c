# persistgen: see README.md.
.PHONY: test demo generate check vet

# The whole test suite against real servers (started when not running).
test:
	./scripts/test.sh

# The main job on embedded servers: nothing to install.
demo:
	cd embedded && go run ./cmd/demo $(DEMO_FLAGS)

vet:
	go vet ./...
	cd embedded && go vet ./...
