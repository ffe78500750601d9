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

# oidc-agent's real `oidc-token`, the exec source's test command (tests/exec.rs).
if ! command -v oidc-token >/dev/null || ! command -v oidc-gen >/dev/null; then
  command -v apt-get >/dev/null || { echo "install-peers: oidc-agent is required (Debian: apt-get install oidc-agent-cli)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq oidc-agent-cli >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq oidc-agent-cli >/dev/null; }
fi
