#!/usr/bin/env bash
# Renders docker/prometheus/ for this machine's `make up` stack (the same rules; only the
# scrape targets change to 127.0.0.1 ports) into DIR.
#   scripts/prometheus.sh DIR
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
dir="$1"
mkdir -p "$dir/rules"
cp "$ROOT"/docker/prometheus/rules/*.yml "$dir/rules/"
# SLUICE_ADMIN_TARGETS (host:port,...) lists the local instances (default: the one on 9901).
sluice_targets="\"$(sed 's/,/", "/g' <<<"${SLUICE_ADMIN_TARGETS:-127.0.0.1:9901}")\""
sed -e "s/\"sluice-1:9901\", \"sluice-2:9901\"/$sluice_targets/" \
    -e 's/"analytics-1:8100", "analytics-2:8100"/"127.0.0.1:8100"/' \
    -e 's/"payments-1:8091", "payments-2:8092"/"127.0.0.1:8091", "127.0.0.1:8092"/' \
    -e 's/"todo-1:8081", "todo-2:8081"/"127.0.0.1:8081", "127.0.0.1:8082"/' \
    -e 's/"postgres-exporter:9187"/"127.0.0.1:9187"/' \
    "$ROOT/docker/prometheus/prometheus.yml" >"$dir/prometheus.yml"
if grep -qE 'sluice-[0-9]|analytics-[0-9]|payments-[0-9]|todo-[0-9]|postgres-exporter' "$dir/prometheus.yml"; then
  echo "scripts/prometheus.sh: a compose target was left in $dir/prometheus.yml" >&2
  exit 1
fi
