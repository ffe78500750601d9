#!/usr/bin/env bash
# Self-test of the Kerberos/Vault test infrastructure in tests/vault/:
# starts a private MIT KDC (kdc.sh) and the htvault-config look-alike
# (vault_stub.py), then proves with MIT kinit, curl --negotiate and
# python3-gssapi that the stub behaves like htvault-config.
#
#   bash tests/vault/selftest.sh        # exit 0 only if every check passed
#
# Needs: krb5-kdc krb5-admin-server krb5-user python3-gssapi curl (Debian).
# Leaves nothing behind: everything lives in a mktemp directory.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
PY=/usr/bin/python3
T=$(mktemp -d /tmp/vault-selftest.XXXXXX)
PASS=0
FAIL=0
MY_STUB_PID=
STUB2_PID=
MINT_PID=

cleanup() {
    [ -n "$MY_STUB_PID" ] && kill "$MY_STUB_PID" 2>/dev/null
    [ -n "$STUB2_PID" ] && kill "$STUB2_PID" 2>/dev/null
    [ -n "$MINT_PID" ] && kill "$MINT_PID" 2>/dev/null
    "$HERE/kdc.sh" stop "$T/kdc" 2>/dev/null
    if [ -n "${KEEP:-}" ]; then
        echo "kept $T" >&2
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

ok() {
    PASS=$((PASS + 1))
    echo "ok - $1"
}
notok() {
    FAIL=$((FAIL + 1))
    echo "not ok - $1"
}
check() { # check DESCRIPTION COMMAND...
    local d=$1
    shift
    if "$@"; then ok "$d"; else notok "$d"; fi
}
now_ms() { date +%s%3N; }

# jq-like helper: jget FILE PYTHON-EXPR-ON-d
jget() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$1" "$2"; }
jtrue() { [ "$(jget "$1" "$2")" = true ]; }

# http METHOD URL [curl args...] -> prints status; body in $T/body, headers in $T/hdr
http() {
    local m=$1 u=$2
    shift 2
    curl -sS -o "$T/body" -D "$T/hdr" -w '%{http_code}' -X "$m" "$@" "$u"
}
stats() { curl -sS "$URL/__stub/stats" >"$T/stats"; }

# python3-gssapi initiator: prints base64 token for SERVICE with MECH (spnego|krb5)
gss_token() {
    "$PY" - "$1" "$2" <<'EOF'
import base64, sys, gssapi
service, mech = sys.argv[1], sys.argv[2]
oid = {"spnego": "1.3.6.1.5.5.2", "krb5": "1.2.840.113554.1.2.2"}[mech]
name = gssapi.Name(service, name_type=gssapi.NameType.hostbased_service)
ctx = gssapi.SecurityContext(name=name, usage="initiate", mech=gssapi.OID.from_int_seq(oid))
print(base64.b64encode(ctx.step()).decode())
EOF
}

command -v curl >/dev/null || { echo "curl missing" >&2; exit 2; }
"$PY" -c 'import gssapi' 2>/dev/null || { echo "python3-gssapi missing for $PY" >&2; exit 2; }

############################################################################
echo "# starting KDC"
t0=$(now_ms)
"$HERE/kdc.sh" start "$T/kdc" >"$T/kdc.json" || { echo "kdc.sh start failed" >&2; exit 1; }
KDC_MS=$(($(now_ms) - t0))
echo "# kdc: $(cat "$T/kdc.json")"
KRB5_CONFIG=$(jget "$T/kdc.json" 'd["krb5_config"]')
REALM=$(jget "$T/kdc.json" 'd["realm"]')
ROBOT=$(jget "$T/kdc.json" 'd["robot_principal"]')
ROBOT_KT=$(jget "$T/kdc.json" 'd["robot_keytab"]')
INTRUDER=$(jget "$T/kdc.json" 'd["intruder_principal"]')
INTRUDER_KT=$(jget "$T/kdc.json" 'd["intruder_keytab"]')
SERVICE_KT=$(jget "$T/kdc.json" 'd["service_keytab"]')
WRONG_KT=$(jget "$T/kdc.json" 'd["wrongkey_keytab"]')
export KRB5_CONFIG
export KRB5CCNAME="FILE:$T/ccache"
unset KRB5_KTNAME KRB5_CLIENT_KTNAME
check "kdc.sh start within 5 s ($KDC_MS ms)" [ "$KDC_MS" -lt 5000 ]
check "robot keytab is mode 0600" [ "$(stat -c %a "$ROBOT_KT")" = 600 ]
check "kdc.sh status says running" "$HERE/kdc.sh" status "$T/kdc"
check "KDC listens on 127.0.0.1 only (udp+tcp)" bash -c \
    "ss -lnu | grep -q '127.0.0.1:$(jget "$T/kdc.json" 'd["kdc_port"]') ' && ss -lnt | grep -q '127.0.0.1:$(jget "$T/kdc.json" 'd["kdc_port"]') '"

############################################################################
echo "# starting vault stub (file token source)"
"$PY" - "$T/at.jwt" 3600 <<'EOF'
import base64, json, sys, time
def b64(x): return base64.urlsafe_b64encode(json.dumps(x).encode()).rstrip(b"=").decode()
tok = b64({"alg": "none", "typ": "JWT"}) + "." + b64({"sub": "robot", "exp": int(time.time()) + int(sys.argv[2])}) + ".c2ln"
open(sys.argv[1], "w").write(tok + "\n")
EOF
t0=$(now_ms)
coproc STUB { exec "$PY" "$HERE/vault_stub.py" --port 0 --service-keytab "$SERVICE_KT" \
    --krb5-config "$KRB5_CONFIG" --issuer igwn --role robot --role other \
    --principal-map "$ROBOT=" --token-source "$T/at.jwt" 2>>"$T/stub.log"; }
# bash unsets STUB/STUB_PID once the coprocess is reaped: keep copies
MY_STUB_PID=$STUB_PID
STUB_IN=${STUB[1]}
READY=
read -t 15 -r READY <&"${STUB[0]}"
STUB_MS=$(($(now_ms) - t0))
echo "# stub: $READY"
echo "$READY" >"$T/ready.json"
URL=$(jget "$T/ready.json" 'd["url"]') || { echo "stub did not start" >&2; cat "$T/stub.log" >&2; exit 1; }
PORT=$(jget "$T/ready.json" 'd["port"]')
check "stub ready within 5 s ($STUB_MS ms)" [ "$STUB_MS" -lt 5000 ]
check "stub URL is http://127.0.0.1:PORT" [ "$URL" = "http://127.0.0.1:$PORT" ]
# the SPNEGO service is HTTP@localhost: curl must use the name localhost
VURL="http://localhost:$PORT"
RESOLVE=(--resolve "localhost:$PORT:127.0.0.1")
LOGIN="/v1/auth/kerberos-igwn_robot/login"

############################################################################
echo "# login"
s=$(http POST "$URL$LOGIN")
check "login without Authorization -> 401 ($s)" [ "$s" = 401 ]
check "401 carries WWW-Authenticate: Negotiate" grep -qi '^WWW-Authenticate: Negotiate' "$T/hdr"
s=$(http POST "$URL$LOGIN" -H 'Authorization: Negotiate bm90IGEgdG9rZW4=')
check "login with garbage Negotiate -> 401 ($s)" [ "$s" = 401 ]
s=$(http POST "$URL$LOGIN" -H 'Authorization: Negotiate ***')
check "login with non-base64 Negotiate -> 401 ($s)" [ "$s" = 401 ]

kinit -kt "$WRONG_KT" "$ROBOT" >"$T/kinit-wrong.out" 2>&1
rc=$?
check "kinit with wrong-key keytab fails (rc=$rc)" [ "$rc" -ne 0 ]
check "  ... with 'Preauthentication failed'" grep -q 'Preauthentication failed' "$T/kinit-wrong.out"

t0=$(now_ms)
check "kinit -kt robot.keytab" kinit -kt "$ROBOT_KT" "$ROBOT"
KINIT_MS=$(($(now_ms) - t0))
curl -sS "${RESOLVE[@]}" "$URL/__stub/reset" -X POST >/dev/null
s=$(http POST "$VURL$LOGIN" --negotiate -u : "${RESOLVE[@]}")
check "curl --negotiate login as robot -> 200 ($s)" [ "$s" = 200 ]
cp "$T/body" "$T/login1.json"
ROBOT_TOKEN=$(jget "$T/login1.json" 'd["auth"]["client_token"]')
check "login returns an hvs. client_token" [ "${ROBOT_TOKEN#hvs.}" != "$ROBOT_TOKEN" ]
check "login lease_duration is 2764800 (32 days)" [ "$(jget "$T/login1.json" 'd["auth"]["lease_duration"]')" = 2764800 ]
check "login is renewable" jtrue "$T/login1.json" 'd["auth"]["renewable"]'
check "login policies are htvault-config's" [ "$(jget "$T/login1.json" 'd["auth"]["policies"]')" = '["kerberos-igwn_robot", "tokenops"]' ]
check "login metadata user" [ "$(jget "$T/login1.json" 'd["auth"]["metadata"]["user"]')" = "robot/ci.example.org" ]
stats
check "stub recorded robot principal" [ "$(jget "$T/stats" 'd["principals"]')" = "[\"$ROBOT\"]" ]
check "curl sent SPNEGO" [ "$(jget "$T/stats" 'd["login_mechs"]')" = '["spnego"]' ]

# htgettoken's way: raw krb5 mech for host@<vault host>
TOKEN_KRB5=$(gss_token host@localhost krb5)
s=$(http POST "$URL$LOGIN" -H "Authorization: Negotiate $TOKEN_KRB5" -H 'Content-Type: application/x-www-form-urlencoded')
check "htgettoken-style krb5 token for host@localhost -> 200 ($s)" [ "$s" = 200 ]
s=$(http POST "$URL$LOGIN" -H "Authorization: Negotiate $TOKEN_KRB5")
check "replayed token -> 401 ($s)" [ "$s" = 401 ]
TOKEN_SPNEGO=$(gss_token HTTP@localhost spnego)
echo "# SPNEGO token from python3-gssapi: $(printf %s "$TOKEN_SPNEGO" | base64 -d | wc -c) bytes; krb5 token $(printf %s "$TOKEN_KRB5" | base64 -d | wc -c) bytes"
s=$(http POST "$URL/v1/auth/kerberos-igwn_other/login" -H "Authorization: Negotiate $TOKEN_SPNEGO")
check "second role mount kerberos-igwn_other -> 200 ($s)" [ "$s" = 200 ]
check "  ... with policy kerberos-igwn_other" [ "$(jget "$T/body" 'd["auth"]["policies"][0]')" = kerberos-igwn_other ]
s=$(http POST "$URL/v1/auth/kerberos-igwn_nosuch/login" -H "Authorization: Negotiate $TOKEN_SPNEGO")
check "unknown role mount -> 404 ($s)" [ "$s" = 404 ]

check "kinit -kt intruder.keytab" kinit -kt "$INTRUDER_KT" "$INTRUDER"
s=$(http POST "$VURL$LOGIN" --negotiate -u : "${RESOLVE[@]}")
check "intruder login -> 403 ($s)" [ "$s" = 403 ]
check "  ... errors permission denied" [ "$(jget "$T/body" 'd["errors"]')" = '["permission denied"]' ]
stats
check "stub recorded denied intruder" [ "$(jget "$T/stats" 'd["denied_principals"]')" = "[\"$INTRUDER\"]" ]
kdestroy -q 2>/dev/null

############################################################################
echo "# tokens"
H=(-H "X-Vault-Token: $ROBOT_TOKEN")
s=$(http GET "$URL/v1/auth/token/lookup-self" "${H[@]}")
check "lookup-self -> 200 ($s)" [ "$s" = 200 ]
TTL=$(jget "$T/body" 'd["data"]["ttl"]')
check "lookup-self ttl ~ 2764800 ($TTL)" [ "$TTL" -gt 2764700 -a "$TTL" -le 2764800 ]
check "lookup-self display_name" [ "$(jget "$T/body" 'd["data"]["display_name"]')" = "kerberos-igwn_robot-robot/ci.example.org" ]
check "lookup-self has expire_time" [ -n "$(jget "$T/body" 'd["data"]["expire_time"]')" ]
s=$(http GET "$URL/v1/auth/token/lookup-self" -H "X-Vault-Token: hvs.bogus")
check "lookup-self unknown token -> 403 ($s)" [ "$s" = 403 ]
s=$(http GET "$URL/v1/auth/token/lookup-self")
check "lookup-self without token -> 403 ($s)" [ "$s" = 403 ]

s=$(http POST "$URL/v1/auth/token/create" "${H[@]}" --data '{"ttl":"604800s","renewable":"false"}')
check "token/create ttl 604800s -> 200 ($s)" [ "$s" = 200 ]
CHILD=$(jget "$T/body" 'd["auth"]["client_token"]')
check "child lease_duration 604800" [ "$(jget "$T/body" 'd["auth"]["lease_duration"]')" = 604800 ]
check "child not renewable" [ "$(jget "$T/body" 'd["auth"]["renewable"]')" = false ]
s=$(http GET "$URL/v1/auth/token/lookup-self" -H "X-Vault-Token: $CHILD")
check "child lookup-self ttl ~ 604800" [ "$(jget "$T/body" 'd["data"]["ttl"]')" -gt 604700 ]
s=$(http POST "$URL/v1/auth/token/create" "${H[@]}" --data '{"ttl":"7d"}')
check "token/create with unsupported 'd' unit -> 400 ($s)" [ "$s" = 400 ]
s=$(http POST "$URL/v1/auth/token/create" "${H[@]}" --data '{"ttl":"9999999s"}')
check "token/create beyond max ttl is capped with a warning" bash -c \
    "[ '$s' = 200 ] && [ \"\$(\"$PY\" -c 'import json;d=json.load(open(\"$T/body\"));print(d[\"auth\"][\"lease_duration\"], len(d[\"warnings\"]))')\" = '2764800 1' ]"

echo "# creds"
CREDS="$URL/v1/secret/oauth/creds/igwn/robot/ci.example.org:robot"
s=$(http GET "$CREDS?minimum_seconds=60" -H "X-Vault-Token: $CHILD")
check "creds with child token -> 200 ($s)" [ "$s" = 200 ]
check "creds access_token is the file's JWT" [ "$(jget "$T/body" 'd["data"]["access_token"]')" = "$(cat "$T/at.jwt")" ]
check "creds type Bearer, lease_duration 0" [ "$(jget "$T/body" '[d["data"]["type"], d["lease_duration"]]')" = '["Bearer", 0]' ]
is_rfc3339() { [[ $1 =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$ ]]; }
check "creds expire_time is RFC 3339" is_rfc3339 "$(jget "$T/body" 'd["data"]["expire_time"]')"
stats
check "stub recorded minimum_seconds=60" [ "$(jget "$T/stats" 'd["last_minimum_seconds"]')" = 60 ]
s=$(http GET "$URL/v1/secret/oauth/creds/igwn/intruder:robot?minimum_seconds=60" -H "X-Vault-Token: $CHILD")
check "creds for another credkey -> 403 ($s)" [ "$s" = 403 ]
s=$(http GET "$URL/v1/secret/oauth/creds/igwn/robot/ci.example.org:other" -H "X-Vault-Token: $CHILD")
check "creds for another role -> 403 ($s)" [ "$s" = 403 ]
s=$(http GET "$URL/v1/secret/oauth/creds/other/robot/ci.example.org:robot" -H "X-Vault-Token: $CHILD")
check "creds for another issuer -> 403 ($s)" [ "$s" = 403 ]
s=$(http GET "$CREDS")
check "creds without token -> 403 ($s)" [ "$s" = 403 ]
s=$(http GET "$CREDS?minimum_seconds=7200" -H "X-Vault-Token: $CHILD")
check "creds minimum_seconds beyond the JWT's life -> 400 token expired ($s)" \
    [ "$s:$(jget "$T/body" 'd["errors"][0]')" = "400:token expired" ]
mv "$T/at.jwt" "$T/at.jwt.away"
s=$(http GET "$CREDS?minimum_seconds=60" -H "X-Vault-Token: $CHILD")
check "creds with no token in the source -> 404 ($s)" [ "$s" = 404 ]
mv "$T/at.jwt.away" "$T/at.jwt"

echo "# health, delete (htdestroytoken -f)"
s=$(http GET "$URL/v1/sys/health")
check "sys/health without a token -> 200 unsealed ($s)" \
    [ "$s:$(jget "$T/body" '[d["initialized"], d["sealed"]]')" = '200:[true, false]' ]
s=$(http DELETE "$URL/v1/secret/oauth/creds/igwn/intruder:robot" -H "X-Vault-Token: $CHILD")
check "delete another credkey's creds -> 403 ($s)" [ "$s" = 403 ]
s=$(http DELETE "$CREDS")
check "delete without a token -> 403 ($s)" [ "$s" = 403 ]
s=$(http DELETE "$CREDS" -H "X-Vault-Token: $CHILD")
check "delete own creds -> 204 ($s)" [ "$s" = 204 ]
s=$(http GET "$CREDS?minimum_seconds=60" -H "X-Vault-Token: $CHILD")
check "creds after delete -> 404 ($s)" [ "$s" = 404 ]
s=$(http DELETE "$CREDS" -H "X-Vault-Token: $CHILD")
check "delete again -> 204 ($s)" [ "$s" = 204 ]
stats
check "stub recorded the deletes" [ "$(jget "$T/stats" 'len(d["deleted_creds"])')" = 2 ]
curl -sS -X POST "$URL/__stub/reset" --data '{"creds":true}' >/dev/null
s=$(http GET "$CREDS?minimum_seconds=60" -H "X-Vault-Token: $CHILD")
check "reset {creds:true} restores the credential -> 200 ($s)" [ "$s" = 200 ]

echo "# revoke"
s=$(http POST "$URL/v1/auth/token/revoke-self" -H "X-Vault-Token: $CHILD")
check "revoke-self child -> 204 ($s)" [ "$s" = 204 ]
s=$(http GET "$URL/v1/auth/token/lookup-self" -H "X-Vault-Token: $CHILD")
check "revoked child lookup-self -> 403 ($s)" [ "$s" = 403 ]
s=$(http GET "$CREDS?minimum_seconds=60" -H "X-Vault-Token: $CHILD")
check "revoked child creds -> 403 ($s)" [ "$s" = 403 ]
s=$(http GET "$URL/v1/auth/token/lookup-self" "${H[@]}")
check "parent still valid after child revoke ($s)" [ "$s" = 200 ]
http POST "$URL/v1/auth/token/create" "${H[@]}" --data '{"ttl":"3600s"}' >/dev/null
CHILD2=$(jget "$T/body" 'd["auth"]["client_token"]')
s=$(http PUT "$URL/v1/auth/token/revoke-self" "${H[@]}")
check "PUT revoke-self parent -> 204 ($s)" [ "$s" = 204 ]
s=$(http GET "$URL/v1/auth/token/lookup-self" -H "X-Vault-Token: $CHILD2")
check "child dies with its parent -> 403 ($s)" [ "$s" = 403 ]

echo "# expire, faults, stats"
kinit -kt "$ROBOT_KT" "$ROBOT"
http POST "$VURL$LOGIN" --negotiate -u : "${RESOLVE[@]}" >/dev/null
T2=$(jget "$T/body" 'd["auth"]["client_token"]')
curl -sS -X POST "$URL/__stub/expire-tokens" --data '{"ttl":30}' >/dev/null
http GET "$URL/v1/auth/token/lookup-self" -H "X-Vault-Token: $T2" >/dev/null
check "expire-tokens {ttl:30} leaves <= 30 s" [ "$(jget "$T/body" 'd["data"]["ttl"]')" -le 30 ]
curl -sS -X POST "$URL/__stub/expire-tokens" >/dev/null
s=$(http GET "$URL/v1/auth/token/lookup-self" -H "X-Vault-Token: $T2")
check "expire-tokens -> lookup-self 403 ($s)" [ "$s" = 403 ]
s=$(http GET "$CREDS?minimum_seconds=60" -H "X-Vault-Token: $T2")
check "expired token creds -> 403 ($s)" [ "$s" = 403 ]
s=$(http POST "$VURL$LOGIN" --negotiate -u : "${RESOLVE[@]}")
check "re-login after expiry -> 200 ($s)" [ "$s" = 200 ]
T3=$(jget "$T/body" 'd["auth"]["client_token"]')

curl -sS -X POST "$URL/__stub/reset" >/dev/null
curl -sS -X POST "$URL/__stub/fail" --data '{"status":503,"times":2,"path":"/v1/secret/"}' >/dev/null
s1=$(http GET "$CREDS?minimum_seconds=10" -H "X-Vault-Token: $T3")
s2=$(http GET "$CREDS?minimum_seconds=20" -H "X-Vault-Token: $T3")
s3=$(http GET "$CREDS?minimum_seconds=30" -H "X-Vault-Token: $T3")
check "fault 503 x2 then 200 ($s1 $s2 $s3)" [ "$s1 $s2 $s3" = "503 503 200" ]
curl -sS -X POST "$URL/__stub/fail" --data '{"close":true,"times":1}' >/dev/null
s=$(http GET "$URL/v1/auth/token/lookup-self" -H "X-Vault-Token: $T3" 2>/dev/null)
check "fault close drops the connection (curl status $s)" [ "$s" = 000 ]
stats
check "stats counts: creds 3, lookup_self 1, faults 3" \
    [ "$(jget "$T/stats" '[d["requests"]["creds"], d["requests"]["lookup_self"], d["faults_injected"]]')" = '[3, 1, 3]' ]
check "stats last minimum_seconds 30 (faulted requests not recorded)" \
    [ "$(jget "$T/stats" '[d["last_minimum_seconds"], d["minimum_seconds_seen"]]')" = '[30, [30]]' ]
check "stats responses creds {503:2,200:1}" [ "$(jget "$T/stats" 'd["responses"]["creds"]')" = '{"503": 2, "200": 1}' ]
kdestroy -q 2>/dev/null

############################################################################
echo "# mint token source (second stub, SIGTERM)"
"$PY" - "$T/mint.json" "$T/mint-last.json" >"$T/mint.ready" 2>"$T/mint.log" </dev/null <<'EOF' &
import base64, http.server, json, sys, time
lifetime = 120
count = 0
def b64(x): return base64.urlsafe_b64encode(json.dumps(x).encode()).rstrip(b"=").decode()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        global count
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        count += 1
        open(sys.argv[2], "w").write(json.dumps({"count": count, "req": req}))
        claims = {"sub": req["client_id"], "exp": int(time.time()) + lifetime, "n": count}
        if "scope" in req: claims["scope"] = req["scope"]
        if "audience" in req: claims["aud"] = req["audience"]
        tok = b64({"alg": "none"}) + "." + b64(claims) + ".c2ln"
        body = json.dumps({"access_token": tok, "token_type": "Bearer", "expires_in": lifetime}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOF
MINT_PID=$!
for _ in $(seq 100); do [ -s "$T/mint.ready" ] && break; sleep 0.05; done
MINT_PORT=$(cat "$T/mint.ready")
"$PY" "$HERE/vault_stub.py" --port 0 --service-keytab "$SERVICE_KT" --krb5-config "$KRB5_CONFIG" \
    --issuer igwn --role robot --principal-map "$ROBOT=robot-credkey" \
    --token-source "http://127.0.0.1:$MINT_PORT/__test/mint" --mint-scope "compute.read" \
    </dev/null >"$T/stub2.ready" 2>"$T/stub2.log" &
STUB2_PID=$!
for _ in $(seq 100); do [ -s "$T/stub2.ready" ] && break; sleep 0.05; done
URL2=$(jget "$T/stub2.ready" 'd["url"]')
PORT2=$(jget "$T/stub2.ready" 'd["port"]')
kinit -kt "$ROBOT_KT" "$ROBOT"
s=$(http POST "http://localhost:$PORT2$LOGIN" --negotiate -u : --resolve "localhost:$PORT2:127.0.0.1")
check "stub2 login -> 200 ($s)" [ "$s" = 200 ]
V=$(jget "$T/body" 'd["auth"]["client_token"]')
C2="$URL2/v1/secret/oauth/creds/igwn/robot-credkey:robot"
s=$(http GET "$URL2/v1/secret/oauth/creds/igwn/robot/ci.example.org:robot" -H "X-Vault-Token: $V")
check "principal-map: default credkey refused when mapped -> 403 ($s)" [ "$s" = 403 ]
s=$(http GET "$C2?minimum_seconds=60" -H "X-Vault-Token: $V")
check "mint source creds -> 200 ($s)" [ "$s" = 200 ]
A1=$(jget "$T/body" 'd["data"]["access_token"]')
check "mint request body" [ "$(jget "$T/mint-last.json" 'd["req"]')" = '{"client_id": "robot-basic", "scope": "compute.read"}' ]
http GET "$C2?minimum_seconds=60" -H "X-Vault-Token: $V" >/dev/null
A2=$(jget "$T/body" 'd["data"]["access_token"]')
check "second read reuses the cached access token" [ "$A1" = "$A2" ]
s=$(http GET "$C2?minimum_seconds=300" -H "X-Vault-Token: $V")
check "minimum_seconds 300 > 120 s tokens -> re-mint then 400 ($s)" [ "$s:$(jget "$T/mint-last.json" 'd["count"]')" = "400:2" ]
s=$(http GET "$URL2/v1/secret/oauth/sts/igwn/robot-credkey:robot?minimum_seconds=60&scopes=a.read,b.write&audiences=https://x.example" -H "X-Vault-Token: $V")
check "sts with scopes/audiences -> 200 ($s)" [ "$s" = 200 ]
check "sts passes scope and audience to the mint" \
    [ "$(jget "$T/mint-last.json" 'd["req"]')" = '{"client_id": "robot-basic", "scope": "a.read b.write", "audience": "https://x.example"}' ]
kill -TERM "$STUB2_PID"
gone=false
for _ in $(seq 50); do kill -0 "$STUB2_PID" 2>/dev/null || { gone=true; break; }; sleep 0.1; done
check "stub exits on SIGTERM" $gone
wait "$STUB2_PID" 2>/dev/null
check "  ... with exit code 0 ($?)" [ "$?" = 0 ]
STUB2_PID=
kill "$MINT_PID" 2>/dev/null
MINT_PID=

############################################################################
echo "# shutdown"
eval "exec ${STUB_IN}>&-"
gone=false
for _ in $(seq 50); do kill -0 "$MY_STUB_PID" 2>/dev/null || { gone=true; break; }; sleep 0.1; done
check "stub exits when its stdin closes" $gone
MY_STUB_PID=
"$HERE/kdc.sh" stop "$T/kdc"
check "kdc.sh stop" bash -c "! '$HERE/kdc.sh' status '$T/kdc'"
kinit -kt "$ROBOT_KT" "$ROBOT" >"$T/kinit-down.out" 2>&1
check "kinit with KDC stopped fails with 'Cannot contact any KDC'" grep -q 'Cannot contact any KDC' "$T/kinit-down.out"
check "/etc/krb5.conf untouched by the tests" bash -c "[ ! -e /etc/krb5.conf ] || [ /etc/krb5.conf -ot '$T/kdc.json' ]"

echo "# timings: kdc.sh start ${KDC_MS} ms, stub ready ${STUB_MS} ms, kinit ${KINIT_MS} ms"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
