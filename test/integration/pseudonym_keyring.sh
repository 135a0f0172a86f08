#!/usr/bin/env bash
# Integration: the keyring file. Wrong permissions, missing file, malformed
# lines, short keys, repeated versions and no keyring each give a clear
# error naming no key; a changed file is picked up after a reload; no key
# material reaches the server log or any error message.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

K="$CLINICAL_TMP/keyrings"
mkdir -p "$K"
KEY1=5f2a9c0d1e3b4a6978c1d2e3f405162738495a6b7c8d9eafb0c1d2e3f4051627
KEY2=a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90ff

q -c "CREATE EXTENSION IF NOT EXISTS clinical" >/dev/null

use_keyring() {
  q -c "ALTER SYSTEM SET clinical.keyring_file = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.3
}
# error text (or value) of pseudonym('x') in a new session
try() { psql -X -A -t -q -c "SELECT clinical.pseudonym('x')" 2>&1; }

printf '1:%s\n' "$KEY1" > "$K/good"; chmod 600 "$K/good"
use_keyring "$K/good"
first=$(try)
tap_check "a good keyring works" grep -q '^v1:' <<<"$first"

chmod 640 "$K/good"
out=$(try)
tap_check "group-readable keyring is refused" grep -q 'accessible to group or others' <<<"$out"
tap_check "  ... with a hint to chmod 600" grep -q 'chmod 600' <<<"$out"
chmod 600 "$K/good"

use_keyring "$K/missing"
out=$(try)
tap_check "missing keyring file is an error naming the file" grep -q "could not open keyring file \"$K/missing\"" <<<"$out"

printf '1:%s\nthis is not a key\n' "$KEY1" > "$K/malformed"; chmod 600 "$K/malformed"
use_keyring "$K/malformed"
out=$(try)
tap_check "malformed line is reported by number" grep -q 'line 2 is malformed' <<<"$out"

printf '1:%s\n' "${KEY1:0:40}" > "$K/short"; chmod 600 "$K/short"
use_keyring "$K/short"
out=$(try)
tap_check "short key is refused" grep -q 'key is shorter than 32 bytes' <<<"$out"
tap_check "  ... and the key is not in the message" test "$(grep -c "${KEY1:0:40}" <<<"$out")" = 0

printf '1:%s\n1:%s\n' "$KEY1" "$KEY2" > "$K/dup"; chmod 600 "$K/dup"
use_keyring "$K/dup"
out=$(try)
tap_check "repeated version is refused" grep -q 'repeats key version 1' <<<"$out"

use_keyring ""
out=$(try)
tap_check "no keyring configured is a clear error" grep -q 'no keyring is configured' <<<"$out"

# reload: a new key version appears after the file changes, without
# restart, in a session that had loaded the keyring before (one psql kept
# open, fed statement by statement)
printf '1:%s\n' "$KEY1" > "$K/rot"; chmod 600 "$K/rot"
use_keyring "$K/rot"
: > "$K/session.out"
exec 5> >(psql -X -A -t -q > "$K/session.out" 2>&1)
say() { echo "$1" >&5; }
answers() { [ "$(grep -c . "$K/session.out")" -ge "$1" ]; }
say "SELECT 'A:' || pg_backend_pid() || ':' || string_agg(version::text, ',' ORDER BY version) FROM clinical.keyring_status();"
wait_until 10 answers 1
printf '1:%s\n2:%s\n' "$KEY1" "$KEY2" > "$K/rot.new"; chmod 600 "$K/rot.new"; mv "$K/rot.new" "$K/rot"
say "SELECT 'B:' || pg_backend_pid() || ':' || string_agg(version::text, ',' ORDER BY version) FROM clinical.keyring_status();"
say "SELECT 'C:' || (clinical.pseudonym('x') LIKE 'v2:%');"
wait_until 10 answers 3
# a failed load keeps no keys: the same session, which had keys, errors
# after the file breaks
printf 'garbage\n' > "$K/rot"
say "SELECT 'D:' || clinical.pseudonym('x');"
wait_until 10 grep -q 'malformed' "$K/session.out"
exec 5>&-
a=$(sed -n 's/^A:\([0-9]*\):\(.*\)$/\1 \2/p' "$K/session.out")
b=$(sed -n 's/^B:\([0-9]*\):\(.*\)$/\1 \2/p' "$K/session.out")
tap_is "keyring versions before the change" "${a#* }" "1"
tap_is "the same session picks up the changed keyring file without restart" "$b" "${a% *} 1,2"
tap_is "the new highest version is current" "$(sed -n 's/^C://p' "$K/session.out")" "true"
tap_check "a keyring that became malformed is refused in the session that had keys, not silently kept" \
  grep -q 'line 1 is malformed' "$K/session.out"
tap_check "  ... and that session returned no pseudonym after it" test "$(grep -c '^D:' "$K/session.out")" = 0

tap_check "no key appears in the server log" test "$(grep -c -e "$KEY1" -e "$KEY2" -e "${KEY1:0:40}" "$PGLOG")" = 0

# restore the test keyring
use_keyring "$CLINICAL_KEYRING"
q -c "ALTER SYSTEM RESET clinical.keyring_file" -c "SELECT pg_reload_conf()" >/dev/null
tap_done
