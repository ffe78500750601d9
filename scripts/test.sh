#!/usr/bin/env bash
# The whole test suite, as CI runs it: install the test peers, check formatting and
# lints, then run every test against real servers on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked --features test-hooks -- -D warnings
cargo test --all-targets --locked --features test-hooks -- --include-ignored
