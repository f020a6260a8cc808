#!/usr/bin/env bash
# Instructions per request of two sluice binaries, counted by valgrind (callgrind): a
# measure that does not move with the machine's noise, for changes too small for
# bench/ab.sh to resolve. Each binary serves the same config (a plain route and an API-key
# route with a Redis bucket, nginx `return 200` upstreams, one throwaway Redis) under
# callgrind; each route is driven for a while (after a warm-up), and the instructions
# counted between zeroing and dumping are divided by the requests wrk completed.
#   bench/instructions.sh OLD_BINARY NEW_BINARY      (DURATION=15 seconds per route)
# Needs valgrind (apt), nginx, wrk, redis-server. Everything listens on 127.0.0.1 and is
# stopped on exit, by PID.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

A_BIN="${1:?usage: bench/instructions.sh OLD_BINARY NEW_BINARY}"
B_BIN="${2:?usage: bench/instructions.sh OLD_BINARY NEW_BINARY}"
DURATION="${DURATION:-15}"
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
# Not Pingap or Kafka: nothing here runs them (Pingap alone is a long cargo install).
SLUICE_BENCH_DEPS=1 SLUICE_BENCH_PINGAP=0 SLUICE_KAFKA_DEPS=0 "$ROOT/scripts/install-deps.sh"

source "$ROOT/bench/fixture.sh"
bench_fixture ir 1
UP="${UPSTREAM_PORTS[0]}"

# count NAME BINARY: prints "plain_ir keyed_ir" per request.
count() {
  local name="$1" bin="$2" port admin pid key
  port=$(free_port); admin=$(free_port)
  cat >"$DIR/$name.yaml" <<EOF
server: { listen: "127.0.0.1:$port", admin_listen: "127.0.0.1:$admin", threads: 1, grace_period_s: 1 }
redis: { url: "redis://127.0.0.1:$REDIS_P", timeout_ms: 1000 }
admin: { token_sha256: "$TOKEN_SHA" }
tiers:
  internal: { rate_per_s: 1000000, burst: 1000000 }
upstreams:
  up:
    peers: ["127.0.0.1:$UP"]
    health_check: { path: /health, interval_ms: 60000, timeout_ms: 2000, healthy_after: 1, unhealthy_after: 5 }
    read_timeout_ms: 20000
    connect_timeout_ms: 5000
routes:
  - { name: plain, path_prefix: /plain, upstream: up }
  - { name: api, path_prefix: /api/, strip_prefix: true, upstream: up, auth: api_key }
EOF
  valgrind --tool=callgrind --callgrind-out-file="$DIR/$name.%p.out" --dump-instr=no \
    --collect-atstart=yes "$bin" --config "$DIR/$name.yaml" --pid-file "$DIR/$name.pid" \
    --upgrade-sock "$DIR/$name.sock" >"$DIR/$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_port "sluice-$name" "$port" 120
  key=$(create_key "$admin")
  # Warm-up: connections, caches, leases.
  wrk -t1 -c4 -d3s "http://127.0.0.1:$port/plain/x" >/dev/null
  wrk -t1 -c4 -d3s -H "X-API-Key: $key" "http://127.0.0.1:$port/api/x" >/dev/null
  local -a ir=()
  local route header
  for route in plain api; do
    header=()
    [ "$route" = api ] && header=(-H "X-API-Key: $key")
    callgrind_control --zero "$pid" >/dev/null 2>&1
    sent=$(run_n "http://127.0.0.1:$port/$route/x" "${header[@]}")
    callgrind_control --dump="$route" "$pid" >/dev/null 2>&1
    sleep 1
    local file total
    file=$(ls -t "$DIR/$name.$pid.out".* 2>/dev/null | head -n 1)
    total=$(awk '/^summary:|^totals:/ {print $2; exit}' "$file")
    ir+=("$(awk -v t="$total" -v n="$sent" 'BEGIN { printf "%.0f", t / n }')")
  done
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "${ir[*]}"
}
# run_n URL [HEADER...]: drives URL for DURATION seconds on 4 connections; prints the
# requests completed.
run_n() {
  local url="$1"; shift
  local out
  out=$(wrk -t1 -c4 -d"${DURATION}s" "$@" "$url")
  awk '/requests in/ {print $1}' <<<"$out"
}

read -r A_PLAIN A_KEYED <<<"$(count old "$A_BIN")"
read -r B_PLAIN B_KEYED <<<"$(count new "$B_BIN")"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b / a }'; }
TABLE="| route | $(basename "$A_BIN") instr/request | $(basename "$B_BIN") instr/request | new/old |
|---|---|---|---|
| plain | $A_PLAIN | $B_PLAIN | $(ratio "$A_PLAIN" "$B_PLAIN") |
| keyed (API key + Redis bucket) | $A_KEYED | $B_KEYED | $(ratio "$A_KEYED" "$B_KEYED") |"
echo "$TABLE"
# Each run is appended: the file keeps the history of comparisons (the tables name
# the binaries compared).
mkdir -p bench/results
{
  echo
  echo "## Instructions per request (callgrind) — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`DURATION=$DURATION bench/instructions.sh OLD NEW\` (one worker thread, nginx"
  echo "\`return 200\` upstream, one throwaway Redis; all of the sluice process's instructions"
  echo "between zeroing and dumping, divided by the requests wrk completed)."
  echo
  echo "$TABLE"
} >>bench/results/16-instructions.md
bench/compose.sh
