# consul-db-checks. `make test` is the project's test command (CI runs it through .ci/run).
PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
# The executables, read from the [[bin]] entries of Cargo.toml (the one list).
BINS := $(shell awk -F'"' '/^\[\[bin\]\]/ {b = 1} b && /^name/ {print $$2; b = 0}' Cargo.toml)

# Release executables: built for the host triple with the flags of scripts/release-env.sh (static,
# not position-independent, on Linux with glibc), into target/<host>/release.
HOST := $(shell rustc -vV | sed -n 's/^host: //p')
RELEASE_RUSTFLAGS := $(shell bash -c '. scripts/release-env.sh && echo "$$release_rustflags"')
RELEASE_DIR := target/$(HOST)/release
RELEASE_CARGO := RUSTFLAGS="$(RELEASE_RUSTFLAGS)" $(CARGO)

.PHONY: all release deps test lint bench docs install deb clean examples demo

all: release

release:
	$(RELEASE_CARGO) build --release --locked --target $(HOST) --bins

# Installs redis-server, redis-sentinel, mariadb-server, mariadb-client, keepalived when missing.
deps:
	@bash scripts/deps.sh

# Every test (Oracle MySQL 9 among them, in its chroot), then the compatibility matrix
# (scripts/matrix.sh): the Redis scenarios against Redis 6.2, Valkey 8.1, Redis 8 and Valkey 9, the
# MariaDB suite against MariaDB 11.8 (make deps fetches or builds them). A missing server fails.
test: deps
	$(CARGO) test --locked --no-fail-fast
	CARGO=$(CARGO) bash scripts/matrix.sh

# The style gates .ci/run applies before the tests.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# Release-built checks, each run many times as a process (BENCH_RUNS=300 by default), and paired run
# by run against the release build of BENCH_BASELINE_REV (the last commit before the speed work).
BENCH_BASELINE_REV ?= 4d1e9c3
bench: deps
	BENCH_BASELINE="$$(bash scripts/bench-baseline.sh $(BENCH_BASELINE_REV) target/bench-baseline)" \
		$(RELEASE_CARGO) bench --locked --target $(HOST) --bench checks

# Man pages and bash/zsh completions, from the same clap definitions as --help.
docs:
	$(RELEASE_CARGO) run --quiet --release --locked --target $(HOST) --example gen-docs -- target/docs

# A Debian package (dpkg-deb): executables, man pages, completions, the examples as documentation.
# tests/deb.rs builds and inspects it as part of make test.
deb:
	bash scripts/deb.sh

install: release docs
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions
	for b in $(BINS); do install -m 0755 $(RELEASE_DIR)/$$b $(DESTDIR)$(PREFIX)/bin/$$b; done
	install -m 0644 target/docs/man/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	for b in $(BINS); do install -m 0644 target/docs/completions/bash/$$b.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$b; done
	install -m 0644 target/docs/completions/zsh/_* $(DESTDIR)$(PREFIX)/share/zsh/site-functions/

clean:
	$(CARGO) clean

# Regenerates consul.d-examples/ from its inventory (a test fails when they differ).
examples:
	$(CARGO) run --quiet --release --locked --bin gen-consul-services -- --inventory consul.d-examples/inventory.json --out consul.d-examples/consul
	$(CARGO) run --quiet --release --locked --bin gen-consul-services -- --inventory consul.d-examples/inventory.json --format keepalived --out consul.d-examples/keepalived
	$(CARGO) run --quiet --release --locked --bin gen-consul-services -- --inventory consul.d-examples/inventory.json --check-type http --out consul.d-examples/consul-http
	$(CARGO) run --quiet --release --locked --bin gen-consul-services -- --inventory consul.d-examples/inventory.json --format haproxy --out consul.d-examples/haproxy

# The project's main job on a fresh machine: the end-to-end lab, run for a person (under a minute).
demo: deps
	$(CARGO) build --release --locked --bins --example demo
	./target/release/examples/demo
