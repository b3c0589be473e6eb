# consul-db-checks. `make test` is the project's test command (CI runs it through .ci/run).
PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
# The executables, read from the [[bin]] entries of Cargo.toml (the one list).
BINS := $(shell awk -F'"' '/^\[\[bin\]\]/ {b = 1} b && /^name/ {print $$2; b = 0}' Cargo.toml)

.PHONY: all release deps test lint bench install clean examples demo

all: release

release:
	$(CARGO) build --release --locked

# Installs redis-server, redis-sentinel, mariadb-server, mariadb-client, keepalived when missing.
deps:
	@bash scripts/deps.sh

test: deps
	$(CARGO) test --locked --no-fail-fast

# The style gates .ci/run applies before the tests.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# Release-built checks, each run many times as a process (BENCH_RUNS=300 by default).
bench: deps
	$(CARGO) bench --locked --bench checks

install: release
	install -d $(DESTDIR)$(PREFIX)/bin
	for b in $(BINS); do install -m 0755 target/release/$$b $(DESTDIR)$(PREFIX)/bin/$$b; done

clean:
	$(CARGO) clean

# Regenerates consul.d-examples/ from its inventory (a test fails when they differ).
examples:
	$(CARGO) run --quiet --release --locked --bin gen-consul-services -- --inventory consul.d-examples/inventory.json --out consul.d-examples/consul
	$(CARGO) run --quiet --release --locked --bin gen-consul-services -- --inventory consul.d-examples/inventory.json --format keepalived --out consul.d-examples/keepalived

# The project's main job on a fresh machine: the end-to-end lab, run for a person (under a minute).
demo: deps
	$(CARGO) build --release --locked --bins --example demo
	./target/release/examples/demo
