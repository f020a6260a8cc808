#!/usr/bin/env bash
# Builds the stack's binaries in release mode from the lockfile: the one build command
# `make up` (scripts/up.sh) and the container image (docker/Dockerfile) share.
#   scripts/build-release.sh [OUT_DIR]   (OUT_DIR: also copy the binaries there)
# Two binaries: sluice, and sluice-services, which is each of the five services through a
# link of that service's name (todo, payments, processor, analytics, testupstream; made
# here, next to it). Each fat-LTO binary costs a single-threaded whole-program optimisation:
# one for the five services instead of five took a fresh build from 10 to ~8 min
# (bench/NOTES.md). `--bins` would also build the fuzz targets, the bench's bare Pingora
# proxy and the five separate service binaries, which the stack does not run.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BINARIES=(sluice sluice-services)
SERVICES=(todo payments processor analytics testupstream)
cargo build --release --locked $(printf -- '--bin %s ' "${BINARIES[@]}")
target="${CARGO_TARGET_DIR:-$ROOT/target}/release"
link_services() {
  for service in "${SERVICES[@]}"; do
    ln -sfn sluice-services "$1/$service"
  done
}
link_services "$target"
if [ $# -ge 1 ]; then
  mkdir -p "$1"
  for bin in "${BINARIES[@]}"; do
    install -m 0755 "$target/$bin" "$1/$bin"
  done
  link_services "$1"
fi
