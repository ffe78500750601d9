#!/usr/bin/env bash
# Benchmark case "fleet": `get --all` over 1,000 profiles whose tokens are all fresh.
# Budget: 50 ms in total. The fresh path must not build HTTP clients or read
# credentials: every profile's credential path here does not even exist.
#
#   scripts/bench-fleet.sh          # N=1000 profiles; exits 1 if the median is over budget
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-1000}
budget_ms=${BUDGET_MS:-50}
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --locked --quiet
bin=$PWD/target/release/robot-token
work=$(mktemp -d /tmp/robot-token-fleet.XXXXXX)
chmod 700 "$work"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT; echo "work: $work"

python3 - "$work" "$n" <<'PY'
import base64, json, os, sys, time
work, n = sys.argv[1], int(sys.argv[2])
b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
exp = int(time.time()) + 30 * 86400
os.mkdir(f"{work}/tokens", 0o700)
with open(f"{work}/config.toml", "w") as c:
    c.write('[defaults]\nminsecs = "1h"\n\n')
    for i in range(n):
        tok = f'{b64({"alg": "RS256", "typ": "JWT"})}.{b64({"sub": f"robot{i}", "exp": exp, "scope": "storage.read:/"})}.c2ln'
        path = f"{work}/tokens/p{i}.token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (tok + "\n").encode())
        os.close(fd)
        c.write(f'[profile.p{i}]\ncredential = "{work}/missing/p{i}.json"\noutfile = "{path}"\n'
                f'audience = "https://storage{i}.example.org"\n\n')
os.chmod(f"{work}/config.toml", 0o600)
PY

"$bin" get --all --config "$work/config.toml" # must succeed, silently
hyperfine -N --warmup 5 --runs "${RUNS:-50}" --export-json "$work/h.json" \
  "$bin get --all --config $work/config.toml"
python3 - "$work/h.json" "$n" "$budget_ms" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
med = r["median"] * 1000
print(f"fleet: {sys.argv[2]} fresh profiles: median {med:.1f} ms, min {r['min']*1000:.1f} ms, max {r['max']*1000:.1f} ms (budget {sys.argv[3]} ms)")
sys.exit(0 if med <= float(sys.argv[3]) else 1)
PY
