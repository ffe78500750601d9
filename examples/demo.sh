#!/usr/bin/env bash
# A complete demo of the main job on a fresh machine: build robot-token, start a real
# OpenID provider (oidc-provider) on 127.0.0.1 that gives 1-hour tokens (INDIGO IAM's
# default), bootstrap a robot credential, then run the crontab line twice: the first
# run renews an expired token, the second finds it fresh and sends nothing. Needs Rust
# and Node.js with npm; no root: it installs nothing outside this directory.
# The token and the credential stay in target/demo/ for `inspect`, `status`, `check`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh --issuer
echo "== building robot-token (release build with LTO: about 2 minutes on two idle cores the first time)"
cargo build --release --locked
bin=$PWD/target/release/robot-token

demo=$PWD/target/demo
rm -rf "$demo"
mkdir -p "$demo"
chmod 700 "$demo"
work=$(mktemp -d)
trap 'kill $issuer_pid 2>/dev/null || true; rm -rf "$work"' EXIT

# The test issuer exits when its stdin closes; keep a pipe open for it.
mkfifo "$work/hold"
node tests/peer/issuer.mjs --port 0 <"$work/hold" >"$work/ready" 2>"$work/issuer.log" &
issuer_pid=$!
exec 3>"$work/hold"
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
issuer=$(sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p' "$work/ready")
[ -n "$issuer" ] || { echo "the test issuer did not start:" >&2; cat "$work/issuer.log" >&2; exit 1; }
echo "== test issuer: $issuer (oidc-provider; 1-hour tokens, refresh-token rotation on)"

# Bootstrap: a person would run `robot-token init` once (the device flow); the demo
# asks the test issuer for a real grant instead.
mint() { curl -sf -H 'Content-Type: application/json' -d "$1" "$issuer/__test/mint"; }
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"; }
tokens() { curl -sf "$issuer/__test/stats" | sed -n 's/.*"token":\([0-9]*\).*/\1/p'; }
rt=$(mint '{"client_id":"robot-basic","scope":"openid offline_access storage.read:/ compute.read","audience":"https://storage.example.org"}' | field refresh_token)
umask 077
cat >"$demo/robot.json" <<JSON
{ "version": 1,
  "issuer": "$issuer",
  "client_id": "robot-basic",
  "client_secret": "robot-basic-secret",
  "refresh_token": "$rt",
  "scope": "storage.read:/ compute.read",
  "audience": "https://storage.example.org" }
JSON
mint '{"client_id":"robot-basic","scope":"openid","expired":true}' | field access_token >"$demo/bt"
export BEARER_TOKEN_FILE="$demo/bt"

echo
echo "== the token on disk has expired (robot-token inspect):"
"$bin" inspect | tail -1 || true

echo
echo "== cron run 1: renews it (robot-token get -c robot.json -v)"
"$bin" get -c "$demo/robot.json" -v
echo "exit $?; token requests the issuer has seen: $(tokens)"
"$bin" inspect | grep -E '"(aud|scope)"|expires in'

echo
echo "== cron run 2, a few seconds later: still fresh, nothing sent"
sleep 3
"$bin" get -c "$demo/robot.json" -v
echo "exit $?; token requests the issuer has seen: $(tokens) (unchanged)"
echo "   Without -m, a 1-hour token is renewed once less than half its lifetime is left,"
echo "   so cron's runs every 15 minutes renew it every 30 to 45 minutes."

echo
echo "== the monitoring plugin (robot-token check):"
"$bin" check "$demo/bt" || true

echo
echo "The token stays in $demo/bt (the issuer has stopped, so its refresh token is"
echo "gone with it). Try:"
echo "  $bin inspect $demo/bt"
echo "  $bin status $demo/bt"
echo "  $bin check $demo/bt"
