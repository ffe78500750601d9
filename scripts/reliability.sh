#!/usr/bin/env bash
# The long reliability runs (docs/reliability.md): 500 SIGKILL crash trials,
# 100,000 property-test cases per parser, and coverage-guided fuzzing of the same
# parsers with cargo-fuzz (libFuzzer). The fast subset of each runs in scripts/test.sh.
#
#   scripts/reliability.sh [FUZZ_SECONDS_PER_TARGET]   (default 60)
#   scripts/reliability.sh crash                        only the 500 crash trials
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
scripts/install-peers.sh

echo "== crash consistency: 500 SIGKILL trials"
ROBOT_TOKEN_CRASH_TRIALS=500 cargo test --release --locked --features test-hooks --test crash -- --nocapture 2>&1 \
  | grep -E "crash trials|test result|panicked|trial [0-9]+:"
[ "$secs" = crash ] && exit 0

echo "== property tests: 100000 cases per parser"
PROPTEST_CASES=100000 cargo test --release --locked --test parsers 2>&1 | grep -E "^test |test result"

echo "== coverage-guided fuzzing: ${secs}s per target"
# Pinned, like the fuzz crate's own dependencies (fuzz/Cargo.lock).
fuzz_version=0.13.2
[ "$(cargo fuzz --version 2>/dev/null)" = "cargo-fuzz $fuzz_version" ] || cargo install --locked "cargo-fuzz@$fuzz_version"
for t in jwt credential token_response discovery device_authorization; do
  echo "-- fuzz target $t"
  # cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
  RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz "$t" -- -max_total_time="$secs" -rss_limit_mb=512 -max_len=65536 2>&1 \
    | grep -E "^#[0-9]+.*(DONE|pulse)|SUMMARY|ERROR|crash-" | tail -2
done
