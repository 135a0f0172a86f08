#!/usr/bin/env bash
# Integration: packaging. The control file, META.json and the installed
# library agree on the version; META.json follows the PGXN meta spec 1.0.0
# and names PostgreSQL >= 13; every install-script part carries the
# "use CREATE EXTENSION" guard.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env
REPO=$(cd "$CLINICAL_SRC" && pwd)
ctl_version=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$REPO/clinical.control")
sharedir=$(pg_config --sharedir)

tap_check "control file names a default_version" test -n "$ctl_version"
tap_check "control file: schema clinical, not relocatable" \
  grep -qE "^schema[[:space:]]*=[[:space:]]*clinical" "$REPO/clinical.control"
tap_check "control file: relocatable = false" grep -qE "^relocatable[[:space:]]*=[[:space:]]*false" "$REPO/clinical.control"
tap_check "installed control file is this one" cmp -s "$REPO/clinical.control" "$sharedir/extension/clinical.control"
tap_check "install script for $ctl_version is installed" test -f "$sharedir/extension/clinical--$ctl_version.sql"
tap_is "library version equals the control file's" "$(q -d postgres -c "CREATE EXTENSION IF NOT EXISTS clinical; SELECT clinical.library_version(); DROP EXTENSION clinical")" "$ctl_version"

# META.json, read with perl's core JSON::PP
meta() { perl -MJSON::PP -e 'local $/; my $m = decode_json(<STDIN>); print eval "\$m->$ARGV[0]"' "$1" < "$REPO/META.json"; }
tap_check "META.json is valid JSON" perl -MJSON::PP -e 'local $/; decode_json(<STDIN>)' < "$REPO/META.json"
tap_is "META.json version equals the control file's" "$(meta '{version}')" "$ctl_version"
tap_is "META.json provides clinical at the same version" "$(meta '{provides}{clinical}{version}')" "$ctl_version"
tap_is "META.json meta-spec is 1.0.0" "$(meta '{"meta-spec"}{version}')" "1.0.0"
tap_is "META.json requires PostgreSQL >= 13" "$(meta '{prereqs}{runtime}{requires}{PostgreSQL}')" "13.0.0"
for f in "$CLINICAL_SRC"/sqlparts/*.sql; do
  tap_check "$(basename "$f") starts with the CREATE EXTENSION guard" \
    grep -q '^\\echo Use "CREATE EXTENSION clinical" to load this file\. \\quit' "$f"
done
tap_done
