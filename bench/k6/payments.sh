#!/usr/bin/env bash
# The Rinha de Backend 2025 contest's test (bench/k6/payments.js) against the running stack
# (`make up` first if it is not), three ways, one after the other:
#   sluice          the stack's gateway on 9999 (Kafka events on) — the contest's row
#   sluice-nokafka  a second sluice on 19999 with the same config minus `kafka:`
#   direct          straight to payments 8091, no gateway (the reference)
# Writes bench/results/30-payments.md and regenerates bench/RESULTS.md.
# MAX_REQUESTS sets the peak VUs (the contest's 550); SCHEDULE=slow runs the variant with a
# default slower than the call timeout; TARGETS picks the rows.
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ROOT"

MAX_REQUESTS="${MAX_REQUESTS:-550}"
SCHEDULE="${SCHEDULE:-contest}"
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
  echo "k6 [$1]: the contest's test ($SCHEDULE schedule, $MAX_REQUESTS VUs) against $2 (log: $D/$1.log)"
  k6 run --quiet -e BASE_URL="$2" -e SUMMARY_FILE="$s" -e MAX_REQUESTS="$MAX_REQUESTS" \
    -e SCHEDULE="$SCHEDULE" bench/k6/payments.js >"$D/$1.log" 2>&1 || true
  if [ ! -s "$s" ] || [ "$(jq .success "$s")" = 0 ]; then
    echo "k6 [$1] made no payment; see $D/$1.log" >&2
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
  echo "## Payments: the Rinha de Backend 2025 contest's test (k6) — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`make k6-payments\` (SCHEDULE=$SCHEDULE, MAX_REQUESTS=$MAX_REQUESTS) — the contest's"
  echo "rinha-test/rinha.js rule for rule: VUs ramp 1 → $MAX_REQUESTS over 60 s, each POSTs one payment"
  echo "then sleeps 1 s; the processors' delay/failure change at 1, 10, 20, 30, 40 and 50 s"
  echo "(0; default 100 ms; default failing; default 2 s + fallback 1 s, both failing; both 20 ms;"
  echo "fallback 5 s); every 10 s the backend's summary over [now − 15 s, now − 1.5 s] is compared with"
  echo "the processors'; at the end, no drain: lag = successful POSTs − the payments the backend"
  echo "counts. p99 is over every request of the test with an expected answer (the contest's"
  echo "\`http_req_duration{expected_response:true}\`); \"POST p99\" over the payments alone. Payments ×2"
  echo "(:8091/:8092) → processor simulators (:8001 fee 5%, :8002 fee 15%), everything including k6"
  echo "on this 2-core machine. Rows one after the other: the stack's sluice (Kafka events on), a"
  echo "second sluice with the same config minus \`kafka:\`, and straight to one payments instance."
  echo
  echo "| target | p99 ms | POST p99 ms | POST p50 ms | successes | failures | counted default / fallback | lag | inconsistencies (checks) | score |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for target in $TARGETS; do
    jq -r --arg t "$target" '"| \($t) | \(.p99_ms) | \(.post_p99_ms*100|round/100) | \(.post_p50_ms*100|round/100) | \(.success) | \(.failure) | \(.backend_default) / \(.backend_fallback) | \(.lag) | \(.inconsistencies) (\(.consistency_checks)) | \(.score|round) |"' "$D/$target.json"
  done
  echo
  echo "Score as the contest computes it: net = the backend's totals − fees (each processor's"
  echo "feePerTransaction × the backend's amount for it); score = net × (1 + bonus − fine), bonus ="
  echo "max((11 − p99 ms) × 0.02, 0), fine 35% on any inconsistency; a negative lag disqualifies."
  if [ -s "$D/sluice.json" ] && [ -s "$D/direct.json" ]; then
    jq -rs '"p99 through sluice / direct: \((.[0].p99_ms / .[1].p99_ms)*100|round/100); POST p50: \((.[0].post_p50_ms / .[1].post_p50_ms)*100|round/100)."' \
      "$D/sluice.json" "$D/direct.json"
  fi
} >bench/results/30-payments.md
cat bench/results/30-payments.md
bench/compose.sh
