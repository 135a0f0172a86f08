#!/usr/bin/env bash
# Integration: the Redis password set by a superuser with ALTER SYSTEM is
# masked for superusers, unreadable for other roles, absent from
# pg_db_role_setting and not written to the server log.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

secret="s3cret-$RANDOM-$RANDOM"
q -c "CREATE EXTENSION IF NOT EXISTS clinical" >/dev/null
q -c "ALTER SYSTEM SET clinical.redis_password = '$secret'" >/dev/null
q -c "SELECT pg_reload_conf()" >/dev/null
sleep 1

tap_is "superuser SHOW masks the password" "$(q -c 'SHOW clinical.redis_password')" "********"
tap_is "pg_settings does not list the password, even for a superuser" \
  "$(q -c "SELECT count(*) FROM pg_settings WHERE name = 'clinical.redis_password'")" "0"
q -c "SET client_min_messages = warning; DROP ROLE IF EXISTS secret_reader; CREATE ROLE secret_reader LOGIN" >/dev/null
out=$(psql -X -A -t -U secret_reader -c "SHOW clinical.redis_password" 2>&1)
tap_check "non-superuser SHOW is refused" grep -q 'must be superuser' <<<"$out"
out=$(psql -X -A -t -U secret_reader -c "SELECT count(*) FROM pg_settings WHERE name LIKE 'clinical.redis_pass%'" 2>&1)
tap_is "non-superuser does not see it in pg_settings" "$out" "0"
tap_is "nothing in pg_db_role_setting" \
  "$(q -c "SELECT count(*) FROM pg_db_role_setting, unnest(setconfig) c WHERE c LIKE '%redis_password%'")" "0"
tap_check "the server log does not contain the password" test "$(grep -c -- "$secret" "$PGLOG")" = 0
tap_check "the server log says the setting changed" grep -q 'redis_password\" \[value hidden\]' "$PGLOG"

out=$(q -c "SET clinical.redis_password = 'x'" 2>&1)
tap_check "a refused SET keeps its reason (the hiding touches only messages with a value)" grep -q 'cannot be changed now' <<<"$out"
out=$(q -c "DO \$\$ BEGIN RAISE EXCEPTION 'rotate redis_password now: the old one leaked'; END \$\$" 2>&1)
tap_check "a user's own message mentioning redis_password is left whole" grep -q 'rotate redis_password now: the old one leaked' <<<"$out"
out=$(q -c "ALTER SYSTEM SET clinical.database = ''" 2>&1)
tap_check "clinical.database cannot be set empty" grep -q 'Name the database' <<<"$out"

q -c "ALTER SYSTEM RESET clinical.redis_password" >/dev/null
q -c "SELECT pg_reload_conf()" >/dev/null
q -c "DROP ROLE secret_reader" >/dev/null
tap_done
