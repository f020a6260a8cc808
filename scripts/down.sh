#!/usr/bin/env bash
# Stops exactly what `make up` started (PIDs under .run/), newest first.
source "$(dirname "$0")/lib.sh"

# First: tansu's first-run build (scripts/kafka-up.sh), so that it cannot start the broker
# and analytics while the rest stops.
stop_pid kafka-up 10
stop_pid prometheus 10
stop_pid postgres-exporter 5
stop_pid sluice 15
for pidfile in "$RUN"/sluice-[0-9]*.pid; do
  [ -f "$pidfile" ] && stop_pid "$(basename "$pidfile" .pid)" 15
done
for port in 8081 8082; do stop_pid "todo-$port" 10; done
for port in 8201 8202; do stop_pid "testupstream-$port" 5; done
for port in 8091 8092; do stop_pid "payments-$port" 10; done
stop_pid processor-default 5
stop_pid processor-fallback 5
stop_pid analytics 10
stop_pid tansu 10
if [ -f "$RUN/redis.pid" ]; then stop_pid redis 10; fi
if [ -f "$RUN/pg/postmaster.pid" ]; then
  as_postgres "$PG_BIN/pg_ctl" -D "$RUN/pg" -m fast -w stop >/dev/null && echo "  postgres stopped"
fi
echo "stack stopped"
