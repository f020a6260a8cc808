#!/usr/bin/env bash
# The side-by-side bench: GET /todos direct to one todo instance, through sluice and
# through nginx (same upstreams, keepalive), alternating A/B/C for several rounds in one
# run. Prints req/s, p50/p99, the proxies' CPU µs per request, and the ratios; writes
# bench/results/10-proxy.md (then bench/RESULTS.md). Uses the stack from `make up` (starts it if needed).
#   ROUNDS=5 DURATION=10 CONNECTIONS=32 bench/run.sh
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
NGINX_PORT="${NGINX_PORT:-9998}"
PATH_Q="/todos?limit=10"

SLUICE_BENCH_DEPS=1 "$ROOT/scripts/install-deps.sh"
if ! curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:9901/health; then
  "$ROOT/scripts/up.sh"
fi

# Ten items so the response is a realistic small JSON list.
have=$(curl -fsS "http://127.0.0.1:8081$PATH_Q" | jq length)
for i in $(seq "$((have + 1))" 10); do
  curl -fsS -o /dev/null -X POST http://127.0.0.1:8081/todo -H 'content-type: application/json' \
    -d "{\"title\":\"bench item $i\",\"status\":\"pending\",\"due_date\":\"2024-10-30\"}"
done

# nginx, reference only, in its own folder.
NG="$RUN/bench-nginx"
mkdir -p "$NG/tmp"
sed -e "s#@DIR@#$NG#g" -e "s#@PORT@#$NGINX_PORT#g" bench/nginx.conf.in >"$NG/nginx.conf"
nginx -c "$NG/nginx.conf" -p "$NG/" -t -q
nginx -c "$NG/nginx.conf" -p "$NG/"
trap 'nginx -c "$NG/nginx.conf" -p "$NG/" -s quit 2>/dev/null || true' EXIT
wait_http nginx "http://127.0.0.1:$NGINX_PORT$PATH_Q" 10

# cpu_ticks PID...: utime+stime of the processes (and nginx workers), in clock ticks.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}
nginx_pids() { pgrep -P "$(cat "$NG/nginx.pid")"; cat "$NG/nginx.pid"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

declare -A RPS P50 P99 CPU
to_ms() { # wrk latency like 512.00us / 1.20ms / 2.00s -> ms
  awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
    else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 } }'
}
run_one() { # name url pids...   (WRK_HEADER, when set, is sent with every request)
  local name="$1" url="$2"; shift 2
  local before after out
  local -a extra=()
  [ -n "${WRK_HEADER:-}" ] && extra=(-H "$WRK_HEADER")
  before=$(cpu_ticks "$@")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "${extra[@]}" "$url")
  after=$(cpu_ticks "$@")
  local rps p50 p99 reqs
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  local cpu="-"
  if [ "$#" -gt 0 ] && [ "$reqs" -gt 0 ]; then
    cpu=$(awk -v t="$((after - before))" -v u="$TICK_US" -v r="$reqs" 'BEGIN { printf "%.1f", t * u / r }')
  fi
  RPS[$name]+="$rps "; P50[$name]+="$p50 "; P99[$name]+="$p99 "; CPU[$name]+="$cpu "
  printf '  %-7s %10s req/s  p50 %7s ms  p99 %7s ms  cpu/req %6s us\n' "$name" "$rps" "$p50" "$p99" "$cpu"
}
last() { awk '{print $NF}' <<<"$1"; }
KAFKA_PAIRS=""
median() { tr ' ' '\n' <<<"$1" | awk '$1 != "" && $1 != "-"' | sort -g | awk '{a[NR]=$1} END { if (NR == 0) print "-"; else print a[int((NR + 1) / 2)] }'; }

# A key of tier "internal" (never denied at these rates) for the keyed, limited route.
KEY=$(curl -fsS -X POST http://127.0.0.1:9901/admin/keys -H "Authorization: Bearer $(cat "$RUN/admin-token")" \
  -H 'content-type: application/json' -d '{"name":"bench","tier":"internal"}' | jq -r .key)

# A second sluice with the stack's config minus `kafka:`, for the Kafka on/off row.
NK="$RUN/bench-nokafka"
mkdir -p "$NK"
awk '/^kafka:/ {skip = 1; next} skip && /^[^ #]/ {skip = 0} !skip' conf/sluice.yaml >"$NK/sluice.yaml"
# Its ports come from the environment, as INSTANCES=N make up sets them.
SLUICE_PORT=19997 SLUICE_ADMIN_PORT=19907 SLUICE_TLS_PORT=19443 \
  "$BIN/sluice" --config "$NK/sluice.yaml" --pid-file "$NK/pid" --upgrade-sock "$NK/upgrade.sock" >"$LOGS/bench-nokafka.log" 2>&1 &
NK_PID=$!
trap 'nginx -c "$NG/nginx.conf" -p "$NG/" -s quit 2>/dev/null || true; kill -INT $NK_PID 2>/dev/null || true' EXIT
wait_http bench-nokafka "http://127.0.0.1:19907/health" 30

echo "== warm-up"
wrk -t1 -c8 -d2s "http://127.0.0.1:9999$PATH_Q" >/dev/null
wrk -t1 -c8 -d2s "http://127.0.0.1:$NGINX_PORT$PATH_Q" >/dev/null
wrk -t1 -c8 -d2s -H "X-API-Key: $KEY" "http://127.0.0.1:9999/api$PATH_Q" >/dev/null
SLUICE_PID=$(cat "$RUN/sluice.pid")
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round/$ROUNDS (wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s)"
  run_one direct "http://127.0.0.1:8081$PATH_Q"
  # The on/off pair back to back, in alternating order: its ratio is less exposed to the
  # machine's drift and to whichever run comes first.
  if [ $((round % 2)) -eq 1 ]; then
    run_one sluice "http://127.0.0.1:9999$PATH_Q" "$SLUICE_PID"
    run_one no-kafka "http://127.0.0.1:19997$PATH_Q" "$NK_PID"
  else
    run_one no-kafka "http://127.0.0.1:19997$PATH_Q" "$NK_PID"
    run_one sluice "http://127.0.0.1:9999$PATH_Q" "$SLUICE_PID"
  fi
  KAFKA_PAIRS+="$(awk -v a="$(last "${RPS[sluice]}")" -v b="$(last "${RPS[no-kafka]}")" 'BEGIN { printf "%.2f", a / b }') "
  WRK_HEADER="X-API-Key: $KEY" run_one keyed "http://127.0.0.1:9999/api$PATH_Q" "$SLUICE_PID"
  # shellcheck disable=SC2046
  run_one nginx "http://127.0.0.1:$NGINX_PORT$PATH_Q" $(nginx_pids)
done

# The hedging scenario: peer 8202 delays 10% of its requests by 300 ms. Closed-loop wrk
# would push far more load through the hedged route (its connections are not stuck for
# 300 ms), so both routes get the same fixed arrival rate from k6 instead.
HEDGE_RATE="${HEDGE_RATE:-500}"
curl -fsS -o /dev/null -X PUT http://127.0.0.1:8202/admin/config -d '{"delay_ms":300,"delay_percent":10}'
k6_row() { # name url
  local out
  out=$(k6 run --quiet -e URL="$2" -e RATE="$HEDGE_RATE" -e DURATION="${DURATION}s" bench/k6/hedging.js 2>/dev/null | tail -n 1)
  local p50 p99 reqs
  p50=$(jq -r '.p50 * 100 | round / 100' <<<"$out"); p99=$(jq -r '.p99 * 100 | round / 100' <<<"$out"); reqs=$(jq -r .reqs <<<"$out")
  RPS[$1]+="$(awk -v r="$reqs" -v d="$DURATION" 'BEGIN { printf "%.0f", r / d }') "; P50[$1]+="$p50 "; P99[$1]+="$p99 "; CPU[$1]+="- "
  printf '  %-12s %6s req/s  p50 %7s ms  p99 %7s ms   (k6, %s req/s offered)\n' "$1" "$(awk -v r="$reqs" -v d="$DURATION" 'BEGIN { printf "%.0f", r / d }')" "$p50" "$p99" "$HEDGE_RATE"
}
for round in $(seq 1 "$ROUNDS"); do
  echo "== hedging round $round/$ROUNDS (peer 8202 delays 10% by 300 ms)"
  k6_row plain-slow "http://127.0.0.1:9999/demo/plain/x"
  k6_row hedged-slow "http://127.0.0.1:9999/demo/hedged/x"
done
curl -fsS -o /dev/null -X PUT http://127.0.0.1:8202/admin/config -d '{"delay_ms":0,"delay_percent":0}'

declare -A M
for n in direct sluice no-kafka keyed nginx plain-slow hedged-slow; do
  M[$n.rps]=$(median "${RPS[$n]}"); M[$n.p50]=$(median "${P50[$n]}")
  M[$n.p99]=$(median "${P99[$n]}"); M[$n.cpu]=$(median "${CPU[$n]}")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
SN=$(ratio "${M[sluice.rps]}" "${M[nginx.rps]}")
SD=$(ratio "${M[sluice.rps]}" "${M[direct.rps]}")
P99D=$(diff_ms "${M[sluice.p99]}" "${M[direct.p99]}")
KS=$(ratio "${M[keyed.rps]}" "${M[sluice.rps]}")
KP99=$(diff_ms "${M[keyed.p99]}" "${M[sluice.p99]}")

TABLE="| target | req/s | p50 ms | p99 ms | proxy CPU µs/req |
|---|---|---|---|---|
| direct (one todo instance) | ${M[direct.rps]} | ${M[direct.p50]} | ${M[direct.p99]} | – |
| sluice (two instances; Kafka events on) | ${M[sluice.rps]} | ${M[sluice.p50]} | ${M[sluice.p99]} | ${M[sluice.cpu]} |
| sluice without Kafka events (same config minus the kafka section) | ${M[no-kafka.rps]} | ${M[no-kafka.p50]} | ${M[no-kafka.p99]} | ${M[no-kafka.cpu]} |
| sluice, API key + Redis rate limit (/api/) | ${M[keyed.rps]} | ${M[keyed.p50]} | ${M[keyed.p99]} | ${M[keyed.cpu]} |
| nginx (two instances) | ${M[nginx.rps]} | ${M[nginx.p50]} | ${M[nginx.p99]} | ${M[nginx.cpu]} |

| hedging off, one peer delays 10% by 300 ms (/demo/plain; k6 at ${HEDGE_RATE} req/s) | ${M[plain-slow.rps]} | ${M[plain-slow.p50]} | ${M[plain-slow.p99]} | ${M[plain-slow.cpu]} |
| hedging on, p95 delay (floor 10 ms), budget 10% (/demo/hedged; same rate) | ${M[hedged-slow.rps]} | ${M[hedged-slow.p50]} | ${M[hedged-slow.p99]} | ${M[hedged-slow.cpu]} |

sluice/nginx throughput: **$SN** · sluice/direct throughput: **$SD** · sluice p99 − direct p99: **$P99D ms**
sluice without Kafka / nginx: **$(ratio "${M[no-kafka.rps]}" "${M[nginx.rps]}")** · Kafka on/off throughput: **$(ratio "${M[sluice.rps]}" "${M[no-kafka.rps]}")** (back-to-back pairs: ${KAFKA_PAIRS% }) · keyed/plain sluice throughput: **$KS** · keyed p99 − plain p99: **$KP99 ms**"
echo
echo "$TABLE"

MACHINE="$(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB"
mkdir -p bench/results
{
  echo "## Proxy overhead: GET $PATH_Q — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS make bench\`"
  echo "(each measurement: \`wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency URL\`, targets alternating;"
  echo "medians of $ROUNDS rounds). Machine: $MACHINE."
  echo
  echo "$TABLE"
  if [ -f bench/NOTES.md ]; then echo; cat bench/NOTES.md; fi
} >bench/results/10-proxy.md
# TLS and HTTP/2 rows against nginx terminating TLS the same way (its own fixture).
ROUNDS="$ROUNDS" DURATION="$DURATION" "$ROOT/bench/tls.sh" "$BIN/sluice"
bench/compose.sh
echo
echo "wrote bench/RESULTS.md"
