#!/usr/bin/env bash
# Mutation testing of the persistence and renewal path with cargo-mutants (pinned,
# installed here): the atomic write and locks, the credential rewrite, the source's
# redeem and in-flight marker, the renewal decision and ordering, the token-expiry
# decision. Each group runs only the test targets that exercise it, so that one run
# fits in about an hour on a 2-core machine. Results and the survivors' explanations:
# docs/reliability.md ("Mutation testing").
#
#   scripts/mutants.sh              every group
#   scripts/mutants.sh store token  only these groups
#   scripts/mutants.sh --list       the mutants each group would test, nothing run
#
# Output: target/mutants/<group>/mutants.out/{caught,missed,unviable,timeout}.txt
set -euo pipefail
cd "$(dirname "$0")/.."

version=27.1.0
if [ "$(cargo mutants --version 2>/dev/null)" != "cargo-mutants $version" ]; then
  echo "mutants.sh: installing cargo-mutants $version" >&2
  cargo install --locked --quiet "cargo-mutants@$version"
fi
scripts/install-peers.sh

list=
if [ "${1:-}" = --list ]; then
  list=--list
  shift
fi

# group ; files (space-separated) ; functions (a regex over mutant names) ; test targets
groups=(
  "store;src/store/atomic.rs src/store/lock.rs;\\b(atomic_write|prepare|Prepared::(reserve|commit|commit_new)|Drop for Prepared|sync_dir|create_temp|lock|lock_path|Lock::set_record|read_record)\\b;--lib --test get --test crash --test concurrency --test credential_safety --test outputs"
  "credential;src/source/credential/mod.rs;\\b(render_with_refresh_token|prepare_rewrite|store_refresh_token)\\b;--lib --test get --test crash --test credential_safety"
  "source;src/source/mod.rs src/source/interface.rs;\\b(redeem|earlier_send|set_marker|lock_credential|Context::lock)\\b;--test get --test crash --test failures --test credential_safety"
  "renew;src/commands/renew/mod.rs;\\b(fresh|survey|settled|run|lock_in_order)\\b;--lib --test get --test crash --test concurrency --test outputs --test exec --test vault"
  "token;src/token.rs;\\b(expiry|exp_of|numeric_date|Jwt::expiry)\\b;--lib --test get --test inspect"
)
# Open flags (`O_NOFOLLOW | O_CLOEXEC` as `&` or `^`) are left out: their effects
# (symlinks, descriptors leaking into hooks) are tested elsewhere, not on this path.
exclude='replace \| with (&|\^)'

# As root (as CI), the tests marked "needs root" run too, as in scripts/test.sh.
ignored=()
[ "$(id -u)" = 0 ] && ignored=(--include-ignored)

# Run one group: cargo-mutants on its file and functions, with its test targets.
run_group() {
  local name=$1 file=$2 re=$3 tests=$4
  echo "== mutants: $name ($file; tests: $tests)"
  mkdir -p "target/mutants/$name"
  local test_args=() file_args=()
  for f in $file; do file_args+=(--file "$f"); done
  # --cargo-arg, not --cargo-test-arg: the build phase (`cargo test --no-run`) must
  # build only these targets too, not all two dozen test binaries per mutant.
  for a in $tests; do test_args+=(--cargo-arg "$a"); done
  # The unmutated tree is tested first (baseline): a failing or flaky test would
  # otherwise "catch" every mutant. Build and test timeouts well above this
  # machine's times under load: a mutant that makes a run hang (a lock never taken,
  # a loop) is a timeout, not a pass.
  cargo mutants $list --no-shuffle --features test-hooks \
    "${file_args[@]}" --re "$re" --exclude-re "$exclude" \
    --timeout 240 --build-timeout 600 \
    --output "target/mutants/$name" \
    "${test_args[@]}" -- -- "${ignored[@]}" || true
  if [ -z "$list" ]; then
    for kind in caught missed unviable timeout; do
      f="target/mutants/$name/mutants.out/$kind.txt"
      printf '   %-9s %s\n' "$kind" "$( [ -f "$f" ] && wc -l <"$f" || echo 0)"
    done
  fi
}

# Two lanes side by side, one mutant at a time each: the tests spend much of their
# time waiting (on the issuer, locks, timeouts), so two lanes use two cores better
# than one. Each lane has its own build cache (dependencies built once per lane,
# reused by its groups); two cargo-mutants jobs must never share one.
started=$(date +%s)
lane() {
  export CARGO_TARGET_DIR="$PWD/target/mutants-build-$1"
  shift
  for g in "${groups[@]}"; do
    IFS=';' read -r name file re tests <<<"$g"
    [[ " $* " == *" $name "* ]] || continue
    if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" $name "* ]]; then
      continue
    fi
    run_group "$name" "$file" "$re" "$tests"
  done
}
only=("$@")
if [ -n "$list" ]; then
  lane a store credential source renew token
else
  mkdir -p target/mutants
  lane a store renew >target/mutants/lane-a.log 2>&1 &
  a=$!
  lane b credential source token >target/mutants/lane-b.log 2>&1 &
  b=$!
  wait $a $b || true
  cat target/mutants/lane-a.log target/mutants/lane-b.log | grep -E "^(==|   [a-z])"
fi
if [ -z "$list" ]; then
  echo "== total ($(( ($(date +%s) - started) / 60 )) min)"
  for kind in caught missed unviable timeout; do
    printf '   %-9s %s\n' "$kind" "$(cat target/mutants/*/mutants.out/$kind.txt 2>/dev/null | wc -l)"
  done
  echo "missed (each needs a test, or a line in docs/reliability.md):"
  cat target/mutants/*/mutants.out/missed.txt 2>/dev/null | sed 's/^/   /'
fi
