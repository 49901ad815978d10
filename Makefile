# warrant — developer and CI entry points.
#   make build   release build of the warrant binary
#   make demo    build, then the sign/verify/tamper walkthrough (e2e/demo.sh)
#   make test    build, unit + integration tests (nextest if installed), then e2e/run-all.sh
#   make lint    rustfmt check and clippy with warnings denied
#   make bench   benches/run.sh, when present

CARGO ?= cargo
SHELL := /bin/bash

.PHONY: all build demo test unit e2e lint bench

all: build

build:
	$(CARGO) build --release

demo: build
	bash e2e/demo.sh

# Sequential on purpose (also under make -j): build, unit/integration tests, e2e.
test: build
	@$(MAKE) --no-print-directory unit
	bash e2e/run-all.sh

# Prefer cargo-nextest (parallel, per-test isolation); plain cargo test otherwise.
unit:
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		echo "$(CARGO) nextest run --lib --bins --tests"; $(CARGO) nextest run --lib --bins --tests; \
	else \
		echo "$(CARGO) test --lib --bins --tests"; $(CARGO) test --lib --bins --tests; \
	fi

# End-to-end scenarios against $(CARGO_TARGET_DIR or target)/release/warrant (built by `build`).
e2e: build
	bash e2e/run-all.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

bench:
	@if [ -f benches/run.sh ]; then bash benches/run.sh; \
	else echo "bench: benches/run.sh not present yet; nothing to run"; fi
