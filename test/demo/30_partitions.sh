# Demo: partition maintenance of an API log and of the audit log.
. "$CLINICAL_SRC/test/demo/lib.sh"

run "CREATE EXTENSION IF NOT EXISTS clinical"
run "CREATE TABLE api_log (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz NOT NULL, endpoint text, status int)
       PARTITION BY RANGE (at)"
# the demo's clock: mid-March 2026 (clinical.maintenance_now; empty means the real clock)
export PGOPTIONS="-c clinical.maintenance_now=2026-03-15T12:00:00+00 -c timezone=UTC"

section "Partition maintenance: monthly partitions, made ahead, kept for a while"
say "Register a range-partitioned API log: monthly partitions from January, 2 months ahead, kept 3 months, then dropped. A default partition catches anything else."
show "SELECT clinical.create_time_partitions('api_log', 'at', '1 month', premake => 2,
       retention => '3 months', retention_mode => 'drop', start_at => '2026-01-01') AS created"
show "SELECT partition, lower_bound, upper_bound FROM clinical.partition_bounds('api_log')"
say "The audit log is a partition set too, registered by its first write: monthly in UTC, premake 4, kept 7 years, then detached (not dropped); a retention below clinical.audit_min_retention (6 years) is refused, and so is any retention while a hold applies. Its row is in partition_status below."
run "INSERT INTO api_log (at, endpoint, status)
     SELECT timestamptz '2026-01-01' + i * interval '37 minutes', '/fhir/Observation', 200
       FROM generate_series(1, 10000) i"
show "SELECT parent, partition_interval, premake, retention, partitions, oldest_partition, newest_partition,
        next_boundary, legal_hold FROM clinical.partition_status"

say "Seven weeks later (the clock moves to 2026-05-02): a dry run shows the DDL maintenance would run, and runs none."
export PGOPTIONS="-c clinical.maintenance_now=2026-05-02T00:00:00+00 -c timezone=UTC"
show "SELECT action, partition, left(detail, 110) AS ddl FROM clinical.run_maintenance('api_log', dry_run => true)"

section "Partition maintenance: legal hold"
say "A month later (2026-06-02) January and February have expired, but a subpoena covers February. Hold that partition; maintenance drops January, skips February, and says why."
export PGOPTIONS="-c clinical.maintenance_now=2026-06-02T00:00:00+00 -c timezone=UTC"
show "SELECT clinical.set_legal_hold('api_log', 'api_log_p20260201', true, 'subpoena 2026-17')"
show "SELECT action, partition, detail FROM clinical.run_maintenance('api_log') WHERE action IN ('drop', 'skip', 'create')"
show "SELECT partition, lower_bound, upper_bound FROM clinical.partition_bounds('api_log') WHERE NOT is_default LIMIT 2"
show "SELECT parent, held_partitions, last_run IS NOT NULL AS ran, last_error FROM clinical.partition_status"
say "Nor can anyone drop a held partition by hand:"
show "DROP TABLE api_log_p20260201"
say "Maintenance normally runs in the background worker (clinical.maintenance_interval, default 1 hour) or from pg_cron: CALL clinical.run_maintenance_proc()."
run "SELECT clinical.set_legal_hold('api_log', 'api_log_p20260201', false, NULL)"
run "DROP TABLE api_log"
