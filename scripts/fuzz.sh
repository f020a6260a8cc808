#!/usr/bin/env bash
# make fuzz: each cargo-fuzz target (fuzz/fuzz_targets) for FUZZ_SECONDS (60), starting
# from its committed seed corpus. New interesting inputs go to a scratch corpus under
# .run/fuzz (the committed one stays as it is); a crash stops the run, and its input is
# left in fuzz/artifacts/<target>/: copy it to fuzz/regressions/<target>/ with the fix so
# `make test` replays it for ever.
#   make fuzz                          all targets, 60 s each
#   FUZZ_SECONDS=600 make fuzz         longer
#   FUZZ_TARGETS="config" make fuzz    some of them
# Needs the nightly toolchain (libFuzzer's instrumentation); installs cargo-fuzz if missing.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

SECONDS_EACH="${FUZZ_SECONDS:-60}"
TARGETS="${FUZZ_TARGETS:-config event_batch api_key_header payment_json request_path}"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "make fuzz needs the nightly toolchain: rustup toolchain install nightly" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# Fuzz builds keep their own target folder (nightly, instrumented). Fat LTO leaves
# libFuzzer's coverage counters undefined at link time, so it is off for them.
export CARGO_TARGET_DIR="$HOME/.cache/sluice/fuzz-target"
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
cargo +nightly fuzz build
for target in $TARGETS; do
  scratch="$RUN/fuzz/$target"
  mkdir -p "$scratch"
  echo "== $target: ${SECONDS_EACH}s"
  cargo +nightly fuzz run "$target" "$scratch" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done|==|SUMMARY|ERROR|thread)" || true
  found=""
  for kind in crash timeout oom; do
    if compgen -G "fuzz/artifacts/$target/$kind-*" >/dev/null; then found="$kind"; fi
  done
  if [ -n "$found" ]; then
    echo "$target: a crash, timeout or OOM input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
echo "fuzzing clean: $TARGETS"
