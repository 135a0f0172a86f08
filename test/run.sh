#!/usr/bin/env bash
# test/run.sh - `make test`: install what is missing, build with -Werror,
# install, then run every test in a throwaway cluster and redis-server:
#   1. pg_regress suites (sql/, expected/)
#   2. pgTAP files (test/pgtap/*.sql) through pg_prove
#   3. integration scripts (test/integration/*.sh)
# The last line is "N passed, N failed" over all three.
set -uo pipefail
cd "$(dirname "$0")/.."

# one build-install-test at a time per machine: tests use the installed library
exec 9>/tmp/clinical-install.lock
flock 9

bash test/install.sh || exit 1

. test/sandbox.sh
as_server_user bash "$CLINICAL_SRC/test/harness.sh"
