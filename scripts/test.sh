#!/usr/bin/env bash
# Installs the server binaries the tests need, then runs every test (unit + integration).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/install-deps.sh"
# The dashboard's npm packages (playwright-core for its browser tests), and a check that
# the vendored chart library is the one dashboard/package-lock.json names.
"$ROOT/scripts/ui-vendor.sh" --check
# Integration tests start the workspace's binaries; build them first.
cargo build --locked --workspace --bins
cargo test --locked --workspace
# The monitoring files (docker/prometheus): promtool checks and the alerts' unit tests.
"$ROOT/scripts/check-monitoring.sh"
# The deployment files (docker/): compose schema, Kubernetes schemas, the shared build.
"$ROOT/scripts/check-deploy.sh"
