#!/usr/bin/env bash
# Installs tansu (a Kafka-compatible broker, crates.io) into ~/.cargo/bin once, with the one
# storage engine the stack and the tests use (SQLite, `--features libsql`; `dynostore` is
# only for `memory://` and object stores, and costs build time). Idempotent.
# Its own target directory (a temporary one, as cargo install chooses), not the project's:
# its artifacts are of no use to the project's builds.
set -euo pipefail
if command -v tansu >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/tansu" ]; then
  exit 0
fi
echo "install-tansu: installing tansu (cargo install, once; ~9 min on two cores)"
env -u CARGO_TARGET_DIR cargo install tansu --version '^0.6' --locked --features libsql --quiet
