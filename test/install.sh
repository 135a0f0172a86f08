#!/usr/bin/env bash
# test/install.sh - the installation path shared by `make test`, `make demo`
# and `make bench`: install missing packages, build with -Werror, install
# the extension into the server pg_config names.
#
# Usage: test/install.sh [extra-package ...]
set -euo pipefail
cd "$(dirname "$0")/.."

bash test/deps.sh "$@"

echo "clinical: building"
make -s clean >/dev/null
make -s WERROR=1 >/dev/null

pkglibdir=$(pg_config --pkglibdir)
if [ -w "$pkglibdir" ]; then
  make -s install >/dev/null
else
  echo "clinical: cannot write to $pkglibdir; install as root with:" >&2
  echo "  sudo make install" >&2
  exit 1
fi
