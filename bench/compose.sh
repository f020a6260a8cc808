#!/usr/bin/env bash
# bench/RESULTS.md = a header + each runner's latest section from bench/results/.
set -euo pipefail
cd "$(dirname "$0")"
{
  echo "# Bench results"
  echo
  echo "Each section is written by its runner (\`make bench\`, \`make k6-reload\`, ...) and kept"
  echo "until that runner runs again. The load generator shares the machine's 2 cores with"
  echo "everything it measures: compare ratios measured in one run, not absolute numbers."
  for part in results/*.md; do
    [ -f "$part" ] || continue
    echo
    cat "$part"
  done
} >RESULTS.md
