#!/usr/bin/env bash
# robot-token against a REAL HTCondor: Debian trixie's minicondor (23.9.6) in a
# debootstrap chroot (bookworm has no HTCondor), cached between runs.
#
#   sudo scripts/condor-real.sh        # root: debootstrap, chroot, mount
#
# 1. builds the chroot once (debootstrap minbase + apt-get install minicondor) under
#    $ROBOT_TOKEN_CONDOR_CACHE (default /var/cache/robot-token-condor);
# 2. starts a personal condor (LINUX_KERNEL_TUNING_SCRIPT empty: a chroot shares the
#    host's kernel) whose SCITOKENS method trusts the test issuer (tests/peer): its
#    JWKS is seeded into the schedd's SciTokens key cache as the condor user, since
#    the schedd cannot fetch JWKS over https from a loopback http issuer;
# 3. runs `robot-token get --condor` (a real refresh at the issuer) inside the chroot;
# 4. proves `condor_ping -type schedd WRITE` with SCITOKENS only fails with an expired
#    token and succeeds with the file robot-token wrote (by _CONDOR_SCITOKENS_FILE and
#    by BEARER_TOKEN_FILE discovery), and that --condor=credd refuses HTCondor 23.9.
# Stops condor (condor_off -master) and unmounts on every exit. Ends with
# "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

CACHE=${ROBOT_TOKEN_CONDOR_CACHE:-/var/cache/robot-token-condor}
ROOT=$CACHE/trixie-minicondor
STAMP=$ROOT/.robot-token-ready
AUD=robot-token-test-schedd
passed=0
T0=$SECONDS
failed=0

say() { echo "condor-real: $*"; }
die() { echo "condor-real: error: $*" >&2; exit 1; }
ok() { passed=$((passed + 1)); say "PASS [$((SECONDS - T0)) s] $*"; }
bad() { failed=$((failed + 1)); say "FAIL [$((SECONDS - T0)) s] $*"; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mount)"
mkdir -p "$CACHE"
# One run at a time: the daemons listen on the host's port 9618.
exec 9>"$CACHE/lock"
flock -n 9 || die "another run holds $CACHE/lock"

mirror() {
    local m
    m=$(grep -rhoE 'https?://[^ ]*debian\.org/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null |
        grep -v security | head -n1 || true)
    echo "${DEBIAN_MIRROR:-${m:-http://deb.debian.org/debian}}"
}

build_chroot() {
    if [ -f "$STAMP" ]; then
        say "chroot cached: $ROOT ($(chroot "$ROOT" condor_version | head -n1))"
        return
    fi
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
    local tmp=$ROOT.partial
    umount "$tmp/proc" 2>/dev/null || true
    rm -rf "$tmp"
    local t0=$SECONDS
    say "building the trixie chroot from $(mirror) (once; cached in $ROOT)"
    debootstrap --variant=minbase trixie "$tmp" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 ||
        die "debootstrap failed: see $CACHE/debootstrap.log"
    mount -t proc proc "$tmp/proc"
    # apt resolves what debootstrap's --include cannot (virtual packages).
    if ! { chroot "$tmp" apt-get update -qq &&
        chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends minicondor python3 openssl &&
        chroot "$tmp" apt-get clean; } >>"$CACHE/debootstrap.log" 2>&1; then
        umount "$tmp/proc"
        die "installing minicondor failed: see $CACHE/debootstrap.log"
    fi
    umount "$tmp/proc"
    mv "$tmp" "$ROOT"
    touch "$STAMP"
    say "chroot built in $((SECONDS - t0)) s"
}

ISSUER_PID=
cleanup() {
    set +e
    if [ -n "$ISSUER_PID" ]; then kill "$ISSUER_PID" 2>/dev/null; wait "$ISSUER_PID" 2>/dev/null; fi
    if mountpoint -q "$ROOT/proc"; then
        chroot "$ROOT" condor_off -master >/dev/null 2>&1
        # Wait for every process whose root is the chroot (ours, and only ours), then
        # kill what is left, so that /proc can be unmounted.
        for _ in $(seq 1 100); do
            [ -z "$(chroot_pids)" ] && break
            sleep 0.1
        done
        for p in $(chroot_pids); do kill -9 "$p" 2>/dev/null; done
        sleep 0.2
        umount "$ROOT/proc" || umount -l "$ROOT/proc"
    fi
}
chroot_pids() {
    local d p
    for d in /proc/[0-9]*; do
        p=$(readlink "$d/root" 2>/dev/null) || continue
        [ "$p" = "$ROOT" ] && echo "${d#/proc/}"
    done
}

start_issuer() {
    [ -d tests/peer/node_modules ] || scripts/install-peers.sh
    local out=$RUNDIR/issuer.out
    node tests/peer/issuer.mjs --port 0 --ignore-stdin >"$out" 2>"$RUNDIR/issuer.log" </dev/null &
    ISSUER_PID=$!
    for _ in $(seq 1 100); do
        [ -s "$out" ] && break
        sleep 0.05
    done
    ISS=$(sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p' "$out")
    [ -n "$ISS" ] || die "the test issuer did not start: see $RUNDIR/issuer.log"
    PORT=${ISS##*:}
    say "test issuer $ISS"
}

# The chroot's python3 (the host may have none) talks to the issuer: same network.
py() { chroot "$ROOT" python3 -c "$@"; }

# POST /__test/mint; prints one field of the answer.
mint() {
    py 'import json, sys, urllib.request as u
r = u.Request(sys.argv[1] + "/__test/mint", data=sys.argv[2].encode(),
              headers={"Content-Type": "application/json"})
print(json.load(u.urlopen(r))[sys.argv[3]])' "$ISS" "$1" "$2"
}

start_condor() {
    mount -t proc proc "$ROOT/proc"
    # A fresh state for each run.
    rm -rf "$ROOT/var/log/condor/"* "$ROOT/var/lib/condor/spool/"* "$ROOT/var/lib/condor/execute/"* "$ROOT/run/condor"
    chroot "$ROOT" sh -ec '
        mkdir -p /run/condor/cache /var/lock/condor
        chown -R condor:condor /run/condor /var/log/condor /var/lock/condor
        cd /etc/condor
        if [ ! -f host.pem ]; then
            openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$1" \
                -addext "subjectAltName=DNS:$1,DNS:localhost,IP:127.0.0.1" \
                -keyout host.key -out host.pem 2>/dev/null
            chown condor:condor host.key; chmod 600 host.key
        fi' sh "$(hostname)"
    cat >"$ROOT/etc/condor/config.d/99-robot-token.conf" <<EOF
# robot-token's real-HTCondor test (scripts/condor-real.sh)
# A chroot shares the host's kernel: never let the stock script tune it.
LINUX_KERNEL_TUNING_SCRIPT =
DAEMON_LIST = MASTER COLLECTOR SCHEDD CREDD
# No SEC_CREDENTIAL_DIRECTORY_OAUTH: the credd answers "configuration error".
SEC_DEFAULT_AUTHENTICATION_METHODS = FS, SCITOKENS
SCITOKENS_SERVER_AUDIENCE = $AUD
CERTIFICATE_MAPFILE = /etc/condor/robot-token.mapfile
# SCITOKENS runs inside TLS: the schedd needs a certificate the client trusts.
AUTH_SSL_SERVER_CERTFILE = /etc/condor/host.pem
AUTH_SSL_SERVER_KEYFILE = /etc/condor/host.key
AUTH_SSL_CLIENT_CAFILE = /etc/condor/host.pem
SCHEDD_DEBUG = D_SECURITY
EOF
    printf '%s\n' "SCITOKENS \"$ISS,robot-user\" robot@robot-token.test" 'FS (.*) \1' \
        >"$ROOT/etc/condor/robot-token.mapfile"
    # Seed the issuer's JWKS into scitokens-cpp's key cache, as condor, with long
    # update and expiry intervals: the schedd then never tries to fetch it.
    py 'import sys, urllib.request as u; sys.stdout.write(u.urlopen(sys.argv[1]).read().decode())' \
        "$ISS/__test/jwks" >"$ROOT/run/condor/jwks.json"
    cat >"$ROOT/run/condor/seed.py" <<'EOF'
import ctypes, sys
lib = ctypes.CDLL("libSciTokens.so.0")
err = ctypes.c_char_p()
P = ctypes.POINTER(ctypes.c_char_p)
lib.scitoken_config_set_str.argtypes = [ctypes.c_char_p, ctypes.c_char_p, P]
lib.scitoken_config_set_int.argtypes = [ctypes.c_char_p, ctypes.c_int, P]
lib.keycache_set_jwks.argtypes = [ctypes.c_char_p, ctypes.c_char_p, P]
cache, issuer, jwks = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
for k in ("keycache.update_interval_s", "keycache.expiration_interval_s"):
    if lib.scitoken_config_set_int(k.encode(), 30 * 86400, ctypes.byref(err)):
        sys.exit("%s: %s" % (k, err.value))
if lib.scitoken_config_set_str(b"keycache.cache_home", cache.encode(), ctypes.byref(err)):
    sys.exit("keycache.cache_home: %s" % err.value)
if lib.keycache_set_jwks(issuer.encode(), jwks.encode(), ctypes.byref(err)):
    sys.exit("keycache_set_jwks: %s" % err.value)
EOF
    local cache
    cache=$(chroot "$ROOT" condor_config_val SEC_SCITOKENS_CACHE)
    chroot --userspec=condor:condor "$ROOT" python3 /run/condor/seed.py "$cache" "$ISS" /run/condor/jwks.json ||
        die "seeding the SciTokens key cache failed"
    chroot "$ROOT" condor_master
    for _ in $(seq 1 200); do
        chroot "$ROOT" condor_ping -type schedd READ >/dev/null 2>&1 && return
        sleep 0.1
    done
    die "the schedd did not come up: see $ROOT/var/log/condor/"
}

# condor_ping WRITE with SCITOKENS only; extra env assignments as arguments.
ping_write() {
    chroot "$ROOT" env -i PATH=/usr/bin:/bin:/usr/sbin HOME=/tmp/rt/home \
        _CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS=SCITOKENS "$@" \
        condor_ping -type schedd -verbose WRITE 2>&1
}

# As cron runs it: PATH=/usr/bin:/bin.
robot_token() {
    chroot "$ROOT" env -i PATH=/usr/bin:/bin HOME=/tmp/rt/home /tmp/rt/robot-token "$@"
}

main() {
    local t0=$SECONDS
    build_chroot
    local t_built=$SECONDS
    cargo build --locked -q
    RUNDIR=$ROOT/tmp/rt
    rm -rf "$RUNDIR"
    mkdir -p -m 0700 "$RUNDIR" "$RUNDIR/home"
    cp "${CARGO_TARGET_DIR:-$REPO/target}/debug/robot-token" "$RUNDIR/robot-token"
    trap cleanup EXIT
    start_issuer
    start_condor
    say "personal condor up ($(chroot "$ROOT" condor_version | head -n1))"

    # A real grant at the issuer, for a robot whose tokens the schedd accepts.
    local scope="openid offline_access condor:/READ condor:/WRITE" rt
    rt=$(mint "{\"client_id\":\"robot-basic\",\"scope\":\"$scope\",\"audience\":\"$AUD\"}" refresh_token)
    (umask 077 && cat >"$RUNDIR/cred.json" <<EOF
{"version": 1, "issuer": "$ISS", "client_id": "robot-basic", "client_secret": "robot-basic-secret",
 "scope": "$scope", "refresh_token": "$rt"}
EOF
    )
    # The token file starts with a correctly signed but expired token.
    (umask 077 && mint "{\"client_id\":\"robot-basic\",\"scope\":\"$scope\",\"audience\":\"$AUD\",\"expired\":true}" \
        access_token >"$RUNDIR/bt")

    local out
    out=$(ping_write _CONDOR_SCITOKENS_FILE=/tmp/rt/bt) && rc=0 || rc=$?
    say "expired token: condor_ping exit $rc: $(echo "$out" | grep -m1 -E 'WRITE failed|Authorized')"
    if [ "$rc" != 0 ] && echo "$out" | grep -q 'WRITE failed' &&
        grep -q 'token expired' "$ROOT/var/log/condor/SchedLog"; then
        ok "condor_ping WRITE fails with the expired token (SchedLog: $(grep -m1 -o 'SCITOKENS error: .*token expired' "$ROOT/var/log/condor/SchedLog"))"
    else
        bad "condor_ping WRITE with an expired token: exit $rc: $out"
    fi

    out=$(robot_token get -c /tmp/rt/cred.json -o /tmp/rt/bt -m 60 --condor -v 2>"$RUNDIR/get.err") && rc=0 || rc=$?
    if [ "$rc" = 0 ] && echo "$out" | grep -qx 'export _CONDOR_SCITOKENS_FILE=/tmp/rt/bt' &&
        echo "$out" | grep -qx 'scitokens_file = /tmp/rt/bt'; then
        ok "robot-token get --condor -v renewed /tmp/rt/bt and printed: $(echo "$out" | head -n1)"
    else
        bad "robot-token get --condor: exit $rc: $out $(cat "$RUNDIR/get.err")"
    fi
    if py 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(not (d.endswith(b"\n") and d.count(b"\n") == 1 and b"\r" not in d and d.count(b".") == 2))' /tmp/rt/bt; then
        ok "the token file is a raw JWT and one newline"
    else
        bad "the token file is not a raw JWT and one newline"
    fi

    out=$(ping_write _CONDOR_SCITOKENS_FILE=/tmp/rt/bt) && rc=0 || rc=$?
    say "renewed token: condor_ping exit $rc: $(echo "$out" | grep -E 'Authenticated using|Remote Mapping|Authorized' | tr -s ' ' | paste -sd';')"
    if [ "$rc" = 0 ] && echo "$out" | grep -qE '^Authorized: +TRUE' &&
        echo "$out" | grep -qE '^Authenticated using: +SCITOKENS'; then
        ok "condor_ping WRITE succeeds with _CONDOR_SCITOKENS_FILE=/tmp/rt/bt"
    else
        bad "condor_ping WRITE with the renewed token: exit $rc: $out"
    fi

    out=$(ping_write BEARER_TOKEN_FILE=/tmp/rt/bt) && rc=0 || rc=$?
    if [ "$rc" = 0 ] && echo "$out" | grep -qE '^Authorized: +TRUE'; then
        ok "condor_ping WRITE succeeds by WLCG discovery (BEARER_TOKEN_FILE=/tmp/rt/bt)"
    else
        bad "condor_ping WRITE by discovery: exit $rc: $out"
    fi

    local before
    before=$(sha256sum "$RUNDIR/bt")
    credd() { robot_token get -c /tmp/rt/cred.json -o /tmp/rt/bt -m 60 --timeout 20s \
        --condor=credd --condor-service robot_svc 2>&1; }
    out=$(credd) && rc=0 || rc=$?
    if [ "$rc" = 78 ] && echo "$out" | grep -q 'HTCondor 23.9.6 cannot store a plain access token' &&
        [ "$(sha256sum "$RUNDIR/bt")" = "$before" ]; then
        ok "--condor=credd refuses HTCondor 23.9.6 (exit 78), token file intact: $out"
    else
        bad "--condor=credd on 23.9.6: exit $rc: $out"
    fi

    # The exit-code rule against the real condor_store_cred's answers. Only
    # condor_version is replaced (a script saying 24.x, first on PATH), so that
    # robot-token goes on to run the real condor_store_cred 23.9.6.
    fake_version() {
        mkdir -p "$RUNDIR/bin"
        printf '#!/bin/sh\necho "\$CondorVersion: %s 2025-01-01 PackageID: %s-1 \$"\n' "$1" "$1" \
            >"$RUNDIR/bin/condor_version"
        chmod 755 "$RUNDIR/bin/condor_version"
    }
    credd_as() { chroot "$ROOT" env -i PATH=/tmp/rt/bin:/usr/bin:/bin HOME=/tmp/rt/home \
        /tmp/rt/robot-token get -c /tmp/rt/cred.json -o /tmp/rt/bt -m 60 --timeout 20s \
        --condor=credd --condor-service robot_svc 2>&1; }
    fake_version 24.10.2
    out=$(credd_as) && rc=0 || rc=$?
    if [ "$rc" = 78 ] && echo "$out" | grep -q "Unrecognized option - '-P'" &&
        [ "$(sha256sum "$RUNDIR/bt")" = "$before" ]; then
        ok "real condor_store_cred without -P support: exit 78: $out"
    else
        bad "real condor_store_cred given -P: exit $rc: $out"
    fi
    fake_version 24.8.0
    out=$(credd_as) && rc=0 || rc=$?
    if [ "$rc" = 78 ] && echo "$out" | grep -q 'configuration error' &&
        [ "$(sha256sum "$RUNDIR/bt")" = "$before" ]; then
        ok "real credd without SEC_CREDENTIAL_DIRECTORY_OAUTH: exit 78: $out"
    else
        bad "real credd misconfigured: exit $rc: $out"
    fi
    chroot "$ROOT" condor_off -daemon credd >/dev/null 2>&1
    for _ in $(seq 1 100); do
        chroot "$ROOT" condor_status -any -af MyType 2>/dev/null | grep -q '^CredD$' || break
        sleep 0.1
    done
    sleep 1
    out=$(credd_as) && rc=0 || rc=$?
    if [ "$rc" = 75 ] && echo "$out" | grep -q 'could not reach the credd' &&
        [ "$(sha256sum "$RUNDIR/bt")" = "$before" ]; then
        ok "real condor_store_cred with the credd down: exit 75: $out"
    else
        bad "real condor_store_cred, credd down: exit $rc: $out"
    fi
    if [ ! -e "$RUNDIR/home/.condor/tokens.d" ]; then
        ok "nothing written into ~/.condor/tokens.d"
    else
        bad "$RUNDIR/home/.condor/tokens.d exists"
    fi

    say "chroot ready in $((t_built - t0)) s; test in $((SECONDS - t_built)) s"
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
}

main "$@"
