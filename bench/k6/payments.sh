#!/usr/bin/env bash
# The Rinha de Backend 2025 scenario (bench/k6/payments.js) against the running stack
# (`make up` first if it is not), three ways, one after the other:
#   sluice          the stack's gateway on 9999 (Kafka events on) — the contest's row
#   sluice-nokafka  a second sluice on 19999 with the same config minus `kafka:`
#   direct          straight to payments 8091, no gateway (the reference)
# Writes bench/results/30-payments.md and regenerates bench/RESULTS.md.
# MAX_VUS / RAMP_S scale the run; TARGETS picks the rows.
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ROOT"

MAX_VUS="${MAX_VUS:-550}"
RAMP_S="${RAMP_S:-60}"
TARGETS="${TARGETS:-sluice sluice-nokafka direct}"
SLUICE_BENCH_DEPS=1 "$ROOT/scripts/install-deps.sh"
curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:8091/health || "$ROOT/scripts/up.sh"
# sluice routes to the payments group only once its health checks passed.
wait_http sluice-payments "http://127.0.0.1:9999/payments-summary" 30

D="$RUN/payments-bench"
mkdir -p "$D"
SPID=""
cleanup() { [ -n "$SPID" ] && kill -INT "$SPID" 2>/dev/null || true; }
trap cleanup EXIT

# The stack's config without the kafka section, on other ports.
# (Its ports come from the environment where it is started: SLUICE_PORT=19999 …)
awk '/^kafka:/ {skip=1; next} /^[a-z]/ {skip=0} !skip' conf/sluice.yaml >"$D/nokafka.yaml"

run() { # $1 = target name, $2 = base URL
  local s="$D/$1.json"
  rm -f "$s"
  echo "k6 [$1]: ramp to $MAX_VUS VUs over ${RAMP_S}s against $2 (log: $D/$1.log)"
  k6 run --quiet -e BASE_URL="$2" -e SUMMARY_FILE="$s" -e MAX_VUS="$MAX_VUS" -e RAMP_S="$RAMP_S" \
    bench/k6/payments.js >"$D/$1.log" 2>&1 || true
  if [ ! -s "$s" ] || [ "$(jq .accepted "$s")" = 0 ]; then
    echo "k6 [$1] accepted no payments; see $D/$1.log" >&2
    exit 1
  fi
  jq -c . "$s"
}

for target in $TARGETS; do
  case "$target" in
    sluice) run sluice http://127.0.0.1:9999 ;;
    direct) run direct http://127.0.0.1:8091 ;;
    sluice-nokafka)
      SLUICE_PORT=19999 SLUICE_ADMIN_PORT=19909 SLUICE_TLS_PORT=19444 \
        "$BIN/sluice" --config "$D/nokafka.yaml" --pid-file "$D/pid" --upgrade-sock "$D/upgrade.sock" \
        >"$LOGS/payments-bench-sluice.log" 2>&1 &
      SPID=$!
      wait_http payments-bench-sluice "http://127.0.0.1:19999/payments-summary" 30
      run sluice-nokafka http://127.0.0.1:19999
      kill -INT "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""
      ;;
    *) echo "unknown target $target" >&2; exit 1 ;;
  esac
done

{
  echo "## Payments, Rinha de Backend 2025 shape (k6) — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`make k6-payments\` — k6 ramps to $MAX_VUS VUs over $RAMP_S s; each iteration one"
  echo "POST /payments (fresh UUID, 19.90, 1500 ms timeout), then sleep 1 s. Payments ×2"
  echo "(:8091/:8092) -> processor simulators (:8001 default fee 5%, :8002 fallback fee 15%),"
  echo "everything including k6 on this 2-core machine. The processors change every"
  echo "$((RAMP_S / 6)) s: default 100 ms; default failing; default 2 s + fallback 1 s failing; both"
  echo "20 ms; fallback 5 s; both 100 ms. /payments-summary is compared with both processors'"
  echo "admin summaries every $((RAMP_S / 6)) s over a recent window, and over the whole run after the"
  echo "queue drained. Rows run one after the other: the stack's sluice (Kafka events on), a"
  echo "second sluice with the same config minus \`kafka:\`, and straight to one payments instance."
  echo
  echo "| target | p99 ms | p50 ms | accepted | failed POSTs | paid default | paid fallback | paid / accepted | inconsistencies (checks) | score |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for target in $TARGETS; do
    jq -r --arg t "$target" '"| \($t) | \(.p99_ms*100|round/100) | \(.p50_ms*100|round/100) | \(.accepted) | \(.failed_posts) | \(.processed_default) | \(.processed_fallback) | \(.processed_share*10000|round/100)% | \(.inconsistencies) (\(.consistency_checks)) | \(.score|round) |"' "$D/$target.json"
  done
  echo
  echo "Score = (gross − fees) × (1 + bonus), bonus = max((11 − p99 ms) × 0.02, 0), ×0.65 on any"
  echo "inconsistency (the contest's formula, fees as the processors report them)."
  echo "The issue's goal is p99 ≤ 5 ms through sluice; bench/NOTES.md has what the gap is made of."
  if [ -s "$D/sluice.json" ] && [ -s "$D/direct.json" ]; then
    jq -rs '"p99 through sluice / direct: \((.[0].p99_ms / .[1].p99_ms)*100|round/100); p50: \((.[0].p50_ms / .[1].p50_ms)*100|round/100)."' \
      "$D/sluice.json" "$D/direct.json"
  fi
} >bench/results/30-payments.md
cat bench/results/30-payments.md
bench/compose.sh
