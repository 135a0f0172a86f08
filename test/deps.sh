#!/usr/bin/env bash
# test/deps.sh - make sure the Debian packages that building, testing, the demo
# and the benchmarks need are installed. As root it installs what is missing
# (apt-get update first); as anyone else it prints the exact apt line and fails.
#
# Usage: test/deps.sh [extra-package ...]
set -euo pipefail

PKGS=(
  build-essential
  postgresql-15
  postgresql-contrib
  postgresql-server-dev-15
  libhiredis-dev
  libssl-dev
  redis-server
  redis-tools
  postgresql-15-pgtap
  libtap-parser-sourcehandler-pgtap-perl
  postgresql-15-partman
  procps
  openssl
  iproute2
  "$@"
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "clinical: missing Debian packages; install them as root with:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "clinical: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's package starts a system redis/postgres where an init system runs;
# the tests start their own servers, so those are left alone.
