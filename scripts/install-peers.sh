#!/usr/bin/env bash
# Install the real peers the tests and the demo run against, on a fresh machine:
# the oidc-provider test issuer (npm, from the lockfile) and, unless `--issuer` is
# given, the Kerberos/Vault peers, oidc-agent, tinyproxy and systemd-analyze (Debian
# packages: needs root, or sudo). Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_npm=1
if [ -d tests/peer/node_modules ] && [ tests/peer/node_modules/.package-lock.json -nt tests/peer/package-lock.json ]; then
  need_npm=0
fi
if [ "$need_npm" = 1 ]; then
  command -v npm >/dev/null || { echo "install-peers: npm is required (Debian: apt-get install npm)" >&2; exit 1; }
  echo "install-peers: installing the test issuer (npm ci --prefix tests/peer)" >&2
  npm ci --prefix tests/peer --no-audit --no-fund --loglevel=error >&2
fi
# `--issuer`: only the test issuer (what examples/demo.sh uses; needs no root).
[ "${1:-}" = --issuer ] && exit 0

# oidc-agent's real `oidc-token`, the exec source's test command (tests/exec.rs).
if ! command -v oidc-token >/dev/null || ! command -v oidc-gen >/dev/null; then
  command -v apt-get >/dev/null || { echo "install-peers: oidc-agent is required (Debian: apt-get install oidc-agent-cli)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq oidc-agent-cli >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq oidc-agent-cli >/dev/null; }
fi

# The Kerberos/Vault peers (tests/vault): a real MIT KDC and the htvault-config
# look-alike, which verifies SPNEGO with Debian's python3-gssapi (for /usr/bin/python3).
krb_missing=()
for cmd in /usr/sbin/krb5kdc /usr/sbin/kadmin.local /usr/bin/kinit /usr/bin/curl; do
  [ -x "$cmd" ] || krb_missing+=("$cmd")
done
/usr/bin/python3 -c 'import gssapi' 2>/dev/null || krb_missing+=(python3-gssapi)
if [ ${#krb_missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "install-peers: missing ${krb_missing[*]}: install krb5-kdc krb5-admin-server krb5-user python3-gssapi curl" >&2; exit 1; }
  echo "install-peers: installing the Kerberos test peers (missing: ${krb_missing[*]})" >&2
  # krb5-config asks for a default realm; the tests never use /etc/krb5.conf.
  krb_pkgs=(krb5-kdc krb5-admin-server krb5-user python3-gssapi curl)
  # The tests run their own KDC; the packages must not start a system KDC or kadmind
  # (policy-rc.d 101 = "action forbidden", honoured by invoke-rc.d and systemd hooks).
  policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${krb_pkgs[@]}" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${krb_pkgs[@]}" >/dev/null; } || rc=$?
  [ -n "$policy" ] && rm -f "$policy"
  [ "$rc" = 0 ] || { echo "install-peers: apt-get install ${krb_pkgs[*]} failed" >&2; exit 1; }
fi

# openssl(1): tests/tls.rs names a CA by its subject hash (`openssl x509 -hash`), as in a
# grid --capath.
# A C++ compiler for libfuzzer-sys: test.sh compiles the fuzz targets (not run), so
# that a change of the library's API cannot leave them broken unnoticed.
if ! command -v c++ >/dev/null; then
  command -v apt-get >/dev/null || { echo "install-peers: a C++ compiler is required (Debian: apt-get install g++)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ >/dev/null; }
fi

if ! command -v openssl >/dev/null; then
  command -v apt-get >/dev/null || { echo "install-peers: openssl is required (Debian: apt-get install openssl)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >/dev/null; }
fi

# tinyproxy, the real HTTP proxy (CONNECT) the proxy tests start on 127.0.0.1
# (tests/proxy.rs). The package must not start a system proxy: policy-rc.d as above.
if ! command -v tinyproxy >/dev/null; then
  command -v apt-get >/dev/null || { echo "install-peers: tinyproxy is required (Debian: apt-get install tinyproxy)" >&2; exit 1; }
  echo "install-peers: installing tinyproxy" >&2
  policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tinyproxy >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tinyproxy >/dev/null; } || rc=$?
  [ -n "$policy" ] && rm -f "$policy"
  [ "$rc" = 0 ] || { echo "install-peers: apt-get install tinyproxy failed" >&2; exit 1; }
fi

# systemd-analyze, for `systemd-analyze verify` of the units in cron/ (tests/units.rs).
if ! command -v systemd-analyze >/dev/null; then
  command -v apt-get >/dev/null || { echo "install-peers: systemd-analyze is required (Debian: apt-get install systemd)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null; }
fi

# cargo-deny, for the supply-chain check in scripts/test.sh. Pinned, built from
# crates.io once per machine (a few minutes on 2 cores).
deny_version=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $deny_version" ]; then
  echo "install-peers: installing cargo-deny $deny_version" >&2
  cargo install --locked --quiet "cargo-deny@$deny_version" >&2
fi

# debootstrap, for the real HTCondor 25 pool in a chroot (scripts/condor-real.sh, which
# needs root anyway).
if [ "$(id -u)" = 0 ] && ! command -v debootstrap >/dev/null && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
fi
