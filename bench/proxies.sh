#!/usr/bin/env bash
# Every proxy side by side on the same backends, in one run: direct, nginx, HAProxy, a bare
# Pingora proxy (bench/bare-pingora), sluice plain, sluice keyed + limited, sluice with
# Kafka events, and Pingap. Two workloads: tiny responses (two nginx `return 200` ports)
# and GET /todos?limit=10 (the stack's two todo instances on PostgreSQL). Each round runs
# every target once, in an order rotated per round so no target always follows the same
# one. Prints and writes bench/results/10-proxy.md: medians of req/s, p50/p99 and each
# proxy's CPU µs per request (utime+stime of its processes / requests).
#   ROUNDS=3 DURATION=8 CONNECTIONS=64 THREADS=2 bench/proxies.sh
# Needs the stack (make up: the todo instances, and tansu for the Kafka row); bench/run.sh
# starts it. Everything listens on 127.0.0.1 and is stopped on exit, by PID.
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-8}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
SLUICE_BENCH_DEPS=1 "$ROOT/scripts/install-deps.sh"
cargo build --release --locked --bin sluice --bin bare-pingora
PINGAP="$(command -v pingap || echo "$HOME/.cargo/bin/pingap")"

source "$ROOT/bench/fixture.sh"
bench_fixture proxies 2
T1="${UPSTREAM_PORTS[0]}"; T2="${UPSTREAM_PORTS[1]}"
TODOS="/todos?limit=10"
curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:8081$TODOS" ||
  { echo "proxies: the stack's todo service is not up (make up)" >&2; exit 1; }

# nginx as a proxy: 2 workers (one per core), round robin, upstream keepalive.
NGX=$(free_port)
start_nginx_proxy "$NGX" 4096 \
  "upstream tiny { server 127.0.0.1:$T1; server 127.0.0.1:$T2; keepalive 128; }
  upstream todo { server 127.0.0.1:8081; server 127.0.0.1:8082; keepalive 128; }" \
  "location /todos { proxy_pass http://todo; }
    location / { proxy_pass http://tiny; }"
# HAProxy ignores the SIGINT bench_cleanup sends (a background job of a script starts
# with SIGINT ignored); it stops on SIGTERM.
hap_stop() { [ -n "${HAP_PID:-}" ] && kill -TERM "$HAP_PID" 2>/dev/null; wait "${HAP_PID:-}" 2>/dev/null || true; }
trap 'ngx_stop; hap_stop; bench_cleanup' EXIT

# HAProxy: 2 threads, round robin, connection reuse to the backends.
HAP=$(free_port)
cat >"$DIR/haproxy.cfg" <<CONF
global
  nbthread 2
  maxconn 8000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend bench
  bind 127.0.0.1:$HAP
  use_backend todo if { path_beg /todos }
  default_backend tiny
backend tiny
  balance roundrobin
  server t1 127.0.0.1:$T1
  server t2 127.0.0.1:$T2
backend todo
  balance roundrobin
  server d1 127.0.0.1:8081
  server d2 127.0.0.1:8082
CONF
haproxy -c -q -f "$DIR/haproxy.cfg"
haproxy -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 &
HAP_PID=$!

# The bare Pingora proxy: one process per workload (it has no routing at all).
BT=$(free_port); BD=$(free_port)
"$CARGO_TARGET_DIR/release/bare-pingora" --listen "127.0.0.1:$BT" --peer "127.0.0.1:$T1" --peer "127.0.0.1:$T2" \
  >"$DIR/bare-tiny.log" 2>&1 &
BT_PID=$!
"$CARGO_TARGET_DIR/release/bare-pingora" --listen "127.0.0.1:$BD" --peer 127.0.0.1:8081 --peer 127.0.0.1:8082 \
  >"$DIR/bare-todo.log" 2>&1 &
BD_PID=$!
PIDS+=("$BT_PID" "$BD_PID")

# sluice, twice: the same config without and with `kafka:` (the stack's tansu).
sluice_config() { # port admin [kafka]
  cat <<YAML
server: { listen: "127.0.0.1:$1", admin_listen: "127.0.0.1:$2", threads: 2, grace_period_s: 1 }
redis: { url: "redis://127.0.0.1:$REDIS_P", timeout_ms: 50 }
admin: { token_sha256: "$TOKEN_SHA" }
tiers:
  internal: { rate_per_s: 1000000, burst: 1000000 }
upstreams:
  tiny:
    peers: ["127.0.0.1:$T1", "127.0.0.1:$T2"]
    health_check: { path: /health, interval_ms: 1000, timeout_ms: 300, healthy_after: 1, unhealthy_after: 2 }
  todo:
    peers: ["127.0.0.1:8081", "127.0.0.1:8082"]
    health_check: { path: /health, interval_ms: 1000, timeout_ms: 300, healthy_after: 1, unhealthy_after: 2 }
routes:
  - { name: key-tiny, path_prefix: /key-tiny, strip_prefix: true, upstream: tiny, auth: api_key }
  - { name: key-todo, path_prefix: /key-todo, strip_prefix: true, upstream: todo, auth: api_key }
  - { name: todos, path_prefix: /todos, upstream: todo }
  - { name: tiny, path_prefix: /, upstream: tiny }
YAML
  if [ "${3:-}" = kafka ]; then
    cat <<YAML
kafka:
  brokers: "$KAFKA_BROKERS"
  topic: sluice.requests
  queue_capacity: 100000
  linger_ms: 100
  spill_dir: "$DIR/spill"
  value_compression: zstd
YAML
  fi
}
start_sluice() { # name [kafka] -> PORT_<name>, ADMIN_<name>, PID_<name>
  local name="$1" port admin
  port=$(free_port); admin=$(free_port)
  sluice_config "$port" "$admin" "${2:-}" >"$DIR/$name.yaml"
  launch_sluice "$name" "$BIN/sluice" "$port" "$admin"
}
start_sluice plain
start_sluice kafka kafka
KEY=$(create_key "$ADMIN_plain")

# Pingap 0.13, configured the same way: 2 threads, round robin, two locations.
PGP=$(free_port)
HAVE_PINGAP=0
if [ -x "$PINGAP" ]; then
  HAVE_PINGAP=1
  cat >"$DIR/pingap.toml" <<TOML
[basic]
threads = 2
pid_file = "$DIR/pingap.pid"
upgrade_sock = "$DIR/pingap.sock"
grace_period = "1s"
graceful_shutdown_timeout = "1s"
[upstreams.tiny]
addrs = ["127.0.0.1:$T1", "127.0.0.1:$T2"]
[upstreams.todo]
addrs = ["127.0.0.1:8081", "127.0.0.1:8082"]
[locations.todos]
upstream = "todo"
path = "/todos"
[locations.tiny]
upstream = "tiny"
path = "/"
[servers.bench]
addr = "127.0.0.1:$PGP"
locations = ["todos", "tiny"]
TOML
  "$PINGAP" -c "$DIR/pingap.toml" >"$DIR/pingap.log" 2>&1 &
  PG_PID=$!
  PIDS+=("$PG_PID")
  wait_port pingap "$PGP" 30
else
  echo "proxies: pingap is not installed (SLUICE_BENCH_PINGAP=1 scripts/install-deps.sh); its rows are skipped" >&2
fi
wait_port haproxy "$HAP" 10
wait_port bare-tiny "$BT" 30
wait_port bare-todo "$BD" 30
sleep 2 # the health checks mark every peer up

nginx_pids() { pgrep -P "$(cat "$DIR/ngx/nginx.pid")"; cat "$DIR/ngx/nginx.pid"; }
declare -A RPS P50 P99 CPU URL HDR PIDOF
run_one() { # row
  local row="$1" before after out rps p50 p99 reqs cpu="-" errors
  local -a extra=() pids=()
  [ -n "${HDR[$row]:-}" ] && extra=(-H "${HDR[$row]}")
  # shellcheck disable=SC2206
  [ -n "${PIDOF[$row]:-}" ] && pids=($(eval "${PIDOF[$row]}"))
  before=$(cpu_ticks "${pids[@]}")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "${extra[@]}" "${URL[$row]}")
  after=$(cpu_ticks "${pids[@]}")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/' <<<"$out")
  if [ -n "$errors" ]; then echo "proxies: $row: $errors" >&2; fi
  if [ "${#pids[@]}" -gt 0 ] && [ "$reqs" -gt 0 ]; then
    cpu=$(awk -v t="$((after - before))" -v u="$TICK_US" -v r="$reqs" 'BEGIN { printf "%.1f", t * u / r }')
  fi
  RPS[$row]+="$rps "; P50[$row]+="$p50 "; P99[$row]+="$p99 "; CPU[$row]+="$cpu "
  printf '  %-18s %10s req/s  p50 %7s ms  p99 %7s ms  cpu/req %6s us\n' "$row" "$rps" "$p50" "$p99" "$cpu"
}

# The rows: workload/target -> URL, header, the PIDs whose CPU is the proxy's.
TARGETS="direct nginx haproxy bare-pingora sluice sluice-keyed sluice-kafka"
[ "$HAVE_PINGAP" = 1 ] && TARGETS+=" pingap"
for w in tiny todos; do
  if [ "$w" = tiny ]; then p="/"; kp="/key-tiny/"; dp="127.0.0.1:$T1/"; bare="$BT"; bpid="$BT_PID"
  else p="$TODOS"; kp="/key-todo$TODOS"; dp="127.0.0.1:8081$TODOS"; bare="$BD"; bpid="$BD_PID"; fi
  URL[$w/direct]="http://$dp"
  URL[$w/nginx]="http://127.0.0.1:$NGX$p"; PIDOF[$w/nginx]="nginx_pids"
  URL[$w/haproxy]="http://127.0.0.1:$HAP$p"; PIDOF[$w/haproxy]="echo $HAP_PID"
  URL[$w/bare-pingora]="http://127.0.0.1:$bare$p"; PIDOF[$w/bare-pingora]="echo $bpid"
  URL[$w/sluice]="http://127.0.0.1:$PORT_plain$p"; PIDOF[$w/sluice]="echo $PID_plain"
  URL[$w/sluice-keyed]="http://127.0.0.1:$PORT_plain$kp"; PIDOF[$w/sluice-keyed]="echo $PID_plain"
  HDR[$w/sluice-keyed]="X-API-Key: $KEY"
  URL[$w/sluice-kafka]="http://127.0.0.1:$PORT_kafka$p"; PIDOF[$w/sluice-kafka]="echo $PID_kafka"
  URL[$w/pingap]="http://127.0.0.1:$PGP$p"; PIDOF[$w/pingap]="echo ${PG_PID:-}"
done

echo "== checking every target answers 200"
for w in tiny todos; do
  for t in $TARGETS; do
    code=$(curl -s -o /dev/null -w '%{http_code}' ${HDR[$w/$t]:+-H "${HDR[$w/$t]}"} "${URL[$w/$t]}")
    [ "$code" = 200 ] || { echo "proxies: $w/$t answered $code (${URL[$w/$t]})" >&2; exit 1; }
  done
done
echo "== warm-up"
for w in tiny todos; do
  for t in $TARGETS; do
    wrk -t1 -c8 -d1s ${HDR[$w/$t]:+-H "${HDR[$w/$t]}"} "${URL[$w/$t]}" >/dev/null
  done
done

read -ra ORDER <<<"$TARGETS"
for round in $(seq 1 "$ROUNDS"); do
  for w in tiny todos; do
    echo "== $w, round $round/$ROUNDS (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s)"
    for t in "${ORDER[@]}"; do run_one "$w/$t"; done
  done
  ORDER=("${ORDER[@]:1}" "${ORDER[0]}")
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
declare -A LABEL=(
  [direct]="direct (no proxy)"
  [nginx]="nginx $(nginx -v 2>&1 | sed 's#.*/##') (2 workers)"
  [haproxy]="HAProxy $(haproxy -v | awk 'NR == 1 {print $3}' | sed 's/-.*//') (2 threads)"
  [bare-pingora]="bare Pingora 0.9 proxy (bench/bare-pingora)"
  [sluice]="sluice, plain route"
  [sluice-keyed]="sluice, API key + Redis token bucket"
  [sluice-kafka]="sluice, plain route + Kafka events"
  [pingap]="Pingap 0.13.1"
)
TABLES=""
for w in tiny todos; do
  nginx_rps=$(median "${RPS[$w/nginx]}")
  bare_cpu=$(median "${CPU[$w/bare-pingora]}")
  [ "$w" = tiny ] && title="Tiny responses (nginx \`return 200\` on two ports)" || title="GET $TODOS (two todo instances, PostgreSQL)"
  TABLES+="### $title

| target | req/s | ×nginx | p50 ms | p99 ms | proxy CPU µs/req | CPU ×bare Pingora |
|---|---|---|---|---|---|---|
"
  for t in $TARGETS; do
    rps=$(median "${RPS[$w/$t]}"); cpu=$(median "${CPU[$w/$t]}")
    TABLES+="| ${LABEL[$t]} | $rps | $(ratio "$rps" "$nginx_rps") | $(median "${P50[$w/$t]}") | $(median "${P99[$w/$t]}") | $cpu | $(ratio "$cpu" "$bare_cpu") |
"
  done
  TABLES+="
"
done
echo
echo "$TABLES"

MACHINE="$(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB"
mkdir -p bench/results
{
  echo "## Proxies side by side — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS make bench\`"
  echo "(each measurement: \`wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency URL\`; every target once per"
  echo "round, the order rotated each round; medians of $ROUNDS rounds). Machine: $MACHINE; wrk, the"
  echo "proxies and the backends share its cores. Proxy CPU = utime+stime of the proxy's processes"
  echo "per request. Every proxy: 2 workers/threads, round robin over the same two backends, keepalive"
  echo "to them; sluice with its default stages (forwarding headers, request id, metrics, ...)."
  echo
  echo "$TABLES"
  if [ -f bench/NOTES.md ]; then cat bench/NOTES.md; fi
} >bench/results/10-proxy.md
