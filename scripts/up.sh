#!/usr/bin/env bash
# Starts the whole stack: PostgreSQL, Redis, tansu, todo, payments + processor
# simulators, the demo upstreams, analytics and sluice.
# Installs what is missing first. Running it twice starts nothing twice.
# REDIS_URL / DATABASE_URL point the stack at existing servers instead of starting ours.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

echo "== installing what is missing"
# tansu (the local Kafka broker) is not installed here: scripts/kafka-up.sh builds it when
# it is missing, after the request path is up (below).
SLUICE_KAFKA_DEPS=0 "$ROOT/scripts/install-deps.sh"
echo "== building (release)"
"$ROOT/scripts/build-release.sh"

echo "== starting"
# PostgreSQL: data under .run/pg, owned by the postgres user (initdb refuses root).
if [ -z "${DATABASE_URL:-}" ]; then
  PGDATA="$RUN/pg"
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
    as_postgres "$PG_BIN/initdb" -D "$PGDATA" -A trust -U postgres -E UTF8 --locale=C >"$LOGS/initdb.log"
  fi
  if as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    echo "  postgres already running"
  else
    [ "$(id -u)" = 0 ] && touch "$LOGS/postgres.log" && chown postgres "$LOGS/postgres.log"
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$LOGS/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -k $PGDATA -c listen_addresses=127.0.0.1" start >/dev/null
    echo "  postgres started on $PG_PORT"
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
fi

# Redis: append-only file under .run/redis, so keys survive a restart.
if [ "$REDIS_URL" = "redis://127.0.0.1:$REDIS_PORT" ]; then
  mkdir -p "$RUN/redis"
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    echo "  redis already running"
  else
    redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN/redis" \
      --appendonly yes --save '' --pidfile "$RUN/redis.pid" --logfile "$LOGS/redis.log"
    echo "  redis started on $REDIS_PORT"
  fi
fi
ensure_admin_token

# The event pipeline: the broker (tansu, unless KAFKA_BROKERS names a cluster) and
# analytics. When tansu still has to be built (a fresh machine: ~9 min, the larger part of
# a first `make up`) that happens in the background, at nice 19, and the broker and
# analytics start when it is done; sluice meanwhile keeps its events (queue and spill file)
# and delivers them then. A second `make up` during that build waits for it.
export DATABASE_URL
KAFKA_LATE=0
if alive kafka-up; then
  echo "  waiting for tansu's build to finish and the broker to start (log: $LOGS/kafka-up.log)"
  while alive kafka-up; do sleep 2; done
fi
if [ "$KAFKA_BROKERS" = "127.0.0.1:$KAFKA_PORT" ] && [ ! -x "$TANSU" ]; then
  KAFKA_LATE=1
  # Its own session, so that `make down` stops the build's cargo and rustc with it.
  start_bg kafka-up setsid "$ROOT/scripts/kafka-up.sh"
else
  "$ROOT/scripts/kafka-up.sh"
fi

for port in 8081 8082; do
  DATABASE_URL="$DATABASE_URL" start_bg "todo-$port" "$BIN/todo" --port "$port"
done
for port in 8081 8082; do wait_http "todo-$port" "http://127.0.0.1:$port/health"; done
for port in 8201 8202; do start_bg "testupstream-$port" "$BIN/testupstream" --port "$port"; done
for port in 8201 8202; do wait_http "testupstream-$port" "http://127.0.0.1:$port/health"; done

# Payments: two processor simulators (Rinha's default and fallback), then two payments
# instances sharing the Redis queue and the PostgreSQL ledger.
start_bg processor-default "$BIN/processor" --port 8001 --fee 0.05
start_bg processor-fallback "$BIN/processor" --port 8002 --fee 0.15
wait_port processor-default 8001
wait_port processor-fallback 8002
for port in 8091 8092; do
  DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" start_bg "payments-$port" "$BIN/payments" --port "$port" \
    --default-url http://127.0.0.1:8001 --fallback-url http://127.0.0.1:8002
done
for port in 8091 8092; do wait_http "payments-$port" "http://127.0.0.1:$port/health"; done

# HTTPS on 9443: a local CA and a certificate for localhost / 127.0.0.1, made once
# (clients trust .run/tls/ca.pem; see README "HTTPS" for real certificates).
if [ ! -f "$RUN/tls/server.pem" ] || [ ! -f "$RUN/tls/server.key" ]; then
  "$ROOT/scripts/tls-certs.sh" "$RUN/tls" server 1 825 DNS:localhost,IP:127.0.0.1
  echo "  TLS certificate made in .run/tls (CA: .run/tls/ca.pem)"
fi
"$BIN/sluice" --config conf/sluice.yaml --test >/dev/null
# INSTANCES=N: N sluice processes on one machine sharing Redis, Kafka and PostgreSQL, the
# multi-instance shape in miniature. Instance i (from 1) listens on 9999+i-1, its admin
# on 9901+i-1, HTTPS on 9443+i-1; each has its own spill folder.
INSTANCES="${INSTANCES:-1}"
SLUICE_ADMIN_TARGETS=""
for i in $(seq 1 "$INSTANCES"); do
  name=sluice spill="$RUN/kafka-spill"
  [ "$i" -gt 1 ] && name="sluice-$i" spill="$RUN/kafka-spill-$i"
  port=$((9999 + i - 1)) admin=$((9901 + i - 1)) tls=$((9443 + i - 1))
  start_bg "$name" env SLUICE_PORT="$port" SLUICE_ADMIN_PORT="$admin" SLUICE_TLS_PORT="$tls" \
    SLUICE_INSTANCES="$INSTANCES" SLUICE_SPILL_DIR="$spill" "$BIN/sluice" --config conf/sluice.yaml
  SLUICE_ADMIN_TARGETS+="${SLUICE_ADMIN_TARGETS:+,}127.0.0.1:$admin"
done
for i in $(seq 1 "$INSTANCES"); do
  port=$((9999 + i - 1)) admin=$((9901 + i - 1)) tls=$((9443 + i - 1))
  wait_http sluice "http://127.0.0.1:$admin/health"
  wait_http sluice "http://127.0.0.1:$port/todos?limit=1"
  wait_http sluice "http://127.0.0.1:$port/payments-summary"
  wait_http sluice "https://localhost:$tls/todos?limit=1" 30 --cacert "$RUN/tls/ca.pem"
done
export SLUICE_ADMIN_TARGETS

# PostgreSQL's own figures for the Database Performance dashboard (Debian's exporter).
DATA_SOURCE_NAME="$DATABASE_URL" start_bg postgres-exporter prometheus-postgres-exporter \
  --web.listen-address=127.0.0.1:9187
# Prometheus: the rules and alerts of docker/prometheus, scraping this machine's stack.
"$ROOT/scripts/prometheus.sh" "$RUN/prometheus"
start_bg prometheus prometheus --config.file="$RUN/prometheus/prometheus.yml" \
  --storage.tsdb.path="$RUN/prometheus/data" --web.listen-address=127.0.0.1:9090 \
  --storage.tsdb.retention.time=2d
wait_http prometheus "http://127.0.0.1:9090/-/ready" 30

cat <<MSG

sluice is up.
  proxy    http://127.0.0.1:9999      (config: conf/sluice.yaml; HTTP/1.1 and h2c)$([ "$INSTANCES" -gt 1 ] && echo "
  instances $INSTANCES: proxy 9999..$((9999 + INSTANCES - 1)), admin 9901..$((9901 + INSTANCES - 1)), https 9443..$((9443 + INSTANCES - 1))")
  https    https://localhost:9443     (TLS 1.2/1.3, h2; trust .run/tls/ca.pem: curl --cacert .run/tls/ca.pem)
  admin    http://127.0.0.1:9901      (/health, /metrics; /admin/* with the token in .run/admin-token)
  dashboard http://127.0.0.1:9901/ui/ (sign in with the token in .run/admin-token)
  todo     http://127.0.0.1:8081  http://127.0.0.1:8082
  demo     http://127.0.0.1:8201  http://127.0.0.1:8202   (controllable test upstreams; /demo/hedged, /demo/plain)
  payments http://127.0.0.1:8091  http://127.0.0.1:8092   (behind /payments, /payments-summary, /purge-payments)
  processors http://127.0.0.1:8001 (default, fee 5%)  http://127.0.0.1:8002 (fallback, fee 15%)  admin token 123
  postgres $DATABASE_URL
  redis    $REDIS_URL
  kafka    $KAFKA_BROKERS   (tansu; topic sluice.requests)$([ "$KAFKA_LATE" = 1 ] && echo "
           tansu is being built (first run only: 9 min and more at low priority; log: $LOGS/kafka-up.log);
           the broker and analytics start when it is done, and sluice delivers the events it
           kept meanwhile. \`make up\` again waits for it.")
  analytics http://127.0.0.1:8100   (/analytics/summary, /analytics/routes, /analytics/keys/{id}, /analytics/timeseries)
  prometheus http://127.0.0.1:9090   (targets: /targets, alerts: /alerts; rules from docker/prometheus)
  logs     $LOGS/

Try:
  curl -s -X POST localhost:9999/todo -H 'content-type: application/json' \\
       -d '{"title":"Finish the report","status":"pending","due_date":"2024-10-30"}'
  curl -si localhost:9999/todos

Issue an API key (the keyed API is /api/, e.g. /api/todos):
  TOKEN=\$(cat .run/admin-token)
  curl -s -X POST localhost:9901/admin/keys -H "Authorization: Bearer \$TOKEN" \\
       -H 'content-type: application/json' -d '{"name":"me","tier":"free"}'
  curl -si localhost:9999/api/todos -H "X-API-Key: <key from the answer>"
Stop everything with: make down
MSG
