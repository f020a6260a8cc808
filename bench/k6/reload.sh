#!/usr/bin/env bash
# k6 load through a dedicated sluice (19999/19901, in front of the stack's todo
# instances) while this script rewrites its config and sends SIGHUP every second:
# alternately adding a route and changing the todo group (so it is rebuilt and
# health-checked). Writes bench/results/20-reload.md and regenerates bench/RESULTS.md.
source "$(dirname "$0")/../../scripts/lib.sh"
cd "$ROOT"

PHASE_S="${PHASE_S:-15}"
VUS="${VUS:-20}"
SLUICE_BENCH_DEPS=1 "$ROOT/scripts/install-deps.sh"
curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:8081/health || "$ROOT/scripts/up.sh"
cargo build --release --locked --bin sluice

D="$RUN/reload-bench"
mkdir -p "$D"
write_config() { # $1 = a | b
  local extra="" retries=2
  if [ "$1" = b ]; then
    extra='  - { name: extra, path_prefix: /extra, upstream: todo }'
    retries=1
  fi
  cat >"$D/sluice.yaml.tmp" <<YAML
server: { listen: "127.0.0.1:19999", admin_listen: "127.0.0.1:19901", threads: 2, grace_period_s: 5 }
upstreams:
  todo:
    peers: ["127.0.0.1:8081", "127.0.0.1:8082"]
    health_check: { path: /health, interval_ms: 1000, timeout_ms: 300, healthy_after: 2, unhealthy_after: 2 }
    retries: $retries
routes:
  - { name: todo, path_prefix: /todo, upstream: todo }
$extra
YAML
  mv "$D/sluice.yaml.tmp" "$D/sluice.yaml"   # atomic: sluice never reads half a file
}
write_config a
"$BIN/sluice" --config "$D/sluice.yaml" --pid-file "$D/pid" --upgrade-sock "$D/upgrade.sock" >"$LOGS/reload-bench.log" 2>&1 &
SPID=$!
trap 'kill -INT $SPID 2>/dev/null || true' EXIT
wait_http reload-bench "http://127.0.0.1:19901/health" 30

# The reloader: quiet for the first phase, then one SIGHUP a second.
(
  sleep "$PHASE_S"
  for i in $(seq 1 "$PHASE_S"); do
    if [ $((i % 2)) = 1 ]; then write_config b; else write_config a; fi
    kill -HUP "$SPID"
    sleep 1
  done
) &
RELOADER=$!

k6 run --quiet -e BASE_URL=http://127.0.0.1:19999 -e PHASE_S="$PHASE_S" -e VUS="$VUS" \
  -e SUMMARY_FILE="$D/summary.json" bench/k6/reload.js >"$D/k6.log" 2>&1 || true
wait "$RELOADER" || true
ok=$(curl -fsS http://127.0.0.1:19901/metrics | awk '/^sluice_config_reloads_total\{result="ok"\}/ {print $2}')
err=$(curl -fsS http://127.0.0.1:19901/metrics | awk '/^sluice_config_reloads_total\{result="error"\}/ {print $2}')
S="$D/summary.json"
[ -s "$S" ] || { echo "k6 produced no summary; see $D/k6.log" >&2; exit 1; }
row() { jq -r --arg p "$1" '"| \($p) | \(.[$p].p99_ms * 100 | round / 100) | \(.[$p].failed_rate) |"' "$S"; }
{
  echo "## Reload under load (k6) — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`PHASE_S=$PHASE_S VUS=$VUS make k6-reload\` — $VUS VUs GET /todos?limit=10 through"
  echo "sluice for ${PHASE_S}s without reloads, then ${PHASE_S}s with a config rewrite + SIGHUP every"
  echo "second (route added/removed, upstream group rebuilt). Reloads applied: ${ok:-0} ok, ${err:-0} error."
  echo
  echo "| phase | p99 ms | failed rate |"
  echo "|---|---|---|"
  row steady
  row reloading
  echo
  echo "Requests: $(jq .requests "$S"), failed: $(jq .failed "$S")."
} >bench/results/20-reload.md
cat bench/results/20-reload.md
bench/compose.sh
