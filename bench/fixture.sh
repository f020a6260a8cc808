#!/usr/bin/env bash
# Shared by the bench scripts (sourced, after scripts/lib.sh): the measuring helpers below,
# launch_sluice (at the end), and bench_fixture: a temp folder, nginx answering a small
# JSON body on the ports in $UPSTREAM_PORTS, one throwaway Redis on $REDIS_P, an admin
# token ($TOKEN, $TOKEN_SHA), and a cleanup on exit that stops exactly these and every
# PID the caller adds to PIDS.
#   [NGINX_WORKER_CONNECTIONS=4096] bench_fixture NAME PORT_COUNT

# Measuring helpers shared by the bench scripts.
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# cpu_ticks PID...: utime+stime of those processes, in clock ticks (missing ones count 0).
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}
# to_ms LATENCY: wrk's 512.00us / 1.20ms / 2.00s in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 } }'
}
# median "V1 V2 ...": the median, "-" entries ignored ("-" when none is left).
# With an even count it is the mean of the two middle values: the lower one alone read
# 0.946 for a binary against a copy of itself over 12 rounds (bench/ab.sh), 0.976 this way.
median() { tr ' ' '\n' <<<"$1" | awk '$1 != "" && $1 != "-"' | sort -g | awk '{a[NR]=$1} END { if (NR == 0) print "-"; else if (NR % 2 == 1 || a[NR / 2] == a[NR / 2 + 1]) print a[int((NR + 1) / 2)]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_fixture() {
  local name="$1" count="$2" port listens=""
  DIR="$(mktemp -d "/tmp/sluice-$name.XXXXXX")"
  PIDS=()
  trap bench_cleanup EXIT
  UPSTREAM_PORTS=()
  for _ in $(seq 1 "$count"); do
    port=$(free_port)
    UPSTREAM_PORTS+=("$port")
    listens+="listen 127.0.0.1:$port; "
  done
  mkdir -p "$DIR/nginx/tmp"
  cat >"$DIR/nginx/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile ${NGINX_WORKER_CONNECTIONS:-4096};
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log warn;
events { worker_connections ${NGINX_WORKER_CONNECTIONS:-4096}; }
http {
  access_log off;
  client_body_temp_path $DIR/nginx/tmp/body; proxy_temp_path $DIR/nginx/tmp/proxy;
  fastcgi_temp_path $DIR/nginx/tmp/fastcgi; uwsgi_temp_path $DIR/nginx/tmp/uwsgi;
  scgi_temp_path $DIR/nginx/tmp/scgi;
  server { $listens keepalive_requests 1000000;
    location / { default_type application/json; return 200 '{"ok":true}'; } }
}
CONF
  nginx -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx/"
  REDIS_P=$(free_port)
  redis-server --daemonize yes --port "$REDIS_P" --bind 127.0.0.1 --dir "$DIR" --save '' \
    --appendonly no --pidfile "$DIR/redis.pid" >/dev/null
  wait_port redis "$REDIS_P" 10
  TOKEN="bench-admin-token"
  TOKEN_SHA=$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)
}

bench_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  [ -f "$DIR/nginx/nginx.pid" ] && nginx -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx/" -s quit 2>/dev/null || true
  [ -n "${REDIS_P:-}" ] && redis-cli -p "$REDIS_P" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$DIR"
}

# start_nginx_proxy PORT WORKER_CONNECTIONS UPSTREAMS LOCATIONS: nginx as a proxy in
# $DIR/ngx (2 workers, one per core; keepalive to the upstreams, which UPSTREAMS declares
# as nginx `upstream` blocks and LOCATIONS routes to); ngx_stop stops it.
start_nginx_proxy() {
  mkdir -p "$DIR/ngx/tmp"
  cat >"$DIR/ngx/nginx.conf" <<CONF
worker_processes 2;
worker_rlimit_nofile $2;
pid $DIR/ngx/nginx.pid;
error_log $DIR/ngx/error.log warn;
events { worker_connections $2; }
http {
  access_log off;
  client_body_temp_path $DIR/ngx/tmp/body; proxy_temp_path $DIR/ngx/tmp/proxy;
  fastcgi_temp_path $DIR/ngx/tmp/fastcgi; uwsgi_temp_path $DIR/ngx/tmp/uwsgi;
  scgi_temp_path $DIR/ngx/tmp/scgi;
  $3
  server {
    listen 127.0.0.1:$1;
    keepalive_requests 1000000;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    $4
  }
}
CONF
  nginx -c "$DIR/ngx/nginx.conf" -p "$DIR/ngx/"
}
ngx_stop() { [ -f "$DIR/ngx/nginx.pid" ] && nginx -c "$DIR/ngx/nginx.conf" -p "$DIR/ngx/" -s quit 2>/dev/null || true; }

# create_key ADMIN_PORT: an API key of tier "internal" through that admin listener.
create_key() {
  local admin="$1" key=""
  for _ in $(seq 1 100); do
    key=$(curl -fsS -X POST "http://127.0.0.1:$admin/admin/keys" -H "Authorization: Bearer $TOKEN" \
      -H 'content-type: application/json' -d '{"name":"bench","tier":"internal"}' 2>/dev/null | jq -r .key) \
      && [ -n "$key" ] && [ "$key" != null ] && break
    sleep 0.3
  done
  [ -n "$key" ] && [ "$key" != null ] || { echo "could not create a key on port $admin" >&2; return 1; }
  echo "$key"
}

# launch_sluice NAME BINARY PORT ADMIN_PORT: runs BINARY on $DIR/NAME.yaml (the caller
# wrote it for those ports), adds it to PIDS, sets PID_<NAME>, PORT_<NAME> and
# ADMIN_<NAME>, and waits until its admin /health answers.
launch_sluice() {
  local name="$1" bin="$2" port="$3" admin="$4"
  "$bin" --config "$DIR/$name.yaml" --pid-file "$DIR/$name.pid" --upgrade-sock "$DIR/$name.sock" \
    >"$DIR/$name.log" 2>&1 &
  PIDS+=($!)
  printf -v "PID_$name" '%s' "$!"
  printf -v "PORT_$name" '%s' "$port"
  printf -v "ADMIN_$name" '%s' "$admin"
  wait_http "sluice-$name" "http://127.0.0.1:$admin/health" 30
}
