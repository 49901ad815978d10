# warrant — developer and CI entry points.
#   make build   release build of the warrant binary
#   make demo    build, then the sign/verify/tamper walkthrough (e2e/demo.sh)
#   make test    build, unit + integration tests (nextest if installed), then e2e/run-all.sh
#   make lint    rustfmt check and clippy with warnings denied
#   make bench   benches/run.sh, when present
#   make soak    10-minute soak of the admission server, registry down/up every 30 s (issue #17)
#   make faults  the full registry-fault matrix, 200+ SIGKILL crash runs, python-tuf differential (issue #17)
#   make fuzz    every cargo-fuzz target for FUZZ_SECONDS (default 60) each (fuzz/README.md)
#   make static  statically linked release binary (glibc, crt-static) for the image
#   make image   the webhook's OCI image in target/image/oci, signed by warrant; pins its digest in the kustomization
#   make deb     Debian package (cargo-deb) in target/debian/: binary, man pages, completions, docker plugin link

CARGO ?= cargo
SHELL := /bin/bash

.PHONY: all build demo test unit e2e lint bench soak soak-team faults fuzz static image deb

TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
# crt-static needs an explicit --target: without one RUSTFLAGS also reaches the
# proc-macros, which cannot be static. Output: $(STATIC_BIN). The dependencies'
# source paths (kept for panic messages) are written as /cargo/..., so the image's
# digest does not depend on the builder's home directory.
STATIC_TARGET := x86_64-unknown-linux-gnu
STATIC_BIN := $(TARGET_DIR)/$(STATIC_TARGET)/release/warrant
STATIC_RUSTFLAGS := -C target-feature=+crt-static --remap-path-prefix=$(or $(CARGO_HOME),$(HOME)/.cargo)=/cargo

all: build

build:
	$(CARGO) build --release

demo: build
	bash e2e/demo.sh

# Sequential on purpose (also under make -j): build, unit/integration tests, e2e.
# The static build is for e2e/test-image.sh (the webhook image under a real dockerd).
test: build static
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
e2e: build static
	bash e2e/run-all.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --features test-support -- -D warnings

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

static:
	RUSTFLAGS='$(STATIC_RUSTFLAGS)' $(CARGO) build --release --locked --target $(STATIC_TARGET) --bin warrant

# Signs with the keys under $$WARRANT_HOME (init on the first run; passphrase from
# WARRANT_PASSPHRASE or a prompt). Publishing: plugin-manifest/kubernetes/README.md.
image: static
	bash packaging/image/build.sh --binary $(STATIC_BIN) --layout $(TARGET_DIR)/image/oci \
		--tag $(VERSION) --pin plugin-manifest/kubernetes/kustomization.yaml

deb: build
	CARGO="$(CARGO)" bash packaging/deb/build.sh
