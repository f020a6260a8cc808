#!/usr/bin/env bash
# Memory at scale (issue 17, item 5): for each N in CLIENTS, a fresh proxy process, its RSS
# idle, then while N concurrent keepalive clients keep it busy (wrk -cN against a tiny nginx
# `return 200` backend), the upstream connections open at that moment, the peak (VmHWM),
# and the RSS once the load has stopped. Per client = (RSS under load - idle) / N.
# Proxies: sluice (the plain route of bench/proxies.sh, Redis configured, no Kafka), the
# bare Pingora proxy and nginx (2 workers, its processes summed) as references.
# Writes bench/results/12-memory.md.
#   CLIENTS="1000 10000" DURATION=12 [PROXIES="nginx bare-pingora sluice"] \
#     [SLUICE_BIN=path] bench/memory.sh
# SLUICE_BIN runs another sluice build (e.g. `cargo build --release -p sluice
# --no-default-features`: the system allocator, which heaptrack sees); the environment
# reaches the proxies (e.g. MIMALLOC_ALLOW_THP=0).
# Everything listens on 127.0.0.1 and is stopped on exit, by PID.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

CLIENTS="${CLIENTS:-1000 10000}"
DURATION="${DURATION:-12}"
SLUICE_BENCH_DEPS=1 SLUICE_BENCH_PINGAP=0 SLUICE_KAFKA_DEPS=0 "$ROOT/scripts/install-deps.sh"
cargo build --release --locked --bin sluice --bin bare-pingora
BIN="$CARGO_TARGET_DIR/release"
# Each client is a socket in wrk and one in the proxy, and the proxy may hold an upstream
# socket per client besides.
ulimit -n "$(ulimit -Hn)"

source "$ROOT/bench/fixture.sh"
NGINX_WORKER_CONNECTIONS=20000 bench_fixture memory 2
T1="${UPSTREAM_PORTS[0]}"; T2="${UPSTREAM_PORTS[1]}"

# status_kib FIELD PID...: that /proc status field (VmRSS, VmHWM) of those processes,
# summed, in KiB.
status_kib() { local field="$1" pid total=0; shift; for pid in "$@"; do
  total=$((total + $(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0))); done; echo "$total"; }
upstream_conns() { ss -Htn state established "( dport = :$T1 or dport = :$T2 )" | wc -l; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# start PROXY -> PORT and TARGET_PIDS of a fresh process
start() {
  local port admin
  port=$(free_port)
  case "$1" in
    sluice)
      admin=$(free_port)
      cat >"$DIR/sluice.yaml" <<YAML
server: { listen: "127.0.0.1:$port", admin_listen: "127.0.0.1:$admin", threads: 2, grace_period_s: 1 }
redis: { url: "redis://127.0.0.1:$REDIS_P", timeout_ms: 50 }
admin: { token_sha256: "$TOKEN_SHA" }
upstreams:
  tiny:
    peers: ["127.0.0.1:$T1", "127.0.0.1:$T2"]
    health_check: { path: /health, interval_ms: 1000, timeout_ms: 300, healthy_after: 1, unhealthy_after: 2 }
routes:
  - { name: tiny, path_prefix: /, upstream: tiny }
YAML
      launch_sluice sluice "${SLUICE_BIN:-$BIN/sluice}" "$port" "$admin"
      TARGET_PIDS=("$PID_sluice")
      sleep 2 # the health checks mark both peers up
      ;;
    bare-pingora)
      "$BIN/bare-pingora" --listen "127.0.0.1:$port" --peer "127.0.0.1:$T1" --peer "127.0.0.1:$T2" \
        >"$DIR/bare.log" 2>&1 &
      PIDS+=($!)
      TARGET_PIDS=("$!")
      wait_port bare-pingora "$port" 30
      ;;
    nginx)
      start_nginx_proxy "$port" 20000 \
        "upstream tiny { server 127.0.0.1:$T1; server 127.0.0.1:$T2; keepalive 128; }" \
        "location / { proxy_pass http://tiny; }"
      wait_port nginx-proxy "$port" 10
      # shellcheck disable=SC2207
      TARGET_PIDS=($(cat "$DIR/ngx/nginx.pid") $(pgrep -P "$(cat "$DIR/ngx/nginx.pid")"))
      ;;
  esac
  PORT=$port
}
stop() {
  case "$1" in
    nginx) ngx_stop ;;
    *) kill -INT "${TARGET_PIDS[@]}" 2>/dev/null || true ;;
  esac
  local pid
  for pid in "${TARGET_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
}

ROWS=""
for n in $CLIENTS; do
  for proxy in ${PROXIES:-nginx bare-pingora sluice}; do
    start "$proxy"
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/" || { echo "memory: $proxy does not answer" >&2; exit 1; }
    idle=$(status_kib VmRSS "${TARGET_PIDS[@]}")
    wrk -t2 -c"$n" -d"${DURATION}s" --timeout 10s "http://127.0.0.1:$PORT/" >"$DIR/wrk.out" 2>&1 &
    WRK=$!
    sleep $((DURATION * 2 / 3))
    busy=$(status_kib VmRSS "${TARGET_PIDS[@]}")
    ups=$(upstream_conns)
    wait "$WRK" || true
    hwm=$(status_kib VmHWM "${TARGET_PIDS[@]}")
    sleep 2
    after=$(status_kib VmRSS "${TARGET_PIDS[@]}")
    rps=$(awk '/^Requests\/sec/ {printf "%d", $2}' "$DIR/wrk.out")
    errs=$(awk '/Socket errors|Non-2xx/ {sub(/^ +/, ""); printf "%s; ", $0}' "$DIR/wrk.out")
    per=$(awk -v b="$busy" -v i="$idle" -v n="$n" 'BEGIN { printf "%.1f", (b - i) / n }')
    row="| $proxy | $n | $(mib "$idle") | $(mib "$busy") | $(mib "$hwm") | $(mib "$after") | $per | $ups | $rps | ${errs:-none} |"
    echo "$row"
    ROWS+="$row"$'\n'
    stop "$proxy"
  done
done

OUT="$ROOT/bench/results/12-memory.md"
{
  echo "## Memory at scale ($(date -u +%Y-%m-%d), \`CLIENTS=\"$CLIENTS\" DURATION=$DURATION bench/memory.sh\`)"
  echo
  echo "A fresh process per row; wrk -t2 -cN keepalive clients on a tiny nginx \`return 200\` backend;"
  echo "RSS under load read at 2/3 of the run; per client = (RSS under load − idle) / N, in KiB;"
  echo "upstream = established connections to the backend at that moment."
  echo
  echo "| proxy | clients | idle MiB | under load MiB | peak MiB | after MiB | KiB per client | upstream conns | req/s | wrk errors |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s' "$ROWS"
} >"$OUT"
echo "memory: wrote $OUT"
