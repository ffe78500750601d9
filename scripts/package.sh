#!/usr/bin/env bash
# Build the release binary, generate the man pages and shell completions from the clap
# definitions, and package everything with the systemd units: a .deb (cargo-deb) and,
# when cargo-generate-rpm is installed, an .rpm. Not part of the default test run.
#
#   scripts/package.sh            # installs cargo-deb if missing
#   RPM=1 scripts/package.sh      # also installs cargo-generate-rpm and builds the .rpm
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked
bin=target/release/robot-token
rm -rf target/assets
mkdir -p target/assets/man target/assets/completions
"$bin" generate man target/assets/man
"$bin" generate completions bash > target/assets/completions/robot-token.bash
"$bin" generate completions zsh > target/assets/completions/_robot-token
"$bin" generate completions fish > target/assets/completions/robot-token.fish

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
cargo deb --no-build --locked
deb=$(ls -t target/debian/*.deb | head -n 1)

if [ "${RPM:-0}" = 1 ]; then
  command -v cargo-generate-rpm >/dev/null || cargo install cargo-generate-rpm --locked
fi
if command -v cargo-generate-rpm >/dev/null; then
  cargo generate-rpm
  ls -l target/generate-rpm/*.rpm
fi

echo "binary: $(stat -c %s "$bin") bytes ($bin)"
echo "deb:    $(stat -c %s "$deb") bytes ($deb)"
dpkg-deb -c "$deb"
