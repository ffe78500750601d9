#!/usr/bin/env bash
# Install the real peers the tests and the demo run against, on a fresh machine:
# the oidc-provider test issuer (npm, from the lockfile). Idempotent and quick when
# everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_npm=1
if [ -d tests/peer/node_modules ] && [ tests/peer/node_modules/.package-lock.json -nt tests/peer/package-lock.json ]; then
  need_npm=0
fi
if [ "$need_npm" = 1 ]; then
  command -v npm >/dev/null || { echo "install-peers: npm is required (Debian: apt-get install npm)" >&2; exit 1; }
  npm ci --prefix tests/peer --no-audit --no-fund --loglevel=error >&2
fi

# systemd-analyze, for `systemd-analyze verify` of the units in cron/ (tests/units.rs).
if ! command -v systemd-analyze >/dev/null; then
  command -v apt-get >/dev/null || { echo "install-peers: systemd-analyze is required (package systemd)" >&2; exit 1; }
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends systemd >&2
fi
