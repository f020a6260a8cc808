#!/usr/bin/env bash
# The Rinha de Backend 2025 scenario (bench/k6/payments.js) through sluice on 9999,
# against the running stack (`make up` first if it is not). Writes
# bench/results/30-payments.md and regenerates bench/RESULTS.md.
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ROOT"

SLUICE_BENCH_DEPS=1 "$ROOT/scripts/install-deps.sh"
curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:8091/health || "$ROOT/scripts/up.sh"

D="$RUN/payments-bench"
mkdir -p "$D"
S="$D/summary.json"
rm -f "$S"
echo "k6: ramp to ${MAX_VUS:-550} VUs over ${RAMP_S:-60}s (log: $D/k6.log)"
k6 run --quiet -e SUMMARY_FILE="$S" ${MAX_VUS:+-e MAX_VUS="$MAX_VUS"} ${RAMP_S:+-e RAMP_S="$RAMP_S"} \
  bench/k6/payments.js >"$D/k6.log" 2>&1 || true
[ -s "$S" ] || { echo "k6 produced no summary; see $D/k6.log" >&2; exit 1; }
cat "$S" | jq .
f() { jq -r "$1" "$S"; }
{
  echo "## Payments, Rinha de Backend 2025 shape (k6) — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`make k6-payments\` — k6 ramps to ${MAX_VUS:-550} VUs over ${RAMP_S:-60} s"
  echo "through sluice (:9999) -> payments ×2 (:8091/:8092) -> processor simulators (:8001 default"
  echo "fee 5%, :8002 fallback fee 15%), everything including k6 on this 2-core machine. Each"
  echo "iteration: one POST /payments (fresh UUID, 19.90, 1500 ms timeout), then sleep 1 s. The"
  echo "processors change every $(( ${RAMP_S:-60} / 6 )) s: default 100 ms; default failing; default 2 s +"
  echo "fallback 1 s failing; both 20 ms; fallback 5 s; both 100 ms. /payments-summary is compared"
  echo "with both processors' admin summaries every $(( ${RAMP_S:-60} / 6 )) s over a recent window and once"
  echo "over the whole run after the queue drained."
  echo
  echo "| p99 ms | p50 ms | accepted | failed POSTs | paid default | paid fallback | paid / accepted | inconsistencies (checks) | score |"
  echo "|---|---|---|---|---|---|---|---|---|"
  f '"| \(.p99_ms*100|round/100) | \(.p50_ms*100|round/100) | \(.accepted) | \(.failed_posts) | \(.processed_default) | \(.processed_fallback) | \(.processed_share*10000|round/100)% | \(.inconsistencies) (\(.consistency_checks)) | \(.score|round) |"'
  echo
  f '"Score = (gross \(.gross*100|round/100) − fees \(.fees*100|round/100)) × (1 + bonus \(.bonus*1000|round/1000)); bonus = max((11 − p99 ms) × 0.02, 0); ×0.65 on any inconsistency. Queue drained \(.drain_ms/1000) s after the load stopped."'
} >bench/results/30-payments.md
cat bench/results/30-payments.md
bench/compose.sh
