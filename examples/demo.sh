#!/usr/bin/env bash
# A complete demo of the main job on a fresh machine: build robot-token, start a real
# OpenID provider (oidc-provider) on 127.0.0.1, bootstrap a robot credential, then run
# the cron line twice: the first run renews an expired token, the second is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh
cargo build --release --locked --quiet
bin=$PWD/target/release/robot-token

work=$(mktemp -d)
trap 'kill $issuer_pid 2>/dev/null || true; rm -rf "$work"' EXIT
chmod 700 "$work"

# The test issuer exits when its stdin closes; keep a pipe open for it.
mkfifo "$work/hold"
node tests/peer/issuer.mjs --port 0 <"$work/hold" >"$work/ready" 2>"$work/issuer.log" &
issuer_pid=$!
exec 3>"$work/hold"
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
issuer=$(sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p' "$work/ready")
echo "== test issuer: $issuer (oidc-provider, refresh-token rotation on)"

# Bootstrap: a person would run `robot-token init` once; the demo asks the test
# issuer for a real grant instead.
mint() { curl -sf -H 'Content-Type: application/json' -d "$1" "$issuer/__test/mint"; }
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }
rt=$(mint '{"client_id":"robot-basic","scope":"openid offline_access storage.read:/ compute.read","audience":"https://storage.example.org"}' | field refresh_token)
umask 077
cat >"$work/robot.json" <<JSON
{ "version": 1,
  "issuer": "$issuer",
  "client_id": "robot-basic",
  "client_secret": "robot-basic-secret",
  "refresh_token": "$rt",
  "scope": "storage.read:/ compute.read",
  "audience": "https://storage.example.org" }
JSON
mint '{"client_id":"robot-basic","scope":"openid","expired":true}' | field access_token >"$work/bt"
export BEARER_TOKEN_FILE="$work/bt"

echo
echo "== the token on disk has expired:"
"$bin" inspect | tail -1 || true

echo
echo "== cron run 1: renews (robot-token get -c robot.json -v)"
"$bin" get -c "$work/robot.json" -v
echo "exit $?"
"$bin" inspect | grep -E '"(aud|scope)"|expires in'

echo
echo "== cron run 2: still fresh, no network (robot-token get -c robot.json -v)"
"$bin" get -c "$work/robot.json" -v
echo "exit $?"
echo
echo "== the issuer saw:"
curl -sf "$issuer/__test/stats"; echo
