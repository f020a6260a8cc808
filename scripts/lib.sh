#!/usr/bin/env bash
# Shared helpers for the stack scripts. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"
LOGS="$RUN/logs"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
BIN="$CARGO_TARGET_DIR/release"
mkdir -p "$RUN" "$LOGS"
# mimalloc without transparent huge pages, from its very first arena: ~12 MiB less RSS
# idle and under load, no CPU difference measured (bench/NOTES.md). sluice turns them off
# itself at start too; from the environment the allocator's first pages are covered as
# well. MIMALLOC_ALLOW_THP=1 keeps them.
export MIMALLOC_ALLOW_THP="${MIMALLOC_ALLOW_THP:-0}"

PG_PORT="${PG_PORT:-15432}"
REDIS_PORT="${REDIS_PORT:-16379}"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"

# The admin token: plaintext only in .run/admin-token (mode 600); sluice sees its SHA-256
# through the environment (conf/sluice.yaml reads ${SLUICE_ADMIN_TOKEN_SHA256}).
ADMIN_TOKEN_FILE="$RUN/admin-token"
ensure_admin_token() {
  if [ ! -s "$ADMIN_TOKEN_FILE" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ADMIN_TOKEN_FILE")
    echo "  created the admin token in $ADMIN_TOKEN_FILE"
  fi
  chmod 600 "$ADMIN_TOKEN_FILE"
  SLUICE_ADMIN_TOKEN_SHA256="$(tr -d '\n' <"$ADMIN_TOKEN_FILE" | sha256sum | cut -d' ' -f1)"
  export SLUICE_ADMIN_TOKEN_SHA256
}
if [ -s "$ADMIN_TOKEN_FILE" ]; then ensure_admin_token; fi
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
KAFKA_PORT="${KAFKA_PORT:-19092}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}"
TANSU="$(command -v tansu || echo "$HOME/.cargo/bin/tansu")"

# wait_port NAME PORT [SECONDS]: poll until something accepts TCP connections on PORT.
wait_port() {
  local name="$1" port="$2" wait="${3:-30}"
  for _ in $(seq 1 $((wait * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: $name did not open port $port within ${wait}s; see $LOGS/$name.log" >&2
  return 1
}

# alive NAME: the process recorded in .run/NAME.pid is running.
alive() {
  local pidfile="$RUN/$1.pid"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# start_bg NAME CMD...: run CMD in the background, PID to .run/NAME.pid, output to
# .run/logs/NAME.log. Does nothing when NAME is already running.
start_bg() {
  local name="$1"; shift
  if alive "$name"; then
    echo "  $name already running (pid $(cat "$RUN/$name.pid"))"
    return 0
  fi
  nohup "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  echo "  $name started (pid $!)"
}

# stop_pid NAME [SECONDS]: SIGTERM the recorded PID, SIGKILL after SECONDS (default 15).
# A PID that leads its own process group (started with setsid: a build and its compilers)
# is signalled with its whole group.
stop_pid() {
  local name="$1" wait="${2:-15}" pidfile="$RUN/$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid target; pid="$(cat "$pidfile")"
  target="$pid"
  [ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ] && target="-$pid"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "$target" 2>/dev/null || true
    for _ in $(seq 1 $((wait * 10))); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "  $name did not stop in ${wait}s; killing"
      kill -KILL -- "$target" 2>/dev/null || true
    fi
    echo "  $name stopped"
  fi
  rm -f "$pidfile"
}

# wait_http NAME URL [SECONDS [CURL_ARGS...]]: poll URL until it answers 2xx.
wait_http() {
  local name="$1" url="$2" wait="${3:-30}"
  shift $(($# < 3 ? $# : 3))
  for _ in $(seq 1 $((wait * 10))); do
    if curl -fsS -o /dev/null --max-time 1 "$@" "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "error: $name did not answer $url within ${wait}s; see $LOGS/$name.log" >&2
  return 1
}

# as_postgres CMD...: PostgreSQL's tools refuse root.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
