# warrant — developer and CI entry points.
#   make build   release build of the warrant binary
#   make demo    build, then the sign/verify/tamper walkthrough (e2e/demo.sh)
#   make test    build, unit + integration tests (nextest if installed), then e2e/run-all.sh
#   make lint    rustfmt check and clippy with warnings denied
#   make bench   benches/run.sh, when present
#   make soak    10-minute soak of the admission server, registry down/up every 30 s (issue #17)
#   make faults  the full registry-fault matrix, 200+ SIGKILL crash runs, python-tuf differential (issue #17)
#   make fuzz    every cargo-fuzz target for FUZZ_SECONDS (default 60) each (fuzz/README.md)

CARGO ?= cargo
SHELL := /bin/bash

.PHONY: all build demo test unit e2e lint bench soak soak-team faults fuzz

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

# The admission server (the real `warrant serve admission` process) for 10 minutes
# at 20 reviews/s while the registry behind a proxy goes down (refused, then reset)
# and comes back every 30 s: every review answered and answered rightly for the
# registry's state, RSS and open fds flat (printed every 30 s). `make test` runs a
# 24-second version of the same test (tests/admission_soak.rs).
SOAK_SECONDS ?= 600
SOAK_FLIP_SECONDS ?= 30
soak:
	WARRANT_SOAK_SECONDS=$(SOAK_SECONDS) WARRANT_SOAK_FLIP_SECONDS=$(SOAK_FLIP_SECONDS) \
		$(CARGO) test --test admission_soak -- --nocapture

# Longer random team sequences (tests/team_sequences.rs): 40 seeds x 40 steps.
soak-team:
	WARRANT_TEAM_SEEDS=40 WARRANT_TEAM_STEPS=40 $(CARGO) test --test team_sequences -- --nocapture

# Every fault at every request index, 200 SIGKILLs each of a layout sign and a
# verify cache write, and 60 differential steps against python-tuf (make test runs
# a sample of each),
# printing the matrix size and outcomes per fault.
faults:
	WARRANT_FAULTS=full $(CARGO) test --test faults_cli --test crash_cli --test differential_cli -- --nocapture --test-threads 2

# Coverage-guided fuzzing (cargo-fuzz on stable via RUSTC_BOOTSTRAP=1): builds the
# targets, seeds fuzz/corpus/ from fixtures when missing, prints executions and
# crashes per target.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh
