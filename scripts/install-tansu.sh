#!/usr/bin/env bash
# Installs tansu (a Kafka-compatible broker, crates.io) into ~/.cargo/bin once, with the one
# storage engine the stack and the tests use (SQLite, `--features libsql`; `dynostore` is
# only for `memory://` and object stores, and costs build time). Idempotent.
# Its own target directory (a temporary one, as cargo install chooses), not the project's:
# its artifacts are of no use to the project's builds.
set -euo pipefail
installed() { command -v tansu >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/tansu" ]; }
installed && exit 0
# One build at a time: `make up`'s background build (scripts/kafka-up.sh) and `make test`
# or `make bench` started meanwhile would otherwise both compile it; the second waits and
# then finds it installed.
mkdir -p "$HOME/.cargo"
exec 9>"$HOME/.cargo/.sluice-install-tansu.lock"
if ! flock -n 9; then
  echo "install-tansu: another build of tansu is running; waiting for it"
  flock 9
fi
installed && exit 0
echo "install-tansu: installing tansu (cargo install, once; ~9 min on two cores)"
env -u CARGO_TARGET_DIR cargo install tansu --version '^0.6' --locked --features libsql --quiet
