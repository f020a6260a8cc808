#!/usr/bin/env bash
# The event pipeline's part of `make up`: the Kafka-compatible broker (tansu, when the stack
# runs its own) and analytics, started and waited for. DATABASE_URL must be set.
#
# On a fresh machine tansu is not installed yet, and its one-time `cargo install` (~9 min on
# two cores) is the largest part of a first `make up`. scripts/up.sh then runs this script in
# the background, after the request path is up: it builds tansu at the lowest CPU priority
# (nice 19) and starts the broker and analytics when the build is done. Until then sluice
# holds its request events in its queue and spill file (conf/sluice.yaml `kafka:`) and
# delivers them once the broker answers; none are lost.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
: "${DATABASE_URL:?kafka-up: DATABASE_URL must be set}"

own_broker=0
[ "$KAFKA_BROKERS" = "127.0.0.1:$KAFKA_PORT" ] && own_broker=1

if [ "$own_broker" = 1 ] && [ ! -x "$TANSU" ]; then
  echo "kafka-up: building tansu first ($(date -u +%H:%M:%S))"
  nice -n 19 "$ROOT/scripts/install-tansu.sh"
  TANSU="$(command -v tansu || echo "$HOME/.cargo/bin/tansu")"
  echo "kafka-up: tansu built ($(date -u +%H:%M:%S))"
fi

# tansu with SQLite storage under .run/tansu (records and consumer offsets survive
# restarts). It and analytics run at a lower CPU priority (nice 10): they are off the
# request path, and on a small box their bursts otherwise show up in request tail latency.
# KAFKA_BROKERS=host:port uses an existing cluster.
if [ "$own_broker" = 1 ]; then
  mkdir -p "$RUN/tansu"
  start_bg tansu nice -n 10 bash -c "cd '$RUN/tansu' && exec '$TANSU' broker \
    --listener-url tcp://127.0.0.1:$KAFKA_PORT --advertised-listener-url tcp://127.0.0.1:$KAFKA_PORT \
    --storage-engine sqlite://tansu.db"
  wait_port tansu "$KAFKA_PORT"
fi

# analytics creates the events topic when it is missing. A sluice already running (the
# first run's late start) meanwhile holds its events: librdkafka waits up to 30 s for an
# unknown topic to appear, and it appears within a second or two.
DATABASE_URL="$DATABASE_URL" start_bg analytics nice -n 10 "$BIN/analytics" --port 8100 --brokers "$KAFKA_BROKERS"
wait_http analytics "http://127.0.0.1:8100/health" 60
echo "kafka-up: broker and analytics are up"
