# sluice — the two commands: `make up` (run the stack) and `make test` (run the tests).
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/sluice/target

.PHONY: up down test lint fuzz bench bench-tls bench-memory bench-ab check-dashboards k6-reload k6-payments reload upgrade check-config

up:            ## install what is missing, build, start the whole stack
	@scripts/up.sh

down:          ## stop exactly what `make up` started
	@scripts/down.sh

test:          ## install server binaries if missing, run every test
	@scripts/test.sh

lint:          ## formatting and clippy, as CI runs them
	cargo fmt --all --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	python3 scripts/import-cycles.py proxy/src
	@big=$$(git ls-files '*.rs' ':!vendor/' | xargs wc -l | awk '$$2 != "total" && $$1 > 600 {print $$2 " (" $$1 " lines)"}'); \
	  if [ -n "$$big" ]; then echo "files over 600 lines: $$big"; exit 1; else echo "no Rust file over 600 lines"; fi

fuzz:          ## each cargo-fuzz target for FUZZ_SECONDS (60) from its seed corpus (nightly)
	@scripts/fuzz.sh

bench:         ## every proxy side by side (direct, nginx, HAProxy, bare Pingora, sluice x3, Pingap), hedging, TLS; bench/RESULTS.md
	@bench/run.sh

check-dashboards: ## every Grafana panel query against make up's Prometheus (after some traffic: make bench or k6)
	@python3 scripts/dashboard-queries.py check http://127.0.0.1:9090

bench-tls:     ## TLS keepalive, TLS handshakes and HTTP/2 (h2load): sluice vs nginx; bench/results/19-tls.md
	@bench/tls.sh

bench-memory:  ## RSS at 1,000 and 10,000 keepalive clients: sluice, bare Pingora, nginx; bench/results/12-memory.md
	@bench/memory.sh

bench-ab:      ## two sluice binaries side by side: make bench-ab OLD=/tmp/sluice-old NEW=path/to/sluice
	@bench/ab.sh $(OLD) $(or $(NEW),$(CARGO_TARGET_DIR)/release/sluice)

k6-reload:     ## k6 load while the config is reloaded every second; appends to bench/RESULTS.md
	@bench/k6/reload.sh

k6-payments:   ## the Rinha de Backend 2025 scenario through sluice; writes bench/results/30-payments.md
	@bench/k6/payments.sh

reload:        ## validate conf/sluice.yaml, then SIGHUP the running sluice
	@$(CARGO_TARGET_DIR)/release/sluice --config conf/sluice.yaml --test
	@for f in .run/sluice.pid .run/sluice-[0-9]*.pid; do [ -f "$$f" ] && kill -HUP $$(cat "$$f"); done; \
	  echo "reload signalled; check: curl -s localhost:9901/admin/config | jq .last_reload"

upgrade:       ## graceful upgrade: new process takes over the listeners, old one drains
	@scripts/upgrade.sh

check-config:  ## validate conf/sluice.yaml
	cargo run --quiet --locked --bin sluice -- --config conf/sluice.yaml --test
