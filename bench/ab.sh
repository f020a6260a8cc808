#!/usr/bin/env bash
# A/B of two sluice binaries on the same config, in one run: is a change faster or slower
# on the request path? Both binaries run side by side (same upstreams: two nginx `return
# 200` ports; same throwaway Redis), and each round drives the plain route and the keyed
# route (API key + Redis token bucket) of each, in alternating order. Half-way both are
# restarted in the other start order: the process started second measured up to ~8%
# slower on this machine whatever binary it ran, so each binary gets each slot for half
# the rounds. Prints and writes the medians of req/s, of each process's CPU µs per
# request, and of its context switches per request (all its threads, voluntary and not):
# a thread that sleeps and is woken again per request shows there, steadier than req/s.
#   bench/ab.sh OLD_BINARY NEW_BINARY          (ROUNDS=6 DURATION=8 CONNECTIONS=32)
# Needs nginx, wrk and redis-server (scripts/install-deps.sh with SLUICE_BENCH_DEPS=1).
# Everything listens on 127.0.0.1 and is stopped on exit, by PID.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

A_BIN="${1:?usage: bench/ab.sh OLD_BINARY NEW_BINARY}"
B_BIN="${2:?usage: bench/ab.sh OLD_BINARY NEW_BINARY}"
ROUNDS="${ROUNDS:-6}"
DURATION="${DURATION:-8}"
CONNECTIONS="${CONNECTIONS:-32}"
# Not Pingap or Kafka: nothing here runs them (Pingap alone is a long cargo install).
SLUICE_BENCH_DEPS=1 SLUICE_BENCH_PINGAP=0 SLUICE_KAFKA_DEPS=0 "$ROOT/scripts/install-deps.sh"

source "$ROOT/bench/fixture.sh"
bench_fixture ab 2
UP1="${UPSTREAM_PORTS[0]}"; UP2="${UPSTREAM_PORTS[1]}"

stop_sluice() { # name
  local pid="PID_$1"
  kill -INT "${!pid}" 2>/dev/null || true
  wait "${!pid}" 2>/dev/null || true
}
start_sluice() { # name binary -> sets PORT_<name>, ADMIN_<name>, PID_<name>
  local name="$1" bin="$2" port admin
  port=$(free_port); admin=$(free_port)
  cat >"$DIR/$name.yaml" <<EOF
server: { listen: "127.0.0.1:$port", admin_listen: "127.0.0.1:$admin", threads: 2, grace_period_s: 1 }
redis: { url: "redis://127.0.0.1:$REDIS_P", timeout_ms: 50 }
admin: { token_sha256: "$TOKEN_SHA" }
tiers:
  internal: { rate_per_s: 1000000, burst: 1000000 }
upstreams:
  up:
    peers: ["127.0.0.1:$UP1", "127.0.0.1:$UP2"]
    health_check: { path: /health, interval_ms: 1000, timeout_ms: 300, healthy_after: 1, unhealthy_after: 2 }
routes:
  - { name: plain, path_prefix: /plain, upstream: up }
  - { name: api, path_prefix: /api/, strip_prefix: true, upstream: up, auth: api_key }
EOF
  launch_sluice "$name" "$bin" "$port" "$admin"
}
start_sluice old "$A_BIN"
start_sluice new "$B_BIN"

# One key in the shared Redis serves both instances.
KEY=$(create_key "$ADMIN_old")

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat "/proc/$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }'; }
declare -A RPS CPU CTX
run_one() { # label pid url [header]
  local label="$1" pid="$2" url="$3" before after out reqs rps cpu sw_before sw_after ctx
  local -a extra=()
  [ -n "${4:-}" ] && extra=(-H "$4")
  before=$(ticks "$pid"); sw_before=$(switches "$pid")
  out=$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "${extra[@]}" "$url")
  after=$(ticks "$pid"); sw_after=$(switches "$pid")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  cpu=$(awk -v t="$((after - before))" -v u="$TICK_US" -v r="$reqs" 'BEGIN { printf "%.1f", t * u / r }')
  ctx=$(awk -v s="$((sw_after - sw_before))" -v r="$reqs" 'BEGIN { printf "%.2f", s / r }')
  RPS[$label]+="$rps "; CPU[$label]+="$cpu "; CTX[$label]+="$ctx "
  printf '  %-10s %10s req/s  cpu/req %6s us  switches/req %5s\n' "$label" "$rps" "$cpu" "$ctx"
}

warm_up() {
  for name in old new; do
    port="PORT_$name"
    wrk -t1 -c8 -d2s "http://127.0.0.1:${!port}/plain/x" >/dev/null
    wrk -t1 -c8 -d2s -H "X-API-Key: $KEY" "http://127.0.0.1:${!port}/api/x" >/dev/null
  done
}
warm_up
HALF=$(((ROUNDS + 1) / 2))
for round in $(seq 1 "$ROUNDS"); do
  if [ "$round" -eq $((HALF + 1)) ]; then
    echo "== restarting both, new first"
    stop_sluice old; stop_sluice new
    start_sluice new "$B_BIN"
    start_sluice old "$A_BIN"
    warm_up
  fi
  echo "== round $round/$ROUNDS (wrk -t1 -c$CONNECTIONS -d${DURATION}s)"
  order="old new"; [ $((round % 2)) -eq 0 ] && order="new old"
  for kind in plain keyed; do
    for name in $order; do
      port="PORT_$name"; pid="PID_$name"
      if [ "$kind" = plain ]; then
        run_one "$name-plain" "${!pid}" "http://127.0.0.1:${!port}/plain/x"
      else
        run_one "$name-keyed" "${!pid}" "http://127.0.0.1:${!port}/api/x" "X-API-Key: $KEY"
      fi
    done
  done
done

row() { printf '| %s | %s | %s | %s |\n' "$1" "$(median "${RPS[$2]}")" "$(median "${CPU[$2]}")" "$(median "${CTX[$2]}")"; }
ratio() { awk -v a="$(median "${CPU[$1]}")" -v b="$(median "${CPU[$2]}")" 'BEGIN { printf "%.2f", a / b }'; }
# paired NEW OLD: the median over rounds of new/old req/s within each round. The two ran
# seconds apart, so a machine that speeds up or slows down during the run (seen here:
# 24k -> 32k req/s for the same binary) moves both alike.
paired() {
  local -a a=(${RPS[$1]}) b=(${RPS[$2]})
  local i out=""
  for i in "${!a[@]}"; do
    out+="$(awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN { printf "%.3f", x / y }') "
  done
  median "$out"
}
TABLE="| binary, route | req/s | sluice CPU µs/req | sluice context switches/req |
|---|---|---|---|
$(row "old, plain" old-plain)
$(row "new, plain" new-plain)
$(row "old, keyed (API key + Redis bucket)" old-keyed)
$(row "new, keyed (API key + Redis bucket)" new-keyed)

CPU per request new/old: plain **$(ratio new-plain old-plain)**, keyed **$(ratio new-keyed old-keyed)**
req/s new/old, median of the rounds' own ratios: plain **$(paired new-plain old-plain)**, keyed **$(paired new-keyed old-keyed)**"
echo; echo "$TABLE"
mkdir -p bench/results
{
  echo "## Two binaries, one run: $(basename "$A_BIN") (old) vs $(basename "$B_BIN") (new) — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS bench/ab.sh OLD NEW\` (nginx \`return 200\`"
  echo "upstreams, one throwaway Redis, no Kafka; the two binaries alternate within each round and swap"
  echo "start order half-way; medians)."
  echo
  echo "$TABLE"
} >bench/results/15-ab.md
bench/compose.sh
