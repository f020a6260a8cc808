#!/usr/bin/env bash
# The dashboard's npm packages, from dashboard/package-lock.json: uPlot, whose built files
# are vendored into proxy/ui/vendor (embedded in the sluice binary, so a build needs no
# npm), and playwright-core for the browser tests.
#   scripts/ui-vendor.sh          installs the packages (npm ci) and copies the files
#   scripts/ui-vendor.sh --check  installs them and fails when the committed copies differ
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/dashboard"
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.package-lock-source; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.package-lock-source
fi
files=(uPlot.iife.min.js uPlot.min.css)
if [ "${1:-}" = --check ]; then
  for f in "${files[@]}"; do
    if ! cmp -s "node_modules/uplot/dist/$f" "$ROOT/proxy/ui/vendor/$f"; then
      echo "proxy/ui/vendor/$f differs from uplot in dashboard/package-lock.json: run scripts/ui-vendor.sh" >&2
      exit 1
    fi
  done
  echo "ui-vendor: proxy/ui/vendor matches dashboard/package-lock.json"
else
  for f in "${files[@]}"; do cp "node_modules/uplot/dist/$f" "$ROOT/proxy/ui/vendor/$f"; done
  echo "ui-vendor: copied ${files[*]} into proxy/ui/vendor"
fi
