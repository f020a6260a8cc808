#!/usr/bin/env bash
# Graceful upgrade of the stack's sluice (new binary or listener/thread changes):
# start the new process with --upgrade, then SIGQUIT the old one, which hands over its
# listening sockets and drains. No connection is refused at any point.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

alive sluice || { echo "sluice is not running (make up)" >&2; exit 1; }
old="$(cat "$RUN/sluice.pid")"
"$BIN/sluice" --config conf/sluice.yaml --test >/dev/null

nohup "$BIN/sluice" --config conf/sluice.yaml --upgrade >"$LOGS/sluice.log.new" 2>&1 </dev/null &
new=$!
sleep 0.5   # the new process is now waiting on the upgrade socket
if ! kill -0 "$new" 2>/dev/null; then
  echo "error: the new sluice exited before the hand-over; the old one keeps serving" >&2
  cat "$LOGS/sluice.log.new" >&2
  exit 1
fi
kill -QUIT "$old"
echo "$new" >"$RUN/sluice.pid"
mv "$LOGS/sluice.log.new" "$LOGS/sluice.log"
# The old process drains (in-flight requests finish), then exits; its admin port frees.
for _ in $(seq 1 600); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
wait_http sluice "http://127.0.0.1:9901/health" 60
kill -0 "$new" 2>/dev/null || { echo "error: the new sluice died; see $LOGS/sluice.log" >&2; exit 1; }
echo "sluice upgraded: pid $old -> $new"
