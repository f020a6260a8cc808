#!/usr/bin/env bash
# Builds every binary of the workspace in release mode from the lockfile: the one build
# command `make up` (scripts/up.sh) and the container image (docker/Dockerfile) share.
#   scripts/build-release.sh [OUT_DIR]   (OUT_DIR: also copy the binaries there)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BINARIES=(sluice todo payments processor analytics testupstream)
# Only the stack's binaries: `--bins` would also build the fuzz targets and the bench's
# bare Pingora proxy, each a fat-LTO link of its own that the stack never runs.
cargo build --release --locked $(printf -- '--bin %s ' "${BINARIES[@]}")
if [ $# -ge 1 ]; then
  mkdir -p "$1"
  target="${CARGO_TARGET_DIR:-$ROOT/target}/release"
  for bin in "${BINARIES[@]}"; do
    install -m 0755 "$target/$bin" "$1/$bin"
  done
fi
