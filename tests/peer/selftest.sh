#!/usr/bin/env bash
# Self-test of the test OpenID provider (issuer.mjs) with curl + node.
#   bash tests/peer/selftest.sh        (runs `npm ci` first if node_modules is missing)
# Exits non-zero if any check fails; the last line reads "N passed, N failed".
set -u -o pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"
if [ ! -d node_modules/oidc-provider ]; then
  npm ci --no-audit --no-fund >&2 || { echo "npm ci failed" >&2; exit 1; }
fi

T="$(mktemp -d)"
PASS=0
FAIL=0
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && echo "       $2"; }
# check "description" command...   (passes when the command succeeds)
check() { local d="$1"; shift; if "$@" >"$T/check.out" 2>&1; then ok "$d"; else bad "$d" "$(head -c 600 "$T/check.out")"; fi; }

# node helpers ---------------------------------------------------------------
# js 'expression using b (parsed JSON of $T/body)'   -> exit 0 when truthy, prints value
js() {
  EXPR="$1" node --input-type=module -e '
    import { readFileSync } from "node:fs";
    let b; try { b = JSON.parse(readFileSync(process.env.T + "/body", "utf8")); } catch { b = undefined; }
    const v = (0, eval)(`(b) => (${process.env.EXPR})`)(b);
    if (typeof v === "string") console.log(v); else console.log(JSON.stringify(v));
    process.exit(v ? 0 : 1);'
}
# jwt TOKEN 'expression using p (payload) and h (header)' -> verifies signature
# against the issuer's jwks_uri, then evaluates the expression.
jwt() {
  TOKEN="$1" EXPR="$2" node --input-type=module -e '
    import * as jose from "jose";
    const { TOKEN, EXPR, ISSUER, CURL_CA } = process.env;
    const jwks = jose.createLocalJWKSet(await (await fetch(ISSUER + "/__test/jwks")).json());
    const { payload: p, protectedHeader: h } = await jose.jwtVerify(TOKEN, jwks, { issuer: ISSUER, clockTolerance: 0, currentDate: new Date(0) });
    const now = Math.floor(Date.now() / 1000);
    const v = (0, eval)(`(p, h, now) => (${EXPR})`)(p, h, now);
    console.log(JSON.stringify({ h, p }));
    process.exit(v ? 0 : 1);'
}
export T

# HTTP helpers -----------------------------------------------------------------
# req ARGS... -> sets CODE, body in $T/body, headers in $T/headers
req() {
  CODE=$(curl -s -S -o "$T/body" -D "$T/headers" -w '%{http_code}' $CURL_TLS "$@")
  CURL_RC=$?
}
token() { req "$ISSUER/token" "$@"; }
basic() { echo "-u robot-basic:robot-basic-secret"; }
field() { js "b.$1"; }

# start_issuer NAME [args] -> ISSUER, PORT, PID, READY_MS; stdin is a FIFO we hold open
start_issuer() {
  local name="$1"; shift
  mkfifo "$T/$name.in"
  local t0; t0=$(date +%s%N)
  node issuer.mjs "$@" <"$T/$name.in" >"$T/$name.out" 2>"$T/$name.err" &
  PID=$!
  PIDS+=("$PID")
  eval "exec {FD_$name}>\"$T/$name.in\""
  for _ in $(seq 1 200); do
    [ -s "$T/$name.out" ] && break
    sleep 0.02
  done
  READY_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
  READY_LINE=$(head -n1 "$T/$name.out")
  ISSUER=$(echo "$READY_LINE" | sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p')
  PORT=$(echo "$READY_LINE" | sed -n 's/.*"port":\([0-9]*\).*/\1/p')
  export ISSUER
}

echo "# main issuer"
start_issuer main
MAIN_PID=$PID
MAIN_READY_MS=$READY_MS
echo "# ready line: $READY_LINE (after ${READY_MS}ms)"
check "ready line is exactly {issuer,port} JSON for 127.0.0.1" \
  grep -Eqx '\{"issuer":"http://127\.0\.0\.1:[0-9]+","port":[0-9]+\}' "$T/main.out"
check "ready within 5s" test "$READY_MS" -lt 5000
CURL_TLS=""
check "listens on 127.0.0.1 only (127.0.0.2 refused)" bash -c "! curl -s -o /dev/null --max-time 2 http://127.0.0.2:$PORT/jwks"

# -- discovery ------------------------------------------------------------------
req "$ISSUER/.well-known/openid-configuration"
check "discovery 200" test "$CODE" = 200
check "discovery issuer has no trailing slash" js "b.issuer === process.env.ISSUER"
check "discovery lists token/device/jwks endpoints" js 'b.token_endpoint && b.device_authorization_endpoint && b.jwks_uri'
check "discovery lists grant types" js '["refresh_token","client_credentials","urn:ietf:params:oauth:grant-type:device_code","urn:ietf:params:oauth:grant-type:token-exchange"].every((g) => b.grant_types_supported.includes(g))'
req "$ISSUER/jwks"
check "jwks has the fixed RS256 key" js 'b.keys.length === 1 && b.keys[0].kid === "robot-token-test-provider" && !b.keys[0].d'

# -- mint + refresh (basic auth) + rotation + family revocation --------------------
req -X POST "$ISSUER/__test/mint" -d '{"client_id":"robot-basic","scope":"openid offline_access storage.read:/","audience":"https://storage.example.org"}'
check "mint 200" test "$CODE" = 200
RT1=$(field refresh_token); AT0=$(field access_token)
check "minted access token is a provider JWT with all claims" jwt "$AT0" \
  'p.aud === "https://storage.example.org" && p.scope === "openid offline_access storage.read:/" && p.sub === "robot-user" && p.client_id === "robot-basic" && p.jti && p.iat && p.exp > now && h.alg === "RS256"'

token $(basic) -d grant_type=refresh_token -d "refresh_token=$RT1" -d audience=https://storage.example.org
check "refresh_token grant (client_secret_basic) 200" test "$CODE" = 200
RT2=$(field refresh_token); AT1=$(field access_token)
check "refresh rotated the refresh token" test -n "$RT2" -a "$RT2" != "$RT1"
check "refreshed JWT has aud and scope" jwt "$AT1" \
  'p.aud === "https://storage.example.org" && p.scope === "openid offline_access storage.read:/" && p.exp - p.iat === 3600'
check "token response has expires_in and token_type" js 'b.expires_in === 3600 && b.token_type === "Bearer"'

token $(basic) -d grant_type=refresh_token -d "refresh_token=$RT2"
check "refresh without audience keeps the granted audience" jwt "$(field access_token)" 'p.aud === "https://storage.example.org"'
RT3=$(field refresh_token)

token $(basic) -d grant_type=refresh_token -d "refresh_token=$RT1"
check "reused (rotated) refresh token -> 400 invalid_grant" js 'b.error === "invalid_grant"'
check "... with status 400" test "$CODE" = 400
token $(basic) -d grant_type=refresh_token -d "refresh_token=$RT3"
check "newest refresh token of the family was revoked too" js 'b.error === "invalid_grant"'
grep -q 'grant.revoked' "$T/main.err"
check "issuer logged grant.revoked" grep -q 'grant.revoked' "$T/main.err"

echo "# revocation (RFC 7009) and the clock"
req -X POST -H 'Content-Type: application/json' -d '{"client_id":"robot-basic","scope":"openid offline_access"}' "$ISSUER/__test/mint"
RTV=$(field refresh_token)
req -X POST "$ISSUER/__test/reset"
req $(basic) "$ISSUER/token/revocation" -d "token=$RTV" -d token_type_hint=refresh_token
check "revoke a refresh token -> 200" test "$CODE" = 200
token $(basic) -d grant_type=refresh_token -d "refresh_token=$RTV"
check "revoked refresh token -> invalid_grant" js 'b.error === "invalid_grant"'
req $(basic) "$ISSUER/token/revocation" -d "token=$RTV" -d token_type_hint=refresh_token
check "revoking it again -> 200 (RFC 7009 2.2)" test "$CODE" = 200
req -u robot-basic:wrong "$ISSUER/token/revocation" -d "token=x"
check "revocation with a bad client secret -> 401 invalid_client" js 'b.error === "invalid_client"'
req -X POST -H 'Content-Type: application/json' -d '{"kind":"unsupported_token_type","path":"revocation"}' "$ISSUER/__test/fault"
req $(basic) "$ISSUER/token/revocation" -d "token=x"
check "fault unsupported_token_type on the revocation endpoint" js 'b.error === "unsupported_token_type"'
req "$ISSUER/__test/stats"
check "stats count revocation requests" js 'b.requests.revocation === 4'
req -X POST -H 'Content-Type: application/json' -d '{"skew":-600}' "$ISSUER/__test/clock"
req "$ISSUER/.well-known/openid-configuration"
SKEWED=$(sed -n 's/^[Dd]ate: //p' "$T/headers" | tr -d '\r')
check "POST /__test/clock skews the Date header (${SKEWED})" \
  test $(( $(date +%s) - $(date -d "$SKEWED" +%s) )) -ge 590
req -X POST "$ISSUER/__test/reset"

token $(basic) -d grant_type=refresh_token -d refresh_token=no-such-token
check "unknown refresh token -> invalid_grant" js 'b.error === "invalid_grant"'
token -u robot-basic:wrong -d grant_type=refresh_token -d refresh_token=x
check "bad client secret -> 401" test "$CODE" = 401
check "bad client secret -> invalid_client" js 'b.error === "invalid_client"'
check "real reason of the generic error is logged" grep -q 'invalid_client.*detail=' "$T/main.err"

# WLCG scopes exactly as requested, narrowing, non-URL audience, audience change
SC='openid offline_access wlcg storage.read:/ storage.read:/some/path storage.modify:/x storage.create:/x compute.read compute.create compute.modify compute.cancel condor:/READ condor:/WRITE'
req -X POST "$ISSUER/__test/mint" -d "{\"client_id\":\"robot-basic\",\"scope\":\"$SC forbidden.scope\",\"audience\":\"condor.example.org:9618\"}"
RT=$(field refresh_token)
check "mint drops forbidden.scope" jwt "$(field access_token)" "p.scope === \"$SC\" && p.aud === \"condor.example.org:9618\""
token $(basic) -d grant_type=refresh_token -d "refresh_token=$RT" -d audience=condor.example.org:9618
check "refresh: all WLCG scopes in the JWT exactly as requested" jwt "$(field access_token)" "p.scope === \"$SC\" && p.aud === \"condor.example.org:9618\""
RT=$(field refresh_token)
token $(basic) -d grant_type=refresh_token -d "refresh_token=$RT" -d 'scope=storage.read:/some/path compute.read' -d audience=https://other.example.org
check "refresh with narrower scope and a new audience" jwt "$(field access_token)" 'p.scope === "storage.read:/some/path compute.read" && p.aud === "https://other.example.org"'
RT=$(field refresh_token)
token $(basic) -d grant_type=refresh_token -d "refresh_token=$RT" -d 'scope=storage.read:/ storage.modify:/other'
check "refresh asking for a scope outside the grant -> invalid_scope" js 'b.error === "invalid_scope"'

# -- client_credentials -------------------------------------------------------------
token -d grant_type=client_credentials -d client_id=robot-post -d client_secret=robot-post-secret \
  -d 'scope=compute.read storage.read:/some/path forbidden.scope' -d audience=condor.example.org:9618
check "client_credentials (client_secret_post) 200" test "$CODE" = 200
check "client_credentials JWT: aud, narrowed scope, sub=client" jwt "$(field access_token)" \
  'p.aud === "condor.example.org:9618" && p.scope === "compute.read storage.read:/some/path" && p.sub === "robot-post" && p.client_id === "robot-post"'
check "client_credentials gives no refresh token" js '!b.refresh_token'
token -d grant_type=client_credentials -d client_id=robot-post -d client_secret=robot-post-secret -d scope=compute.read
token -d grant_type=client_credentials -d client_id=robot-post -d client_secret=robot-post-secret
check "JWT without any granted scope still carries scope \"\"" jwt "$(field access_token)" 'p.scope === ""'
token -d grant_type=client_credentials -d client_id=robot-post -d client_secret=robot-post-secret -d scope=compute.read -d resource=https://rfc8707.example.org
check "RFC 8707 resource= works too" jwt "$(field access_token)" 'p.aud === "https://rfc8707.example.org"'
token -d grant_type=client_credentials -d client_id=robot-post -d client_secret=robot-post-secret -d scope=compute.read
check "client_credentials without audience -> default WLCG audience" jwt "$(field access_token)" 'p.aud === "https://wlcg.cern.ch/jwt/v1/any" && p.scope === "compute.read"'
token -d grant_type=client_credentials -d client_id=robot-post -d client_secret=robot-post-secret -d scope=compute.read -d 'audience=https://a.example.org https://b.example.org'
check "space-separated audiences -> aud array" jwt "$(field access_token)" 'Array.isArray(p.aud) && p.aud.join(",") === "https://a.example.org,https://b.example.org"'

# -- private_key_jwt ------------------------------------------------------------------
assertion() {
  CLIENT="$1" KEYFILE="$2" ALG="$3" node --input-type=module -e '
    import * as jose from "jose"; import { readFileSync } from "node:fs"; import { randomUUID } from "node:crypto";
    const { CLIENT, KEYFILE, ALG, ISSUER } = process.env;
    const key = await jose.importPKCS8(readFileSync(KEYFILE, "utf8"), ALG);
    const kid = JSON.parse(readFileSync(KEYFILE.replace(".key.pem", ".pub.jwk.json"), "utf8")).kid;
    console.log(await new jose.SignJWT({}).setProtectedHeader({ alg: ALG, kid })
      .setIssuer(CLIENT).setSubject(CLIENT).setAudience(ISSUER + "/token").setJti(randomUUID())
      .setIssuedAt().setExpirationTime("60s").sign(key));'
}
CA_TYPE=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
token -d grant_type=client_credentials -d client_id=robot-pkjwt-rsa -d client_assertion_type=$CA_TYPE \
  -d "client_assertion=$(assertion robot-pkjwt-rsa keys/client-rsa.key.pem RS256)" -d scope=compute.read -d audience=https://ce.example.org
check "private_key_jwt RS256 (robot-pkjwt-rsa) 200" test "$CODE" = 200
check "... JWT for robot-pkjwt-rsa" jwt "$(field access_token)" 'p.client_id === "robot-pkjwt-rsa" && p.aud === "https://ce.example.org"'
token -d grant_type=client_credentials -d client_id=robot-pkjwt-ec -d client_assertion_type=$CA_TYPE \
  -d "client_assertion=$(assertion robot-pkjwt-ec keys/client-ec.key.pem ES256)" -d scope=compute.read
check "private_key_jwt ES256 (robot-pkjwt-ec) 200" test "$CODE" = 200
token -d grant_type=client_credentials -d client_id=robot-pkjwt-ec -d client_assertion_type=$CA_TYPE \
  -d "client_assertion=$(assertion robot-pkjwt-ec keys/client-rsa.key.pem RS256)" -d scope=compute.read
check "private_key_jwt signed with the wrong key -> 401 invalid_client" js 'b.error === "invalid_client"'

# -- device flow ----------------------------------------------------------------------
DEV=urn:ietf:params:oauth:grant-type:device_code
req "$ISSUER/device/auth" -d client_id=robot-public -d 'scope=openid offline_access storage.read:/ compute.read'
check "device authorization 200" test "$CODE" = 200
check "no interval by default" js '!("interval" in b) && b.user_code && b.verification_uri'
req -X POST "$ISSUER/__test/device" -d '{"interval":1,"slow_down_once":true}'
req "$ISSUER/device/auth" -d client_id=robot-public -d 'scope=openid offline_access storage.read:/ compute.read' -d audience=https://storage.example.org
check "interval set by the control API" js 'b.interval === 1'
DC=$(field device_code); UC=$(field user_code)
token -d client_id=robot-public -d grant_type=$DEV -d "device_code=$DC"
check "slow_down once" js 'b.error === "slow_down"'
token -d client_id=robot-public -d grant_type=$DEV -d "device_code=$DC"
check "then authorization_pending" js 'b.error === "authorization_pending"'
check "approve.mjs approves" node approve.mjs "$ISSUER" "$UC"
token -d client_id=robot-public -d grant_type=$DEV -d "device_code=$DC"
check "device_code grant 200 after approval" test "$CODE" = 200
check "device flow issues a refresh token (offline_access)" js 'b.refresh_token'
check "device flow JWT" jwt "$(field access_token)" 'p.sub === "robot-user" && p.aud === "https://storage.example.org" && p.scope === "openid offline_access storage.read:/ compute.read" && p.client_id === "robot-public"'
RT=$(field refresh_token)
token -d client_id=robot-public -d grant_type=refresh_token -d "refresh_token=$RT"
check "device-flow refresh token works (public client)" test "$CODE" = 200
token -d client_id=robot-public -d grant_type=$DEV -d "device_code=$DC"
check "device code cannot be used twice" js 'b.error === "invalid_grant"'

req -X POST "$ISSUER/__test/device" -d '{"answer":{"interval":"18446744073709551615","expires_in":"1e300"},"decorate":true}'
req "$ISSUER/device/auth" -u robot-basic:robot-basic-secret -d 'scope=openid compute.read'
check "device answer: raw numbers verbatim" grep -q '"expires_in":1e300,"interval":18446744073709551615' "$T/body"
check "device decorate: the user code echoes the Basic credentials" js 'b.user_code.includes("authorization=Basic ") && b.verification_uri.includes("you sent")'
req -X POST "$ISSUER/__test/device" -d '{"answer":null,"decorate":false,"interval":null}'
req "$ISSUER/device/auth" -d client_id=robot-public -d 'scope=openid compute.read'
DC=$(field device_code); UC=$(field user_code)
check "approve.mjs --deny denies" node approve.mjs "$ISSUER" "$UC" --deny
token -d client_id=robot-public -d grant_type=$DEV -d "device_code=$DC"
check "denied device code -> access_denied" js 'b.error === "access_denied"'
check "approve.mjs fails on a wrong code" bash -c "! node approve.mjs '$ISSUER' BCDF-GHJK 2>/dev/null"

# device flow with a confidential client
req "$ISSUER/device/auth" $(basic) -d 'scope=offline_access storage.read:/data' -d audience=condor.example.org:9618
DC=$(field device_code); UC=$(field user_code)
node approve.mjs "$ISSUER" "$UC" >/dev/null
token $(basic) -d grant_type=$DEV -d "device_code=$DC"
check "device flow, robot-basic, non-URL audience" jwt "$(field access_token)" 'p.aud === "condor.example.org:9618" && p.scope === "offline_access storage.read:/data"'
req "$ISSUER/device/auth" -d client_id=robot-public -d 'scope=compute.read' -d audience=https://x.example.org
DC=$(field device_code); UC=$(field user_code)
node approve.mjs "$ISSUER" "$UC" >/dev/null
token -d client_id=robot-public -d grant_type=$DEV -d "device_code=$DC" -d audience=https://y.example.org
check "device_code poll may name another audience than device/auth" jwt "$(field access_token)" 'p.aud === "https://y.example.org" && p.scope === "compute.read"'

# -- token exchange -----------------------------------------------------------------
TX=urn:ietf:params:oauth:grant-type:token-exchange
req -X POST "$ISSUER/__test/mint" -d '{"client_id":"robot-basic","scope":"openid offline_access storage.read:/ compute.read","audience":"https://storage.example.org"}'
SUBJ=$(field access_token)
token $(basic) -d grant_type=$TX -d "subject_token=$SUBJ" -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \
  -d 'scope=storage.read:/some/path compute.create forbidden.scope offline_access' -d audience=https://fts.example.org
check "token exchange (provider subject) 200" test "$CODE" = 200
check "exchange returns issued_token_type and a refresh token" js 'b.issued_token_type === "urn:ietf:params:oauth:token-type:access_token" && b.refresh_token && b.token_type === "Bearer"'
check "exchange only narrows scopes" jwt "$(field access_token)" 'p.scope === "storage.read:/some/path offline_access" && p.aud === "https://fts.example.org" && p.sub === "robot-user"'
RT=$(field refresh_token)
token $(basic) -d grant_type=refresh_token -d "refresh_token=$RT"
check "exchanged refresh token works with refresh_token grant" jwt "$(field access_token)" 'p.aud === "https://fts.example.org" && p.scope === "storage.read:/some/path offline_access"'

req -X POST "$ISSUER/__test/sign" -d '{"key":"ci","claims":{"sub":"repo:grid/robot:ref:refs/heads/main","aud":"robot-token"}}'
CI=$(field jwt)
token -d client_id=robot-post -d client_secret=robot-post-secret -d grant_type=$TX -d "subject_token=$CI" \
  -d subject_token_type=urn:ietf:params:oauth:token-type:jwt -d 'scope=storage.modify:/ci offline_access compute.create' -d audience=condor.example.org:9618
check "token exchange (CI subject) allows any scope" jwt "$(field access_token)" 'p.sub === "repo:grid/robot:ref:refs/heads/main" && p.scope === "storage.modify:/ci offline_access compute.create" && p.aud === "condor.example.org:9618"'
req -X POST "$ISSUER/__test/sign" -d '{"key":"ci","claims":{"sub":"x","exp":1000}}'
token $(basic) -d grant_type=$TX -d "subject_token=$(field jwt)" -d subject_token_type=urn:ietf:params:oauth:token-type:jwt
check "expired subject token -> invalid_grant" js 'b.error === "invalid_grant"'
req -X POST "$ISSUER/__test/sign" -d '{"key":"ci","claims":{"iss":"https://evil.example.org","sub":"x"}}'
token $(basic) -d grant_type=$TX -d "subject_token=$(field jwt)" -d subject_token_type=urn:ietf:params:oauth:token-type:jwt
check "untrusted subject issuer -> invalid_grant" js 'b.error === "invalid_grant"'
req -X POST "$ISSUER/__test/sign" -d '{"key":"ci","claims":{"iss":"'"$ISSUER"'","sub":"x","scope":"storage.read:/"}}'
token $(basic) -d grant_type=$TX -d "subject_token=$(field jwt)" -d subject_token_type=urn:ietf:params:oauth:token-type:jwt
check "provider issuer signed with the CI key -> invalid_grant" js 'b.error === "invalid_grant"'
token $(basic) -d grant_type=$TX -d "subject_token=$SUBJ" -d subject_token_type=urn:ietf:params:oauth:token-type:saml2
check "bad subject_token_type -> invalid_request" js 'b.error === "invalid_request"'

# -- expired mint, sign -----------------------------------------------------------------
req -X POST "$ISSUER/__test/mint" -d '{"client_id":"robot-basic","scope":"storage.read:/","expired":true}'
check "mint expired: signed JWT with exp in the past" jwt "$(field access_token)" 'p.exp < now && p.iat < p.exp'
RT=$(field refresh_token)
token $(basic) -d grant_type=refresh_token -d "refresh_token=$RT"
check "... and its refresh token still works" test "$CODE" = 200
req -X POST "$ISSUER/__test/mint" -d '{"client_id":"robot-post","scope":"storage.read:/","access_ttl":7}'
check "mint access_ttl" jwt "$(field access_token)" 'p.exp - p.iat === 7'

# -- faults ---------------------------------------------------------------------------
fault() { req -X POST "$ISSUER/__test/fault" -d "$1"; }
mint_rt() { req -X POST "$ISSUER/__test/mint" -d '{"client_id":"robot-basic","scope":"offline_access storage.read:/"}'; field refresh_token; }
refresh() { token $(basic) -d grant_type=refresh_token -d "refresh_token=$1" "${@:2}"; }

req -X POST "$ISSUER/__test/reset"
RT=$(mint_rt)
for s in 500 502 503; do
  fault "{\"kind\":\"status\",\"status\":$s}"
  refresh "$RT"
  check "fault status $s" bash -c "test $CODE = $s && grep -qi 'content-type: text/html' '$T/headers' && grep -q '<html>' '$T/body'"
done
fault '{"kind":"429","retry_after":7}'
refresh "$RT"
check "fault 429 with Retry-After" bash -c "test $CODE = 429 && grep -qi '^retry-after: 7' '$T/headers'"
fault '{"kind":"truncated_json"}'; refresh "$RT"
check "fault truncated_json" bash -c "test $CODE = 200 && test \"\$(cat '$T/body')\" = '{\"access_token\": \"ey'"
fault '{"kind":"empty"}'; refresh "$RT"
check "fault empty" bash -c "test $CODE = 200 && test ! -s '$T/body'"
fault '{"kind":"html_login"}'; refresh "$RT"
check "fault html_login" bash -c "test $CODE = 200 && grep -qi 'content-type: text/html' '$T/headers' && grep -q '<form' '$T/body'"
fault '{"kind":"invalid_grant"}'; refresh "$RT"
check "fault invalid_grant" bash -c "test $CODE = 400 && grep -q invalid_grant '$T/body'"
fault '{"kind":"invalid_client"}'; refresh "$RT"
check "fault invalid_client" bash -c "test $CODE = 401 && grep -q invalid_client '$T/body'"
fault '{"kind":"no_access_token"}'; refresh "$RT"
check "fault no_access_token" js 'b.token_type === "Bearer" && b.expires_in === 3600 && !("access_token" in b)'
fault '{"kind":"not_jwt"}'; refresh "$RT"
check "fault not_jwt" js 'b.access_token === "opaque-abc123"'
fault '{"kind":"expired_jwt"}'; refresh "$RT"
check "fault expired_jwt: correctly signed, exp in the past" jwt "$(field access_token)" 'p.exp < now && p.client_id === "robot-basic"'
fault '{"kind":"claims_jwt","payload":"{\"sub\":\"robot-user\",\"exp\":-9223372036854775808}"}'; refresh "$RT"
check "fault claims_jwt: the claims verbatim (digits JavaScript cannot hold)" js 'Buffer.from(b.access_token.split(".")[1], "base64url").toString() === "{\"sub\":\"robot-user\",\"exp\":-9223372036854775808}"'
fault '{"kind":"echo"}'; refresh "$RT"
check "fault echo: status 400" test "$CODE" = 400
export RT
check "fault echo: the refresh token and Basic credentials in error_description, with escapes, bidi and |" \
  js 'b.error === "invalid_grant" && b.error_description.includes("refresh_token=" + process.env.RT) && b.error_description.includes("basic-decoded=robot-basic:robot-basic-secret") && /\u202e/.test(b.error_description) && b.error_description.includes("|")'
refresh "$RT"
check "faults did not touch the refresh token (none reached the provider)" test "$CODE" = 200
RT=$(field refresh_token)

fault '{"kind":"slow","delay_ms":700}'
t0=$(date +%s%N); refresh "$RT"; dt=$(( ($(date +%s%N) - t0) / 1000000 ))
check "fault slow delays (${dt}ms) then processes" bash -c "test $CODE = 200 && test $dt -ge 700"
RT_OLD=$RT; RT=$(field refresh_token)
check "... and the refresh token rotated" test "$RT" != "$RT_OLD"

fault '{"kind":"hang"}'
t0=$(date +%s%N); refresh "$RT" --max-time 1; dt=$(( ($(date +%s%N) - t0) / 1000000 ))
check "fault hang never answers (curl timed out after ${dt}ms)" test "$CURL_RC" = 28
refresh "$RT"
check "after hang: the refresh token is still valid (request never processed)" test "$CODE" = 200
RT=$(field refresh_token)

fault '{"kind":"reset_after_processing"}'
refresh "$RT"
check "fault reset_after_processing: connection dropped mid-body (curl rc=$CURL_RC)" bash -c "test $CURL_RC = 18 -o $CURL_RC = 56 -o $CURL_RC = 52"
refresh "$RT"
check "... the provider had rotated it: retry -> invalid_grant" js 'b.error === "invalid_grant"'

RT=$(mint_rt)
fault '{"kind":"status","status":503,"times":2}'
refresh "$RT"; c1=$CODE; refresh "$RT"; c2=$CODE; refresh "$RT"; c3=$CODE
check "times=2 applies twice then passes ($c1 $c2 $c3)" test "$c1$c2$c3" = "503503200"

fault '{"kind":"status","status":502,"path":"discovery"}'
req "$ISSUER/.well-known/openid-configuration"
check "discovery fault" test "$CODE" = 502
req "$ISSUER/.well-known/openid-configuration"
check "discovery back to normal" test "$CODE" = 200
fault '{"kind":"bogus"}'
check "unknown fault kind -> 400" test "$CODE" = 400

# -- stats ----------------------------------------------------------------------------
req -X POST "$ISSUER/__test/reset"
fault '{"kind":"status","status":500}'
req "$ISSUER/.well-known/openid-configuration"
req "$ISSUER/jwks"
RT=$(mint_rt)
refresh "$RT"                       # faulted, still counted
refresh "$RT"
token -d grant_type=client_credentials -d client_id=robot-post -d client_secret=robot-post-secret -d scope=compute.read
req "$ISSUER/device/auth" -d client_id=robot-public -d scope=openid
req "$ISSUER/__test/stats"
check "stats count requests (faulted included)" js 'b.requests.discovery === 1 && b.requests.jwks === 1 && b.requests.token === 3 && b.requests.device === 1 && b.requests.other === 0'
check "stats count grants" js 'b.grants.refresh_token === 2 && b.grants.client_credentials === 1'
req -X POST "$ISSUER/__test/reset"
req "$ISSUER/__test/stats"
check "reset zeroes counters" js 'Object.values(b.requests).every((n) => n === 0) && Object.keys(b.grants).length === 0'

check "stdout carried only the ready line" test "$(wc -l <"$T/main.out")" = 1

# -- lifecycle ------------------------------------------------------------------------
eval "exec {FD_main}>&-"
for _ in $(seq 1 100); do kill -0 "$MAIN_PID" 2>/dev/null || break; sleep 0.05; done
check "exits when stdin closes" bash -c "! kill -0 $MAIN_PID 2>/dev/null"

echo "# --no-rotate, --access-ttl 5, fixed port"
FREE_PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
start_issuer norot --no-rotate --access-ttl 5 --port "$FREE_PORT"
NOROT_PID=$PID
check "--port is honoured" test "$PORT" = "$FREE_PORT"
RT=$(mint_rt)
refresh "$RT"
check "--access-ttl 5: expires_in 5" js 'b.expires_in === 5'
check "--access-ttl 5: exp - iat = 5" jwt "$(field access_token)" 'p.exp - p.iat === 5'
check "--no-rotate: same refresh token back" js "b.refresh_token === '$RT'"
refresh "$RT"
check "--no-rotate: refresh token reusable" test "$CODE" = 200
kill -TERM "$NOROT_PID"
for _ in $(seq 1 100); do kill -0 "$NOROT_PID" 2>/dev/null || break; sleep 0.05; done
check "exits on SIGTERM" bash -c "! kill -0 $NOROT_PID 2>/dev/null"

echo "# --https"
start_issuer tls --https --cert keys/tls.pem --key keys/tls.key.pem --log "$T/tls.log"
CURL_TLS="--cacert keys/tls-ca.pem"
check "https ready line" grep -Eqx '\{"issuer":"https://127\.0\.0\.1:[0-9]+","port":[0-9]+\}' "$T/tls.out"
req "$ISSUER/.well-known/openid-configuration"
check "https discovery (CA keys/tls-ca.pem)" js 'b.token_endpoint.startsWith("https://127.0.0.1:")'
req "$ISSUER/device/auth" -d client_id=robot-public -d 'scope=offline_access compute.read'
DC=$(field device_code); UC=$(field user_code)
check "approve.mjs over https" node approve.mjs "$ISSUER" "$UC"
token -d client_id=robot-public -d grant_type=$DEV -d "device_code=$DC"
check "https device flow token" test "$CODE" = 200
check "--log FILE gets the log" grep -q 'grant.success' "$T/tls.log"

echo "# spawn-to-ready-line time of the main issuer: ${MAIN_READY_MS}ms"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
