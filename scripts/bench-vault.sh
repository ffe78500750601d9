#!/usr/bin/env bash
# Keytab robots: robot-token side by side with htgettoken 2.2 and igwn-robot-get 0.3.3
# (installed from PyPI into a venv by this script), against the same real MIT KDC and
# htvault-config look-alike (tests/vault, over https with the test CA), all on 127.0.0.1.
#
#   scripts/bench-vault.sh              # human-readable report on stdout
#   scripts/bench-vault.sh --markdown   # a markdown section (scripts/bench.sh appends it
#                                       # to docs/benchmarks.md)
#
# Cases, each a cron run timed by hyperfine (warm-up, then BENCH_VAULT_RUNS runs, 30 by
# default), with max RSS from /usr/bin/time -v and the Vault/KDC requests of one run:
#   fresh    the token file already holds a token with more than --minsecs left;
#   renew    the token must be renewed; the cached Vault token is still valid;
#   login    the token must be renewed and there is no cached Vault token: Kerberos
#            login (the Kerberos ticket itself is still valid in each tool's cache);
#   cold     the same with an empty Kerberos cache: tickets from the keytab first
#            (not htgettoken, which cannot use a keytab: its crontab runs kinit first).
# Needs root for apt-get when packages are missing (hyperfine, Kerberos, and what pip
# needs to build python-gssapi for igwn-auth-utils: gcc, libkrb5-dev, python3-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
markdown=0
[ "${1:-}" = "--markdown" ] && markdown=1
runs=${BENCH_VAULT_RUNS:-30}
venv=${BENCH_VAULT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/robot-token/bench-vault-venv}
log() { echo "bench-vault: $*" >&2; }

apt_need=()
command -v hyperfine >/dev/null || apt_need+=(hyperfine)
[ -x /usr/bin/time ] || apt_need+=(time)
command -v gcc >/dev/null || apt_need+=(gcc)
command -v krb5-config >/dev/null || apt_need+=(libkrb5-dev)
[ -e "/usr/include/python3.$(/usr/bin/python3 -c 'import sys; print(sys.version_info[1])')/Python.h" ] || apt_need+=(python3-dev)
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || apt_need+=(python3-venv)
if [ ${#apt_need[@]} -gt 0 ]; then
  log "installing ${apt_need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_need[@]}" >/dev/null
fi
scripts/install-peers.sh >/dev/null

# The comparison tools, pinned. --system-site-packages is not needed for them, but
# Debian's python3 is the one the Kerberos test peers use too.
if ! "$venv/bin/htgettoken" --version 2>&1 | grep -q '2\.2' ||
   ! [ -x "$venv/bin/igwn-robot-get" ]; then
  log "installing htgettoken 2.2 and igwn-robot-auth 0.3.3 from PyPI into $venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check htgettoken==2.2 igwn-robot-auth==0.3.3 >&2
fi
ht_version=$("$venv/bin/pip" show htgettoken 2>/dev/null | sed -n 's/^Version: //p')
igwn_version=$("$venv/bin/pip" show igwn-robot-auth 2>/dev/null | sed -n 's/^Version: //p')
utils_version=$("$venv/bin/pip" show igwn-auth-utils 2>/dev/null | sed -n 's/^Version: //p')

cargo build --release --locked --quiet
bin=${BENCH_BIN:-$root/target/release/robot-token}

work=$(mktemp -d /tmp/robot-token-bench-vault.XXXXXX)
chmod 700 "$work"
stub_pid=
cleanup() {
  [ -n "$stub_pid" ] && kill "$stub_pid" 2>/dev/null
  tests/vault/kdc.sh stop "$work/kdc" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

tests/vault/kdc.sh start "$work/kdc" >"$work/kdc.json"
export KRB5_CONFIG=$work/kdc/krb5.conf
unset KRB5CCNAME KRB5_KTNAME KRB5_CLIENT_KTNAME BEARER_TOKEN BEARER_TOKEN_FILE HTGETTOKENOPTS
kt=$work/kdc/robot.keytab
principal=robot/ci.example.org@ROBOT.TEST
ca=$root/tests/peer/keys/tls-ca.pem

# A JWT the stub serves, valid 30 days (signature not checked by any of the tools).
/usr/bin/python3 - >"$work/source.jwt" <<'PY'
import base64, json, time
b = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
print(b({"alg": "RS256", "typ": "JWT", "kid": "bench"}) + "." +
      b({"iss": "https://issuer.example.org", "sub": "robot", "scope": "compute.read",
         "exp": int(time.time()) + 30 * 86400}) + "." + b({"sig": "bench"}))
PY
/usr/bin/python3 tests/vault/vault_stub.py --port 0 --issuer igwn --role robot \
  --service-keytab "$work/kdc/service.keytab" --krb5-config "$KRB5_CONFIG" \
  --token-source "$work/source.jwt" \
  --tls-cert tests/peer/keys/tls.pem --tls-key tests/peer/keys/tls.key.pem \
  </dev/null >"$work/stub.ready" 2>"$work/stub.log" &
stub_pid=$!
for _ in $(seq 100); do [ -s "$work/stub.ready" ] && break; sleep 0.05; done
port=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$work/stub.ready")
server=localhost:$port
stats() { curl -sS --cacert "$ca" "https://127.0.0.1:$port/__stub/stats"; }
reset() { curl -sS --cacert "$ca" -X POST "https://127.0.0.1:$port/__stub/reset" >/dev/null; }
kdc_requests() { grep -c 'AS_REQ\|TGS_REQ' "$work/kdc/kdc.log" || true; }

mkdir -m 700 "$work/home"
# Each tool with its own token file, Vault token file and Kerberos cache.
rt="env HOME=$work/home $bin get -a $server -i igwn -k $kt --cafile $ca -o $work/bt-rt --vault-token-file $work/vt-rt -m 60"
ht="env KRB5CCNAME=FILE:$work/cc-ht $venv/bin/htgettoken -q -a $server -i igwn -r robot --credkey robot/ci.example.org --cafile $ca -o $work/bt-ht --vaulttokenfile $work/vt-ht --minsecs 60 --nooidc --nossh"
igwn="env HTGETTOKENOPTS=--cafile=$ca $venv/bin/igwn-robot-get -k $kt -c FILE:$work/cc-igwn -a $server -i igwn -o $work/bt-igwn --vaulttokenfile $work/vt-igwn -m 60"
# htgettoken uses the ticket in KRB5CCNAME; the robot gets it as its crontab would.
KRB5CCNAME=FILE:$work/cc-ht kinit -kt "$kt" "$principal"

declare -A CMD=([robot-token]=$rt [htgettoken]=$ht [igwn-robot-get]=$igwn)
declare -A SUFFIX=([robot-token]=rt [htgettoken]=ht [igwn-robot-get]=igwn)
tools=(robot-token htgettoken igwn-robot-get)

# One warm-up run each: every tool now has a token, a Vault token and a ticket.
for t in "${tools[@]}"; do
  ${CMD[$t]} >/dev/null 2>"$work/$t.err" || { log "$t failed: $(tail -3 "$work/$t.err")"; exit 1; }
done

: >"$work/rows"
declare -A MEDIAN
# measure TOOL CASE PREPARE
measure() {
  local t=$1 case=$2 prepare=$3 cmd=${CMD[$1]}
  # Requests of one run, counted by the stub and the KDC's log.
  bash -c "$prepare"
  reset
  local k0 k1 v
  k0=$(kdc_requests)
  $cmd >/dev/null 2>&1
  k1=$(kdc_requests)
  v=$(stats | /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["requests"]; print(" ".join(f"{k}:{n}" for k,n in r.items() if n) or "none")')
  hyperfine -N --warmup 3 --runs "$runs" --prepare "$prepare" --export-json "$work/h.json" "$cmd" >/dev/null 2>&1 ||
    hyperfine --warmup 3 --runs "$runs" --prepare "$prepare" --export-json "$work/h.json" "$cmd" >/dev/null
  local rss
  bash -c "$prepare"
  rss=$(/usr/bin/time -v $cmd 2>&1 >/dev/null | sed -n 's/.*Maximum resident set size (kbytes): //p' | tail -1)
  /usr/bin/python3 - "$work/h.json" "$t" "$case" "${rss:-0}" "$v" "$((k1 - k0))" >>"$work/rows" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
ms = lambda s: f"{s*1000:.1f} ms"
print(f"| {sys.argv[3]} | {sys.argv[2]} | {ms(r['median'])} | {ms(r['min'])} | {ms(r['max'])} | {int(sys.argv[4])/1024:.1f} MB | {sys.argv[5]} | {sys.argv[6]} |")
PY
  MEDIAN[$t/$case]=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$work/h.json")
}

for t in "${tools[@]}"; do
  s=${SUFFIX[$t]}
  log "measuring $t"
  measure "$t" fresh "true"
  measure "$t" renew "rm -f $work/bt-$s"
  measure "$t" login "rm -f $work/bt-$s $work/vt-$s"
done
measure robot-token cold "rm -rf $work/bt-rt $work/vt-rt $work/home/.cache/robot-token/krb5"
measure igwn-robot-get cold "rm -f $work/bt-igwn $work/vt-igwn $work/cc-igwn"

ratio() { /usr/bin/python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.0f}x')" "$1" "$2"; }
{
  if [ "$markdown" = 1 ]; then
    echo "## Keytab robots (Vault): robot-token vs htgettoken and igwn-robot-get"
    echo
  fi
  echo "Produced by \`scripts/bench-vault.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores, $(uname -m)): htgettoken $ht_version,"
  echo "igwn-robot-auth $igwn_version (igwn-auth-utils $utils_version) from PyPI in a venv, and robot-token (release build), against"
  echo "the same MIT KDC and htvault-config look-alike (tests/vault, https with the test CA) on 127.0.0.1;"
  echo "hyperfine, $runs runs after 3 warm-up runs; max RSS from \`/usr/bin/time -v\`; requests counted by the"
  echo "stub and the KDC log for one run. Each tool has its own token file, Vault token file and Kerberos cache."
  echo
  echo "- **fresh**: the token file holds a token with more than \`--minsecs\` left (a normal cron run);"
  echo "- **renew**: the token must be renewed, the cached Vault token is valid;"
  echo "- **login**: the token must be renewed and no Vault token is cached: Kerberos login (the ticket is still valid);"
  echo "- **cold**: the same with an empty Kerberos cache, so tickets come from the keytab first (htgettoken cannot"
  echo "  read a keytab: its crontab runs \`kinit -kt\` before it)."
  echo
  echo "| case | tool | median | min | max | max RSS | Vault requests (one run) | KDC requests |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  cat "$work/rows"
  echo
  echo "- fresh: robot-token is $(ratio "${MEDIAN[htgettoken/fresh]}" "${MEDIAN[robot-token/fresh]}") faster than htgettoken and $(ratio "${MEDIAN[igwn-robot-get/fresh]}" "${MEDIAN[robot-token/fresh]}") faster than igwn-robot-get, with no Vault or KDC request;"
  echo "  both Python tools ask Vault for the token (and rewrite the file) on every run."
  echo "- Every command of this table runs through \`env(1)\` (one extra exec, about 0.6 ms, the same for each"
  echo "  tool); scripts/bench.sh's first table has robot-token's fresh run without it."
  echo "- cold: $(ratio "${MEDIAN[igwn-robot-get/cold]}" "${MEDIAN[robot-token/cold]}") (igwn-robot-get over robot-token)."
  echo "- renew: $(ratio "${MEDIAN[htgettoken/renew]}" "${MEDIAN[robot-token/renew]}") / $(ratio "${MEDIAN[igwn-robot-get/renew]}" "${MEDIAN[robot-token/renew]}"); login: $(ratio "${MEDIAN[htgettoken/login]}" "${MEDIAN[robot-token/login]}") / $(ratio "${MEDIAN[igwn-robot-get/login]}" "${MEDIAN[robot-token/login]}") (htgettoken / igwn-robot-get time over robot-token's)."
  echo "- htgettoken's default --vaulttokenminttl is 0, so its renew case is one creds read; robot-token and"
  echo "  igwn-robot-get check the Vault token's remaining life first (lookup-self, 24 h minimum)."
}
