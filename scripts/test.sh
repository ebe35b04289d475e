#!/usr/bin/env bash
# Installs everything the tests need (apt + pip), then runs them.
# README's second command; .ci/run calls exactly this. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=$(sed -e 's/#.*//' scripts/apt-packages.txt | xargs)
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "installing apt packages:$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

# Never rely on Numba's on-disk cache in CI: compile into a fresh directory.
if [ "${CI:-}" = "true" ]; then
  export NUMBA_CACHE_DIR=$(mktemp -d /tmp/tickwire-numba-XXXXXX)
fi
exec python3 -m pytest "$@"
