#!/usr/bin/env bash
# TLS and HTTP/2 side by side: sluice and nginx terminating TLS with the same certificate
# (scripts/tls-certs.sh) and the same OpenSSL, each proxying to the same nginx `return 200`
# upstream with keepalive, alternating for several rounds in one run. Rows:
#   keepalive   wrk over TLS, many requests per connection;
#   handshakes  wrk with `Connection: close`: one request per connection, a full
#               handshake each (no session resumption: wrk does not resume);
#   h2          h2load, HTTP/2 over TLS, 32 connections x 8 streams.
# Prints and writes bench/results/19-tls.md: req/s, p50/p99 (wrk), and each proxy's CPU
# µs per request (utime+stime of its processes / requests).
#   ROUNDS=3 DURATION=8 bench/tls.sh [SLUICE_BINARY]
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

SLUICE_BIN="${1:-$BIN/sluice}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-8}"
CONNECTIONS="${CONNECTIONS:-32}"
# Not Pingap or Kafka: nothing here runs them (Pingap alone is a long cargo install).
SLUICE_BENCH_DEPS=1 SLUICE_BENCH_PINGAP=0 SLUICE_KAFKA_DEPS=0 "$ROOT/scripts/install-deps.sh"
[ -x "$SLUICE_BIN" ] || cargo build --release --locked --bin sluice

source "$ROOT/bench/fixture.sh"
bench_fixture tls 1
UP="${UPSTREAM_PORTS[0]}"
"$ROOT/scripts/tls-certs.sh" "$DIR/tls" server 1 2 DNS:localhost,IP:127.0.0.1
S_PLAIN=$(free_port); S_ADMIN=$(free_port); S_TLS=$(free_port); N_TLS=$(free_port)

cat >"$DIR/sluice.yaml" <<YAML
server:
  listen: "127.0.0.1:$S_PLAIN"
  admin_listen: "127.0.0.1:$S_ADMIN"
  threads: 2
  upstream_header: false
  tls:
    listen: "127.0.0.1:$S_TLS"
    certificates: [{ cert: "$DIR/tls/server.pem", key: "$DIR/tls/server.key" }]
upstreams:
  up:
    peers: ["127.0.0.1:$UP"]
    health_check: { path: /health, interval_ms: 60000, timeout_ms: 2000, healthy_after: 1, unhealthy_after: 5 }
routes:
  - { name: all, path_prefix: /, upstream: up }
YAML
"$SLUICE_BIN" --config "$DIR/sluice.yaml" --pid-file "$DIR/sluice.pid" --upgrade-sock "$DIR/sluice.sock" \
  >"$DIR/sluice.log" 2>&1 &
S_PID=$!
PIDS+=("$S_PID")

# nginx as the TLS proxy, configured like sluice: 2 workers, TLS 1.2/1.3 with the Mozilla
# intermediate ciphers (what Pingora's acceptor uses), h2 by ALPN, keepalive upstream.
NGP="$DIR/nginx-tls"
mkdir -p "$NGP/tmp"
cat >"$NGP/nginx.conf" <<CONF
worker_processes 2;
pid $NGP/nginx.pid;
error_log $NGP/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $NGP/tmp/body; proxy_temp_path $NGP/tmp/proxy;
  fastcgi_temp_path $NGP/tmp/fastcgi; uwsgi_temp_path $NGP/tmp/uwsgi; scgi_temp_path $NGP/tmp/scgi;
  upstream up { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$N_TLS ssl http2;
    ssl_certificate $DIR/tls/server.pem;
    ssl_certificate_key $DIR/tls/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384;
    ssl_session_tickets off;
    ssl_session_cache off;
    keepalive_requests 1000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nginx -c "$NGP/nginx.conf" -p "$NGP/" -t -q
nginx -c "$NGP/nginx.conf" -p "$NGP/"
trap 'nginx -c "$NGP/nginx.conf" -p "$NGP/" -s quit 2>/dev/null || true; bench_cleanup' EXIT
wait_http sluice "https://localhost:$S_TLS/x" 60 --cacert "$DIR/tls/ca.pem"
wait_http nginx-tls "https://localhost:$N_TLS/x" 10 --cacert "$DIR/tls/ca.pem"

cipher() { openssl s_client -connect "127.0.0.1:$1" -servername localhost </dev/null 2>/dev/null | awk '/^ *Cipher *:/ {print $3; exit}'; }
CIPHER_S=$(cipher "$S_TLS"); CIPHER_N=$(cipher "$N_TLS")

nginx_pids() { pgrep -P "$(cat "$NGP/nginx.pid")"; cat "$NGP/nginx.pid"; }
declare -A RPS P50 P99 CPU
# A proxy that exits mid-run would only show as nonsense CPU figures: stop, and keep its log
# (the run's folder is removed on exit).
check_alive() {
  kill -0 "$S_PID" 2>/dev/null && return 0
  cp "$DIR/sluice.log" "/tmp/sluice-tls-exited.$S_PID.log"
  echo "tls: sluice (pid $S_PID) exited during the run; its log: /tmp/sluice-tls-exited.$S_PID.log" >&2
  exit 1
}
record() { # key rps p50 p99 reqs ticks
  local cpu="-"
  [ "${5:-0}" -gt 0 ] && cpu=$(awk -v t="$6" -v u="$TICK_US" -v r="$5" 'BEGIN { printf "%.1f", t * u / r }')
  RPS[$1]+="$2 "; P50[$1]+="$3 "; P99[$1]+="$4 "; CPU[$1]+="$cpu "
  printf '  %-20s %10s req/s  p50 %7s ms  p99 %7s ms  cpu/req %6s us\n' "$1" "$2" "$3" "$4" "$cpu"
}
wrk_row() { # key port connections [header]
  local key="$1" port="$2" conns="$3"; shift 3
  local -a pids; if [ "${key%%-*}" = sluice ]; then pids=("$S_PID"); else mapfile -t pids < <(nginx_pids); fi
  local before after out
  before=$(cpu_ticks "${pids[@]}")
  out=$(wrk -t1 -c"$conns" -d"${DURATION}s" --latency "$@" "https://localhost:$port/x")
  after=$(cpu_ticks "${pids[@]}")
  check_alive
  record "$key" "$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" \
    "$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")" "$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")" \
    "$(awk '/requests in/ {print $1}' <<<"$out")" "$((after - before))"
}
h2_row() { # key port
  local key="$1" port="$2"
  local -a pids; if [ "${key%%-*}" = sluice ]; then pids=("$S_PID"); else mapfile -t pids < <(nginx_pids); fi
  local before after out reqs
  before=$(cpu_ticks "${pids[@]}")
  out=$(h2load -c"$CONNECTIONS" -m8 -t1 -D"$DURATION" "https://localhost:$port/x" 2>&1)
  after=$(cpu_ticks "${pids[@]}")
  check_alive
  reqs=$(awk '/^requests:/ {print $8}' <<<"$out")
  record "$key" "$(awk '/^finished in/ {gsub(",", "", $4); print $4}' <<<"$out")" - - "${reqs:-0}" "$((after - before))"
}

echo "== warm-up"
wrk -t1 -c8 -d2s "https://localhost:$S_TLS/x" >/dev/null
wrk -t1 -c8 -d2s "https://localhost:$N_TLS/x" >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round/$ROUNDS"
  # Alternate who goes first: the second of two runs in a row is measurably slower here.
  if [ $((round % 2)) -eq 1 ]; then order=(sluice nginx); else order=(nginx sluice); fi
  for who in "${order[@]}"; do
    port=$S_TLS; [ "$who" = nginx ] && port=$N_TLS
    wrk_row "$who-keepalive" "$port" "$CONNECTIONS"
  done
  for who in "${order[@]}"; do
    port=$S_TLS; [ "$who" = nginx ] && port=$N_TLS
    wrk_row "$who-handshakes" "$port" 8 -H "Connection: close"
  done
  for who in "${order[@]}"; do
    port=$S_TLS; [ "$who" = nginx ] && port=$N_TLS
    h2_row "$who-h2" "$port"
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
row() { # label kind
  local s="sluice-$2" n="nginx-$2"
  echo "| $1 | $(median "${RPS[$n]}") | $(median "${CPU[$n]}") | $(median "${RPS[$s]}") | $(median "${CPU[$s]}") | **$(ratio "$(median "${RPS[$s]}")" "$(median "${RPS[$n]}")")** | $(median "${P99[$n]}") / $(median "${P99[$s]}") |"
}
TABLE="| load | nginx req/s | nginx CPU µs/req | sluice req/s | sluice CPU µs/req | sluice/nginx req/s | p99 ms nginx / sluice |
|---|---|---|---|---|---|---|
$(row "TLS keepalive (wrk -c$CONNECTIONS)" keepalive)
$(row "TLS, one request per connection (wrk -c8, Connection: close)" handshakes)
$(row "HTTP/2 over TLS (h2load -c$CONNECTIONS -m8)" h2)"
echo
echo "$TABLE"
MACHINE="$(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
mkdir -p bench/results
{
  echo "## TLS and HTTP/2: sluice and nginx terminating TLS — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION bench/tls.sh\` (medians of $ROUNDS alternating rounds;"
  echo "both proxies: 2 workers, the same ECDSA P-256 certificate; sluice links $(strings "$SLUICE_BIN" | grep -m1 -o '^OpenSSL [0-9][0-9.]*')"
  echo "(built by pingora-openssl, static), nginx the system's OpenSSL $(openssl version | awk '{print $2}');"
  echo "negotiated TLS 1.3 cipher sluice \`$CIPHER_S\`, nginx \`$CIPHER_N\`; upstream: nginx \`return 200\`"
  echo "with keepalive from both). Machine: $MACHINE, load generator on the same cores."
  echo
  echo "$TABLE"
} >bench/results/19-tls.md
bench/compose.sh
echo "wrote bench/results/19-tls.md"
