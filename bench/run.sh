#!/usr/bin/env bash
# `make bench`, in one run: every proxy side by side on tiny responses and on GET /todos
# (bench/proxies.sh -> bench/results/10-proxy.md), hedged requests through the stack's
# sluice (11-hedging.md), TLS and HTTP/2 against nginx (bench/tls.sh -> 19-tls.md); then
# bench/RESULTS.md. Uses the stack from `make up` (starts it if needed).
#   ROUNDS=3 DURATION=8 CONNECTIONS=64 THREADS=2 bench/run.sh
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-8}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
PATH_Q="/todos?limit=10"

SLUICE_BENCH_DEPS=1 "$ROOT/scripts/install-deps.sh"
if ! curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:9901/health; then
  "$ROOT/scripts/up.sh"
fi

# Ten items so the response is a realistic small JSON list.
have=$(curl -fsS "http://127.0.0.1:8081$PATH_Q" | jq length)
for i in $(seq "$((have + 1))" 10); do
  curl -fsS -o /dev/null -X POST http://127.0.0.1:8081/todo -H 'content-type: application/json' \
    -d "{\"title\":\"bench item $i\",\"status\":\"pending\",\"due_date\":\"2024-10-30\"}"
done

# Every proxy side by side on tiny responses and on GET /todos: bench/results/10-proxy.md.
ROUNDS="$ROUNDS" DURATION="$DURATION" CONNECTIONS="$CONNECTIONS" THREADS="$THREADS" "$ROOT/bench/proxies.sh"

source "$ROOT/bench/fixture.sh" # median
declare -A RPS P50 P99

# The hedging scenario: peer 8202 delays 10% of its requests by 300 ms. Closed-loop wrk
# would push far more load through the hedged route (its connections are not stuck for
# 300 ms), so both routes get the same fixed arrival rate from k6 instead.
HEDGE_RATE="${HEDGE_RATE:-500}"
curl -fsS -o /dev/null -X PUT http://127.0.0.1:8202/admin/config -d '{"delay_ms":300,"delay_percent":10}'
k6_row() { # name url
  local out
  out=$(k6 run --quiet -e URL="$2" -e RATE="$HEDGE_RATE" -e DURATION="${DURATION}s" bench/k6/hedging.js 2>/dev/null | tail -n 1)
  local p50 p99 reqs
  p50=$(jq -r '.p50 * 100 | round / 100' <<<"$out"); p99=$(jq -r '.p99 * 100 | round / 100' <<<"$out"); reqs=$(jq -r .reqs <<<"$out")
  RPS[$1]+="$(awk -v r="$reqs" -v d="$DURATION" 'BEGIN { printf "%.0f", r / d }') "; P50[$1]+="$p50 "; P99[$1]+="$p99 "
  printf '  %-12s %6s req/s  p50 %7s ms  p99 %7s ms   (k6, %s req/s offered)\n' "$1" "$(awk -v r="$reqs" -v d="$DURATION" 'BEGIN { printf "%.0f", r / d }')" "$p50" "$p99" "$HEDGE_RATE"
}
for round in $(seq 1 "$ROUNDS"); do
  echo "== hedging round $round/$ROUNDS (peer 8202 delays 10% by 300 ms)"
  k6_row plain-slow "http://127.0.0.1:9999/demo/plain/x"
  k6_row hedged-slow "http://127.0.0.1:9999/demo/hedged/x"
done
curl -fsS -o /dev/null -X PUT http://127.0.0.1:8202/admin/config -d '{"delay_ms":0,"delay_percent":0}'

declare -A M
for n in plain-slow hedged-slow; do
  M[$n.rps]=$(median "${RPS[$n]}"); M[$n.p50]=$(median "${P50[$n]}"); M[$n.p99]=$(median "${P99[$n]}")
done
TABLE="| route (peer 8202 delays 10% of its answers by 300 ms; k6 at ${HEDGE_RATE} req/s) | req/s | p50 ms | p99 ms |
|---|---|---|---|
| hedging off (/demo/plain) | ${M[plain-slow.rps]} | ${M[plain-slow.p50]} | ${M[plain-slow.p99]} |
| hedging on, p95 delay (floor 10 ms), budget 10% (/demo/hedged) | ${M[hedged-slow.rps]} | ${M[hedged-slow.p50]} | ${M[hedged-slow.p99]} |"
echo
echo "$TABLE"
mkdir -p bench/results
{
  echo "## Hedged requests — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION make bench\` (k6 \`bench/k6/hedging.js\` at a fixed arrival"
  echo "rate through the stack's sluice, both routes alternating; medians of $ROUNDS rounds)."
  echo
  echo "$TABLE"
} >bench/results/11-hedging.md
# TLS and HTTP/2 rows against nginx terminating TLS the same way (its own fixture).
ROUNDS="$ROUNDS" DURATION="$DURATION" "$ROOT/bench/tls.sh" "$BIN/sluice"
bench/compose.sh
echo
echo "wrote bench/RESULTS.md"
