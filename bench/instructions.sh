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
SLUICE_BENCH_DEPS=1 "$ROOT/scripts/install-deps.sh"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DIR="$(mktemp -d /tmp/sluice-ir.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  [ -f "$DIR/nginx/nginx.pid" ] && nginx -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx/" -s quit 2>/dev/null || true
  [ -n "${REDIS_P:-}" ] && redis-cli -p "$REDIS_P" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

UP=$(free_port)
mkdir -p "$DIR/nginx/tmp"
cat >"$DIR/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $DIR/nginx/tmp/body; proxy_temp_path $DIR/nginx/tmp/proxy;
  fastcgi_temp_path $DIR/nginx/tmp/fastcgi; uwsgi_temp_path $DIR/nginx/tmp/uwsgi;
  scgi_temp_path $DIR/nginx/tmp/scgi;
  server { listen 127.0.0.1:$UP; keepalive_requests 1000000;
    location / { default_type application/json; return 200 '{"ok":true}'; } }
}
EOF
nginx -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx/"
REDIS_P=$(free_port)
redis-server --daemonize yes --port "$REDIS_P" --bind 127.0.0.1 --dir "$DIR" --save '' \
  --appendonly no --pidfile "$DIR/redis.pid" >/dev/null
wait_port redis "$REDIS_P" 10
TOKEN="ir-bench-admin-token"
TOKEN_SHA=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)

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
  for _ in $(seq 1 100); do
    key=$(curl -fsS -X POST "http://127.0.0.1:$admin/admin/keys" -H "Authorization: Bearer $TOKEN" \
      -H 'content-type: application/json' -d '{"name":"ir","tier":"internal"}' 2>/dev/null | jq -r .key) && [ -n "$key" ] && break
    sleep 0.5
  done
  [ -n "$key" ] || { echo "could not create a key on $name" >&2; exit 1; }
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
mkdir -p bench/results
{
  echo "## Instructions per request (callgrind) — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`DURATION=$DURATION bench/instructions.sh OLD NEW\` (one worker thread, nginx"
  echo "\`return 200\` upstream, one throwaway Redis; all of the sluice process's instructions"
  echo "between zeroing and dumping, divided by the requests wrk completed)."
  echo
  echo "$TABLE"
} >bench/results/16-instructions.md
bench/compose.sh
