#!/usr/bin/env bash
# robot-token against a REAL HTCondor 25: a one-slot pool on 127.0.0.1 (master,
# collector, negotiator, schedd, startd, credd; no credmon) in a Debian trixie
# debootstrap chroot with sid's `condor` package (bookworm has no HTCondor; the PyPI
# wheel has no daemons). scripts/test.sh runs it; alone:
#
#   sudo scripts/condor-real.sh            # root: debootstrap, chroot, mount
#
# Proves, against the real pool (see "What the tests prove" in the README):
#   1. get --condor=credd stores exactly the token file's bytes as the credd's S.use,
#      with -P, and renews early by the pool's SEC_CREDENTIAL_REFRESH;
#   2. a vanilla job with use_oauth_services = S reads exactly that token;
#   3. a renewal while the job runs reaches it within one SEC_CREDENTIAL_REFRESH (30 s
#      here; the delay is measured);
#   4. condor_ping -type schedd WRITE authenticates with the token file through
#      SCITOKENS (and fails with an expired token);
#   5. credd down: exit 75 with the token file written; a store the credd refuses: 78;
#   6. --condor=vault-storer runs condor_credential_storer and names what failed;
#   and that the host's kernel settings are unchanged afterwards.
#
# The chroot is built once (about 100 s) and cached at $ROBOT_TOKEN_CONDOR_CACHE
# (default /var/cache/robot-token-condor), outside the clone; the Debian mirror is the
# host's own (its apt sources), or $DEBIAN_MIRROR. Every process is stopped by PID and
# /proc unmounted on every exit. Ends with "condor-real: N passed, N failed".
# Exit 0 all passed, 1 a failure, 77 cannot run here (not root, no debootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

CACHE=${ROBOT_TOKEN_CONDOR_CACHE:-/var/cache/robot-token-condor}
ROOT=$CACHE/trixie-condor25
STAMP=$ROOT/.robot-token-ready
# What the chroot holds; a cached chroot built from another recipe is rebuilt.
RECIPE="v1 trixie minbase; sid pinned at 100 for condor libpcre2-8-0; python3 openssl libgssapi-krb5-2; user robot"
SID_PACKAGES="condor libpcre2-8-0"
AUD=robot-token-test-schedd
SVC=robotsvc
REFRESH=30
# Every sysctl HTCondor's linux_kernel_tuning script writes.
SYSCTLS="kernel.pid_max net.ipv4.ip_local_port_range vm.dirty_bytes net.core.rmem_max
    fs.pipe-user-pages-soft fs.file-max net.core.somaxconn kernel.keys.root_maxkeys
    kernel.keys.root_maxbytes"

passed=0
failed=0
T0=$SECONDS
say() { echo "condor-real: $*"; }
die() {
    echo "condor-real: error: $*" >&2
    exit 1
}
skip() {
    echo "condor-real: NOT RUN: $*"
    exit 77
}
ok() {
    passed=$((passed + 1))
    say "PASS [$((SECONDS - T0)) s] $*"
}
bad() {
    failed=$((failed + 1))
    say "FAIL [$((SECONDS - T0)) s] $*"
}

[ "$(id -u)" = 0 ] || skip "must run as root (debootstrap, chroot, mount)"
if ! command -v debootstrap >/dev/null; then
    command -v apt-get >/dev/null || skip "debootstrap is not installed and there is no apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } ||
        skip "debootstrap is not installed and apt-get install debootstrap failed"
fi
mkdir -p "$CACHE"
# One pool at a time on this host (and one build of the cache).
exec 9>"$CACHE/lock"
if ! flock -n 9; then
    say "waiting for another run (lock $CACHE/lock)"
    flock -w 1800 9 || die "another run has held $CACHE/lock for 30 minutes"
fi

sysctls() {
    local k
    for k in $SYSCTLS; do
        printf '%s = %s\n' "$k" "$(tr -s ' \t' ' ' <"/proc/sys/${k//.//}" 2>/dev/null || echo absent)"
    done
}
SYSCTLS_BEFORE=$(sysctls)

# The host's Debian mirror: the first http(s) apt source (one-line or deb822) for the
# host's own suite with "main". No host name is written in this repository.
host_mirror() {
    local code f
    code=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$code" ] || return 0
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        case $f in
        *.sources)
            awk -v code="$code" '
                function flush() {
                    if (types ~ /(^| )deb( |$)/ && suites ~ ("(^| )" code "( |$)") &&
                        comps ~ /(^| )main( |$)/ && enabled != "no")
                        for (i = 1; i <= split(uris, u, " "); i++)
                            if (u[i] ~ /^https?:\/\//) { print u[i]; found = 1; exit }
                    types = suites = comps = uris = ""; enabled = "yes"
                }
                BEGIN { enabled = "yes" }
                /^[ \t]*$/ { flush(); next }
                /^#/ || /^[ \t]/ { next }
                { k = tolower($1); sub(/:.*/, "", k); v = $0; sub(/^[^:]*:[ \t]*/, "", v)
                  if (k == "types") types = v; else if (k == "suites") suites = v
                  else if (k == "components") comps = v; else if (k == "uris") uris = v
                  else if (k == "enabled") enabled = tolower(v) }
                END { if (!found) flush() }' "$f"
            ;;
        *)
            sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
                awk -v code="$code" '$1 == "deb" && $3 == code && $2 ~ /^https?:\/\// {
                    for (i = 4; i <= NF; i++) if ($i == "main") { print $2; exit } }'
            ;;
        esac
    done | head -n1 | sed 's:/*$::'
}

in_root() { chroot "$ROOT" "$@"; }

build_chroot() {
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$RECIPE" ]; then
        say "chroot cached: $ROOT ($(in_root condor_version | head -n1))"
        return
    fi
    local mirror=${DEBIAN_MIRROR:-$(host_mirror)}
    [ -n "$mirror" ] || die "no Debian mirror: the host's apt sources (/etc/apt/sources.list, \
/etc/apt/sources.list.d) name none for its suite with main; set DEBIAN_MIRROR=URL"
    local tmp=$ROOT.partial t0=$SECONDS log=$CACHE/build.log
    for d in "$tmp" "$ROOT"; do
        if mountpoint -q "$d/proc"; then umount "$d/proc" || umount -l "$d/proc"; fi
    done
    rm -rf "$tmp" "$ROOT"
    say "building the chroot from $mirror (trixie, condor from sid; once, cached in $ROOT; log $log)"
    debootstrap --variant=minbase trixie "$tmp" "$mirror" >"$log" 2>&1 ||
        die "debootstrap failed: see $log"
    local t_deb=$SECONDS
    printf 'deb %s trixie main\ndeb %s sid main\n' "$mirror" "$mirror" >"$tmp/etc/apt/sources.list"
    rm -f "$tmp"/etc/apt/sources.list.d/*
    # sid at low priority: only what is asked for by name comes from it.
    printf 'Package: *\nPin: release n=sid\nPin-Priority: 100\n' >"$tmp/etc/apt/preferences.d/sid"
    # The sid archive reachable here may be a snapshot whose Release file has expired.
    echo 'Acquire::Check-Valid-Until "false";' >"$tmp/etc/apt/apt.conf.d/99robot-token"
    # No service starts inside the chroot while packages install.
    printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
    chmod 755 "$tmp/usr/sbin/policy-rc.d"
    mount -t proc proc "$tmp/proc"
    local pkgs=() p
    for p in $SID_PACKAGES; do pkgs+=("$p/sid"); done
    if ! { chroot "$tmp" apt-get update -qq &&
        chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${pkgs[@]}" python3 openssl libgssapi-krb5-2 &&
        chroot "$tmp" apt-get clean &&
        chroot "$tmp" useradd -m -s /bin/sh robot; } >>"$log" 2>&1; then
        umount "$tmp/proc"
        die "installing HTCondor in the chroot failed: see $log"
    fi
    local from_sid
    from_sid=$(chroot "$tmp" apt list --installed 2>/dev/null | sed -n 's:/unstable,now.*::p' | sort | xargs)
    umount "$tmp/proc"
    [ "$from_sid" = "$(echo "$SID_PACKAGES" | tr ' ' '\n' | sort | xargs)" ] ||
        die "packages from sid: \"$from_sid\", expected \"$SID_PACKAGES\": see $log"
    mv "$tmp" "$ROOT"
    echo "$RECIPE" >"$STAMP"
    say "chroot built in $((SECONDS - t0)) s (debootstrap $((t_deb - t0)) s, HTCondor and the rest $((SECONDS - t_deb)) s): $(in_root condor_version | head -n1)"
}

ISSUER_PID=
KDC_DIR=
# Processes whose root is our chroot: ours and only ours.
chroot_pids() {
    local d p
    for d in /proc/[0-9]*; do
        p=$(readlink "$d/root" 2>/dev/null) || continue
        [ "$p" = "$ROOT" ] && echo "${d#/proc/}"
    done
    return 0
}
stop_pool() {
    if [ -n "$ISSUER_PID" ]; then
        kill "$ISSUER_PID" 2>/dev/null
        wait "$ISSUER_PID" 2>/dev/null
        ISSUER_PID=
    fi
    if [ -n "$KDC_DIR" ]; then
        tests/vault/kdc.sh stop "$KDC_DIR" >/dev/null 2>&1
        KDC_DIR=
    fi
    if mountpoint -q "$ROOT/proc"; then
        in_root condor_off -master >/dev/null 2>&1
        local i p
        for i in $(seq 1 150); do
            [ -z "$(chroot_pids)" ] && break
            sleep 0.1
        done
        for p in $(chroot_pids); do kill -9 "$p" 2>/dev/null; done
        for i in $(seq 1 50); do
            [ -z "$(chroot_pids)" ] && break
            sleep 0.1
        done
        umount "$ROOT/proc" || umount -l "$ROOT/proc"
    fi
}
cleanup() {
    local rc=$?
    set +e
    stop_pool
    if [ "$(sysctls)" != "$SYSCTLS_BEFORE" ]; then
        echo "condor-real: error: THE HOST'S SYSCTLS CHANGED during the run:" >&2
        diff <(echo "$SYSCTLS_BEFORE") <(sysctls) >&2
        rc=1
    fi
    exit "$rc"
}

start_issuer() {
    [ -d tests/peer/node_modules ] || scripts/install-peers.sh
    local out=$RUNDIR/issuer.out
    # Tokens live 120 s: with --minsecs 60 and SEC_CREDENTIAL_REFRESH 30, a token is
    # due 30 s after it is issued, and would be only after 60 s without the early rule.
    node tests/peer/issuer.mjs --port 0 --access-ttl 120 --ignore-stdin \
        >"$out" 2>"$RUNDIR/issuer.log" </dev/null 9>&- &
    ISSUER_PID=$!
    for _ in $(seq 1 100); do
        [ -s "$out" ] && break
        sleep 0.05
    done
    ISS=$(sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p' "$out")
    [ -n "$ISS" ] || die "the test issuer did not start: see $RUNDIR/issuer.log"
    say "test issuer $ISS"
}

# The chroot's python3 (the host may have none) talks to the issuer: same network.
py() { in_root python3 -c "$@"; }

# POST /__test/mint; prints one field of the answer.
mint() {
    py 'import json, sys, urllib.request as u
r = u.Request(sys.argv[1] + "/__test/mint", data=sys.argv[2].encode(),
              headers={"Content-Type": "application/json"})
print(json.load(u.urlopen(r))[sys.argv[3]])' "$ISS" "$1" "$2"
}

# Seconds the token in a file (chroot path) has left.
left() {
    py 'import base64, json, sys, time
p = open(sys.argv[1]).read().split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["exp"] - int(time.time()))' "$1"
}

# As the robot user, as cron runs it: PATH=/usr/bin:/bin, nothing else.
as_robot() {
    chroot --userspec=robot:robot "$ROOT" env -i PATH=/usr/bin:/bin HOME=/home/robot "$@"
}
robot_token() { as_robot /tmp/rt/robot-token "$@"; }

start_pool() {
    mount -t proc proc "$ROOT/proc"
    # A fresh pool for each run.
    rm -rf "$ROOT"/var/log/condor/* "$ROOT"/var/log/condor/.[!.]* "$ROOT"/var/spool/condor/* \
        "$ROOT"/var/lib/condor/execute/* "$ROOT/var/lib/condor/oauth_credentials" \
        "$ROOT/run/condor" "$ROOT/home/robot/.condor" "$ROOT/home/robot/pipeline"
    printf '127.0.0.1 localhost %s\n' "$(hostname)" >"$ROOT/etc/hosts"
    in_root sh -ec '
        mkdir -p /run/condor/cache /var/lock/condor /var/lib/condor/execute /var/spool/condor \
            /var/lib/condor/oauth_credentials
        chown condor:condor /run/condor /run/condor/cache /var/lock/condor /var/log/condor \
            /var/lib/condor /var/lib/condor/execute /var/spool/condor /var/lib/condor/oauth_credentials
        chmod 700 /var/lib/condor/oauth_credentials
        cd /etc/condor
        if [ ! -f host.pem ]; then
            openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$1" \
                -addext "subjectAltName=DNS:$1,DNS:localhost,IP:127.0.0.1" \
                -keyout host.key -out host.pem 2>/dev/null
            chown condor:condor host.key; chmod 600 host.key
        fi' sh "$(hostname)"
    cat >"$ROOT/etc/condor/config.d/99-robot-token.conf" <<EOF
# robot-token's real-HTCondor test (scripts/condor-real.sh): one slot, 127.0.0.1 only.
# A chroot shares the host's kernel: HTCondor must never tune it.
LINUX_KERNEL_TUNING_SCRIPT =
ENABLE_KERNEL_TUNING = FALSE
use ROLE: Personal
DAEMON_LIST = MASTER COLLECTOR NEGOTIATOR SCHEDD STARTD CREDD
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = FALSE
ENABLE_IPV6 = FALSE
NUM_CPUS = 1
START = TRUE
SUSPEND = FALSE
PREEMPT = FALSE
KILL = FALSE
NEGOTIATOR_INTERVAL = 2
SCHEDD_INTERVAL = 2
UPDATE_INTERVAL = 2
# unshare() of a mount or PID namespace fails inside a chroot.
MOUNT_UNDER_SCRATCH =
USE_PID_NAMESPACES = FALSE
# Jobs' tokens: stored by the credd, copied into running jobs every $REFRESH s.
SEC_CREDENTIAL_DIRECTORY_OAUTH = /var/lib/condor/oauth_credentials
SEC_CREDENTIAL_REFRESH = $REFRESH
# Client tools may authenticate with a bearer token.
SEC_DEFAULT_AUTHENTICATION_METHODS = FS, SCITOKENS
SCITOKENS_SERVER_AUDIENCE = $AUD
CERTIFICATE_MAPFILE = /etc/condor/robot-token.mapfile
# SCITOKENS runs inside TLS: the schedd needs a certificate the client trusts.
AUTH_SSL_SERVER_CERTFILE = /etc/condor/host.pem
AUTH_SSL_SERVER_KEYFILE = /etc/condor/host.key
AUTH_SSL_CLIENT_CAFILE = /etc/condor/host.pem
SCHEDD_DEBUG = D_SECURITY
EOF
    rm -f "$ROOT/etc/condor/config.d/98-deny.conf"
    printf '%s\n' "SCITOKENS \"$ISS,robot-user\" robot@robot-token.test" 'FS (.*) \1' \
        >"$ROOT/etc/condor/robot-token.mapfile"
    # Refuse to start a master that would run the kernel tuning script.
    local tuning
    tuning=$(in_root condor_config_val LINUX_KERNEL_TUNING_SCRIPT 2>/dev/null || true)
    [ -z "$tuning" ] || die "LINUX_KERNEL_TUNING_SCRIPT is \"$tuning\" in the chroot: not starting"
    # Seed the issuer's JWKS into scitokens-cpp's key cache, as condor, with long
    # update and expiry intervals: the schedd cannot fetch it from a plain-http issuer.
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
    cache=$(in_root condor_config_val SEC_SCITOKENS_CACHE)
    chroot --userspec=condor:condor "$ROOT" python3 /run/condor/seed.py "$cache" "$ISS" /run/condor/jwks.json ||
        die "seeding the SciTokens key cache failed"
    # Not holding the lock's descriptor: only this script holds the lock.
    in_root condor_master 9>&-
    for _ in $(seq 1 300); do
        if in_root condor_status -af Name 2>/dev/null | grep -q '^slot1@' &&
            in_root condor_status -any -af MyType 2>/dev/null | grep -q '^CredD$'; then
            return
        fi
        sleep 0.1
    done
    die "the pool did not come up: see $ROOT/var/log/condor/"
}

# condor_ping WRITE with SCITOKENS only, as the robot; extra env assignments first.
ping_write() {
    as_robot _CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS=SCITOKENS "$@" \
        condor_ping -type schedd -verbose WRITE 2>&1
}

credd_file() { echo "$ROOT/var/lib/condor/oauth_credentials/robot/$1.use"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
# Wait up to $2 s for file $1.
wait_for() {
    local i
    for i in $(seq 1 $(($2 * 10))); do
        [ -e "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# The job: each time its $_CONDOR_CREDS/S.use changes, copy it to seen.N and log the
# time. It stops when told, or after 5 minutes.
write_job() {
    mkdir -p "$RUNDIR/job"
    cat >"$RUNDIR/job/watch.sh" <<'EOF'
#!/bin/sh
f=$_CONDOR_CREDS/$1.use
n=0 last=
end=$(($(date +%s) + 300))
while [ ! -e /tmp/rt/job/stop ] && [ "$(date +%s)" -lt "$end" ]; do
    h=$(sha256sum "$f" 2>/dev/null | cut -d' ' -f1)
    if [ -n "$h" ] && [ "$h" != "$last" ]; then
        n=$((n + 1))
        cp "$f" /tmp/rt/job/seen.tmp && mv /tmp/rt/job/seen.tmp /tmp/rt/job/seen.$n
        echo "$(date +%s.%N) $n $h" >>/tmp/rt/job/log
        last=$h
    fi
    sleep 0.2
done
EOF
    chmod 755 "$RUNDIR/job/watch.sh"
    cat >"$RUNDIR/job/watch.sub" <<EOF
executable = /tmp/rt/job/watch.sh
arguments = $SVC
use_oauth_services = $SVC
should_transfer_files = NO
output = /tmp/rt/job/out
error = /tmp/rt/job/err
log = /tmp/rt/job/events
queue
EOF
    in_root chown -R robot:robot /tmp/rt/job
}

main() {
    local t0=$SECONDS
    build_chroot
    local t_built=$SECONDS
    # scripts/test.sh passes the binary its cargo test just built.
    local bin=${ROBOT_TOKEN_BIN:-}
    if [ -z "$bin" ]; then
        cargo build --locked -q --features test-hooks
        bin=${CARGO_TARGET_DIR:-$REPO/target}/debug/robot-token
    fi
    [ -x "$bin" ] || die "no robot-token binary at $bin"
    local t_cargo=$SECONDS
    RUNDIR=$ROOT/tmp/rt
    trap cleanup EXIT
    # A signal ends the run through the EXIT trap: the pool never outlives it.
    trap 'exit 130' INT
    trap 'exit 143' TERM
    rm -rf "$RUNDIR"
    mkdir -m 0700 "$RUNDIR"
    cp "$bin" "$RUNDIR/robot-token"
    start_issuer
    start_pool
    local t_up=$SECONDS
    local version
    version=$(in_root condor_version | head -n1)
    say "pool up in $((t_up - t_cargo)) s: $version"
    case $version in
    *'$CondorVersion: 25.'*) ;;
    *) bad "expected HTCondor 25.x, got $version" ;;
    esac

    # A real grant at the issuer, for a robot whose tokens the schedd accepts.
    local scope="openid offline_access condor:/READ condor:/WRITE" rt out rc
    rt=$(mint "{\"client_id\":\"robot-basic\",\"scope\":\"$scope\",\"audience\":\"$AUD\"}" refresh_token)
    (umask 077 && cat >"$RUNDIR/cred.json" <<EOF
{"version": 1, "issuer": "$ISS", "client_id": "robot-basic", "client_secret": "robot-basic-secret",
 "scope": "$scope", "refresh_token": "$rt"}
EOF
    )
    # The token file starts with a correctly signed but expired token.
    (umask 077 && mint "{\"client_id\":\"robot-basic\",\"scope\":\"$scope\",\"audience\":\"$AUD\",\"expired\":true}" \
        access_token >"$RUNDIR/bt")
    in_root chown -R robot:robot /tmp/rt

    # --- 4. condor_ping WRITE through SCITOKENS ----------------------------------
    out=$(ping_write _CONDOR_SCITOKENS_FILE=/tmp/rt/bt) && rc=0 || rc=$?
    if [ "$rc" != 0 ] && echo "$out" | grep -q 'WRITE failed' &&
        grep -q 'token expired' "$ROOT/var/log/condor/SchedLog"; then
        ok "4: condor_ping WRITE fails with an expired token (SchedLog: $(grep -m1 -o 'SCITOKENS error: .*token expired' "$ROOT/var/log/condor/SchedLog"))"
    else
        bad "4: condor_ping WRITE with an expired token: exit $rc: $out"
    fi
    out=$(robot_token get -c /tmp/rt/cred.json -o /tmp/rt/bt -m 60 --condor -v 2>"$RUNDIR/get.err") && rc=0 || rc=$?
    if [ "$rc" = 0 ] && echo "$out" | grep -qx 'export _CONDOR_SCITOKENS_FILE=/tmp/rt/bt' &&
        echo "$out" | grep -qx 'scitokens_file = /tmp/rt/bt' &&
        py 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(not (d.endswith(b"\n") and d.count(b"\n") == 1 and b"\r" not in d and d.count(b".") == 2))' /tmp/rt/bt; then
        ok "4: get --condor renewed /tmp/rt/bt (a raw JWT and one newline) and printed: $(echo "$out" | head -n1)"
    else
        bad "4: get --condor: exit $rc: $out $(cat "$RUNDIR/get.err")"
    fi
    out=$(ping_write _CONDOR_SCITOKENS_FILE=/tmp/rt/bt) && rc=0 || rc=$?
    if [ "$rc" = 0 ] && echo "$out" | grep -qE '^Authorized: +TRUE' &&
        echo "$out" | grep -qE '^Authenticated using: +SCITOKENS'; then
        ok "4: condor_ping WRITE on HTCondor 25 succeeds with _CONDOR_SCITOKENS_FILE=/tmp/rt/bt ($(echo "$out" | grep -E '^(Authenticated using|Remote Mapping)' | tr -s ' ' | paste -sd';'))"
    else
        bad "4: condor_ping WRITE with the renewed token: exit $rc: $out"
    fi
    out=$(ping_write BEARER_TOKEN_FILE=/tmp/rt/bt) && rc=0 || rc=$?
    if [ "$rc" = 0 ] && echo "$out" | grep -qE '^Authorized: +TRUE'; then
        ok "4: condor_ping WRITE succeeds by WLCG discovery (BEARER_TOKEN_FILE=/tmp/rt/bt)"
    else
        bad "4: condor_ping WRITE by discovery: exit $rc: $out"
    fi

    # --- 1. the credd stores exactly the token file ------------------------------
    credd() { robot_token get -c /tmp/rt/cred.json -o /tmp/rt/bt -m 60 --timeout 20s \
        --condor=credd --condor-service "$SVC" "$@"; }
    out=$(credd -vv 2>&1) && rc=0 || rc=$?
    local fp
    fp=$(echo "$out" | sed -n 's/.*stored .* sha256sum begins \([0-9a-f]*\).*/\1/p')
    if [ "$rc" = 0 ] && cmp -s "$RUNDIR/bt" "$(credd_file $SVC)" &&
        echo "$out" | grep -q "running /usr/sbin/condor_store_cred add-oauth -s $SVC -P -i -\$" &&
        echo "$out" | grep -q "renewing when less than 90 s is left (--minsecs 60 s + SEC_CREDENTIAL_REFRESH 30 s)" &&
        [ -n "$fp" ] && [ "${fp}" = "$(sha "$RUNDIR/bt" | cut -c1-${#fp})" ]; then
        ok "1: get --condor=credd stored the token file's exact bytes as $SVC.use with -P; sha256sum begins $fp, as robot-token said"
    else
        bad "1: get --condor=credd: exit $rc, credd file $(sha "$(credd_file $SVC)" 2>&1), token file $(sha "$RUNDIR/bt"): $out"
    fi

    # --- 2. a job reads exactly that token ----------------------------------------
    write_job
    as_robot sh -c 'cd /tmp/rt/job && condor_submit watch.sub' >"$RUNDIR/submit.out" 2>&1 ||
        bad "2: condor_submit: $(cat "$RUNDIR/submit.out")"
    # Negotiate now rather than at the next cycle.
    in_root condor_reschedule >/dev/null 2>&1 || true
    local t_submit=$SECONDS
    if wait_for "$RUNDIR/job/seen.1" 120 && cmp -s "$RUNDIR/job/seen.1" "$RUNDIR/bt"; then
        ok "2: the job (use_oauth_services = $SVC) read exactly the token file in \$_CONDOR_CREDS/$SVC.use, $((SECONDS - t_submit)) s after submit"
    else
        bad "2: the job did not read the token: $(cat "$RUNDIR/job/log" "$RUNDIR/job/err" 2>&1); $(in_root condor_q -af JobStatus HoldReason 2>&1)"
    fi

    # --- 3. a renewal reaches the running job ---------------------------------------
    # The starter's refresh timer runs from the job's start: store the renewal 10 s
    # into its first interval, so the delay is about 20 s, well inside one interval.
    local t_first
    t_first=$(awk '$2 == 1 { print $1 }' "$RUNDIR/job/log" 2>/dev/null)
    while [ -n "$t_first" ] && awk -v t="$t_first" -v now="$(date +%s.%N)" 'BEGIN { exit !(now < t + 10) }'; do
        sleep 0.2
    done
    # The token file ages to 80 s left (a real token of the issuer's): due by the early
    # rule (less than --minsecs 60 + SEC_CREDENTIAL_REFRESH 30), not by --minsecs alone.
    (umask 077 && mint "{\"client_id\":\"robot-basic\",\"scope\":\"$scope\",\"audience\":\"$AUD\",\"access_ttl\":80}" \
        access_token >"$RUNDIR/bt")
    in_root chown robot:robot /tmp/rt/bt
    local l before t_stored
    l=$(left /tmp/rt/bt)
    before=$(sha "$RUNDIR/bt")
    out=$(credd -v 2>&1) && rc=0 || rc=$?
    t_stored=$(date +%s.%N)
    if [ "$rc" = 0 ] && [ "$(sha "$RUNDIR/bt")" != "$before" ] && [ "$l" -ge 60 ] &&
        cmp -s "$RUNDIR/bt" "$(credd_file $SVC)" && echo "$out" | grep -q "less than 90 s is left"; then
        ok "1: renewed early with $l s left (--minsecs 60 + SEC_CREDENTIAL_REFRESH 30) and stored in the credd"
    else
        bad "1: early renewal with $l s left: exit $rc, token file changed: $([ "$(sha "$RUNDIR/bt")" != "$before" ] && echo yes || echo no): $out"
    fi
    if wait_for "$RUNDIR/job/seen.2" $((REFRESH + 15)) && cmp -s "$RUNDIR/job/seen.2" "$RUNDIR/bt"; then
        local t_seen delay
        t_seen=$(awk '$2 == 2 { print $1 }' "$RUNDIR/job/log")
        delay=$(awk -v a="$t_stored" -v b="$t_seen" 'BEGIN { printf "%.1f", b - a }')
        if awk -v d="$delay" -v r="$REFRESH" 'BEGIN { exit !(d <= r) }'; then
            ok "3: the renewal reached the running job after $delay s (SEC_CREDENTIAL_REFRESH = $REFRESH s), byte for byte"
        else
            bad "3: the renewal reached the job after $delay s, more than SEC_CREDENTIAL_REFRESH = $REFRESH s"
        fi
    else
        bad "3: the renewal did not reach the job within $((REFRESH + 15)) s: $(cat "$RUNDIR/job/log" 2>&1)"
    fi
    touch "$RUNDIR/job/stop"
    for _ in $(seq 1 300); do
        [ -z "$(in_root condor_q -af ClusterId 2>/dev/null)" ] && break
        sleep 0.1
    done
    if grep -q 'Job terminated' "$RUNDIR/job/events" && grep -q 'Normal termination (return value 0)' "$RUNDIR/job/events"; then
        ok "2: the job ended normally"
    else
        bad "2: the job did not end normally: $(tail -n 5 "$RUNDIR/job/events" 2>&1)"
    fi

    # --- a DAG's node job reads the token the same way ---------------------------------
    # (Not under /tmp: DAGMan refuses a node log there.)
    mkdir -p "$ROOT/home/robot/pipeline"
    cat >"$ROOT/home/robot/pipeline/node.sh" <<'EOF'
#!/bin/sh
# What a pipeline's job does: point WLCG bearer-token discovery at the credd's copy.
export BEARER_TOKEN_FILE="$_CONDOR_CREDS/$1.use"
cp "$BEARER_TOKEN_FILE" /home/robot/pipeline/node.use
EOF
    chmod 755 "$ROOT/home/robot/pipeline/node.sh"
    printf '%s\n' 'executable = /home/robot/pipeline/node.sh' "arguments = $SVC" "use_oauth_services = $SVC" \
        'should_transfer_files = NO' 'log = /home/robot/pipeline/node.log' 'queue' >"$ROOT/home/robot/pipeline/node.sub"
    echo 'JOB read /home/robot/pipeline/node.sub' >"$ROOT/home/robot/pipeline/pipeline.dag"
    in_root chown -R robot:robot /home/robot/pipeline
    local t_dag=$SECONDS
    as_robot sh -c 'cd /home/robot/pipeline && condor_submit_dag pipeline.dag' >"$ROOT/home/robot/pipeline/submit.out" 2>&1 ||
        bad "dag: condor_submit_dag: $(cat "$ROOT/home/robot/pipeline/submit.out")"
    for i in $(seq 1 900); do
        [ -z "$(in_root condor_q -af ClusterId 2>/dev/null)" ] && break
        [ "$i" = 50 ] && in_root condor_reschedule >/dev/null 2>&1
        sleep 0.1
    done
    if cmp -s "$ROOT/home/robot/pipeline/node.use" "$(credd_file $SVC)" && cmp -s "$ROOT/home/robot/pipeline/node.use" "$RUNDIR/bt" &&
        grep -q 'EXITING WITH STATUS 0' "$ROOT/home/robot/pipeline/pipeline.dag.dagman.out"; then
        ok "dag: a DAG node with use_oauth_services = $SVC read the token file's bytes through BEARER_TOKEN_FILE=\$_CONDOR_CREDS/$SVC.use ($((SECONDS - t_dag)) s)"
    else
        bad "dag: $(ls -l "$ROOT/home/robot/pipeline" 2>&1 | paste -sd' '); $(tail -n 3 "$ROOT/home/robot/pipeline/pipeline.dag.dagman.out" 2>&1)"
    fi

    # --- service names: why not "scitokens" -----------------------------------------
    # At submit the credd writes a placeholder .top for the local credmon's provider
    # name (default "scitokens"), which a credmon would then act on; none for ours.
    robot_token get -c /tmp/rt/cred.json -o /tmp/rt/bt -m 1 --condor=credd \
        --condor-service scitokens >/dev/null 2>&1 || true
    sed -e "s/^use_oauth_services = .*/use_oauth_services = scitokens/" -e 's/^queue/hold = true\nqueue/' \
        "$RUNDIR/job/watch.sub" >"$RUNDIR/job/held.sub"
    as_robot sh -c 'cd /tmp/rt/job && condor_submit held.sub' >/dev/null 2>&1 || true
    local top=$ROOT/var/lib/condor/oauth_credentials/robot/scitokens.top
    if [ -s "$top" ] && [ ! -e "${top%/*}/$SVC.top" ]; then
        ok "names: at submit the credd wrote a placeholder scitokens.top ($(wc -c <"$top") bytes) and none for $SVC"
    else
        bad "names: scitokens.top $(ls -l "$top" 2>&1); $SVC.top $(ls -l "${top%/*}/$SVC.top" 2>&1)"
    fi
    in_root condor_rm -all >/dev/null 2>&1 || true

    # --- 5. credd down: 75, the token file written; refused: 78 -----------------------
    in_root condor_off -daemon credd >/dev/null 2>&1
    for _ in $(seq 1 100); do
        in_root condor_status -any -af MyType 2>/dev/null | grep -q '^CredD$' || break
        sleep 0.1
    done
    for _ in $(seq 1 100); do
        pgrep -x condor_credd >/dev/null || break
        sleep 0.1
    done
    before=$(sha "$RUNDIR/bt")
    # -m 300: due whatever is left (tokens live 120 s).
    out=$(robot_token get -c /tmp/rt/cred.json -o /tmp/rt/bt -m 300 --timeout 20s \
        --condor=credd --condor-service "$SVC" 2>&1) && rc=0 || rc=$?
    l=$(left /tmp/rt/bt 2>/dev/null || echo 0)
    if [ "$rc" = 75 ] && echo "$out" | grep -q 'could not reach the credd' &&
        [ "$(sha "$RUNDIR/bt")" != "$before" ] && [ "$l" -gt 100 ]; then
        ok "5: credd down: exit 75, the renewed token file written ($l s left): $out"
    else
        bad "5: credd down: exit $rc, token file changed: $([ "$(sha "$RUNDIR/bt")" != "$before" ] && echo yes || echo no): $out"
    fi
    in_root condor_on -daemon credd >/dev/null 2>&1 9>&-
    echo "DENY_WRITE = robot@*" >"$ROOT/etc/condor/config.d/98-deny.conf"
    for _ in $(seq 1 100); do
        in_root condor_status -any -af MyType 2>/dev/null | grep -q '^CredD$' && break
        sleep 0.1
    done
    in_root condor_reconfig -daemon credd >/dev/null 2>&1
    sleep 1
    before=$(sha "$RUNDIR/bt")
    out=$(credd 2>&1) && rc=0 || rc=$?
    if [ "$rc" = 78 ] && echo "$out" | grep -q 'the credd denied' && echo "$out" | grep -q 'DENIED' &&
        [ "$(sha "$RUNDIR/bt")" = "$before" ]; then
        ok "5: a store the credd's policy refuses (DENY_WRITE): exit 78, token file intact: $out"
    else
        bad "5: refused store: exit $rc: $out"
    fi
    rm -f "$ROOT/etc/condor/config.d/98-deny.conf"
    in_root condor_reconfig -daemon credd >/dev/null 2>&1

    # --- 6. --condor=vault-storer runs HTCondor 25's condor_credential_storer --------
    if [ -L "$ROOT/usr/bin/condor_vault_storer" ] && [ -x "$ROOT/usr/bin/condor_credential_storer" ]; then
        say "condor_vault_storer -> $(readlink "$ROOT/usr/bin/condor_vault_storer") (HTCondor 25.14's rename)"
    fi
    KDC_DIR=$RUNDIR/kdc
    if ! tests/vault/kdc.sh start "$KDC_DIR" >"$RUNDIR/kdc.json" 2>"$RUNDIR/kdc.log" 9>&-; then
        bad "6: the test KDC did not start: $(tail -n 3 "$RUNDIR/kdc.log")"
    else
        in_root chown -R robot:robot /tmp/rt/kdc
        # A fresh token file: no renewal, straight to the hand-off, which logs in
        # with the keytab (the storer's htgettoken would use that ticket).
        (umask 077 && mint "{\"client_id\":\"robot-basic\",\"scope\":\"$scope\",\"access_ttl\":3600}" \
            access_token >"$RUNDIR/bt-vault")
        in_root chown robot:robot /tmp/rt/bt-vault
        storer() { as_robot KRB5_CONFIG=/tmp/rt/kdc/krb5.conf /tmp/rt/robot-token get \
            -o /tmp/rt/bt-vault -m 60 --timeout 20s --vault-server https://localhost:8200 -i igwn \
            -k /tmp/rt/kdc/robot.keytab --vault-token-file /tmp/rt/vt --condor=vault-storer "$@"; }
        before=$(sha "$RUNDIR/bt-vault")
        out=$(storer 2>"$RUNDIR/storer.err") && rc=0 || rc=$?
        if [ "$rc" = 78 ] && echo "$out" | grep -q '^SEC_CREDENTIAL_GETTOKEN_OPTS = ' &&
            grep -q 'add this line to ~/.condor/user_config' "$RUNDIR/storer.err"; then
            ok "6: SEC_CREDENTIAL_GETTOKEN_OPTS unset: exit 78 and the line to add: $out"
            mkdir -p "$ROOT/home/robot/.condor"
            echo "$out" >"$ROOT/home/robot/.condor/user_config"
            in_root chown -R robot:robot /home/robot/.condor
        else
            bad "6: vault-storer without SEC_CREDENTIAL_GETTOKEN_OPTS: exit $rc: $out $(cat "$RUNDIR/storer.err")"
        fi
        out=$(storer 2>&1) && rc=0 || rc=$?
        if [ "$rc" = 78 ] && echo "$out" | grep -q 'condor_credential_storer -v igwn failed: htgettoken is not installed' &&
            [ "$(sha "$RUNDIR/bt-vault")" = "$before" ]; then
            ok "6: --condor=vault-storer ran condor_credential_storer and said what failed: $out"
        else
            bad "6: vault-storer: exit $rc: $out"
        fi
        out=$(storer -v 2>&1) && rc=0 || rc=$?
        if [ "$rc" = 78 ] && echo "$out" | grep -q 'condor_credential_storer: .*htgettoken: command not found' &&
            ! echo "$out" | grep -q 'run with -v'; then
            ok "6: with -v the storer's own output is shown, and no \"run with -v\""
        else
            bad "6: vault-storer -v: exit $rc: $out"
        fi
    fi

    if [ ! -e "$ROOT/home/robot/.condor/tokens.d" ]; then
        ok "nothing written into ~/.condor/tokens.d"
    else
        bad "/home/robot/.condor/tokens.d exists"
    fi

    local t_tests=$SECONDS
    stop_pool
    if [ "$(sysctls)" = "$SYSCTLS_BEFORE" ]; then
        ok "the host's sysctls are unchanged: $(sysctls | tr -s ' ' | paste -sd';')"
    else
        bad "the host's sysctls changed: $(diff <(echo "$SYSCTLS_BEFORE") <(sysctls) | grep '^[<>]' | paste -sd';')"
    fi
    say "times: chroot $((t_built - t0)) s, cargo build $((t_cargo - t_built)) s, pool start $((t_up - t_cargo)) s, tests $((t_tests - t_up)) s, stop $((SECONDS - t_tests)) s, total $((SECONDS - t0)) s"
    say "$passed passed, $failed failed"
    [ "$failed" = 0 ]
}

main "$@"
