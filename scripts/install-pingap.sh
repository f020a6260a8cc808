#!/usr/bin/env bash
# Installs Pingap 0.13.1 (a Pingora-based proxy, crates.io) into ~/.cargo/bin once, for
# `make bench`'s side-by-side rows only; never part of the stack or the repository.
# Its own target directory, as for tansu: the project's build lock stays free. Idempotent.
set -euo pipefail
if command -v pingap >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/pingap" ]; then
  exit 0
fi
echo "install-pingap: installing pingap 0.13.1 (cargo install, once)"
env -u CARGO_TARGET_DIR cargo install pingap --version 0.13.1 --locked --quiet
