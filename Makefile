# sluice — the two commands: `make up` (run the stack) and `make test` (run the tests).
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/sluice/target

.PHONY: up down test lint bench check-config

up:            ## install what is missing, build, start the whole stack
	@scripts/up.sh

down:          ## stop exactly what `make up` started
	@scripts/down.sh

test:          ## install server binaries if missing, run every test
	@scripts/test.sh

lint:          ## formatting and clippy, as CI runs them
	cargo fmt --all --check
	cargo clippy --locked --workspace --all-targets -- -D warnings

bench:         ## direct vs sluice vs nginx on GET /todos; writes bench/RESULTS.md
	@bench/run.sh

check-config:  ## validate conf/sluice.yaml
	cargo run --quiet --locked --bin sluice -- --config conf/sluice.yaml --test
