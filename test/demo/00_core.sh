# Demo: the foundation - the extension, its version and its worker.
. "$CLINICAL_SRC/test/demo/lib.sh"

section "Install the extension"
say "The library is in shared_preload_libraries, so the background worker runs in clinical.database ('clinical_test'). CREATE EXTENSION puts every object in schema clinical."
show "CREATE EXTENSION clinical"
show "SELECT * FROM clinical.version()"

# the worker checks the extension on its next wake-up; a reload wakes it
run "SELECT pg_reload_conf()"
sleep 1
section "The background worker"
show "SELECT preloaded, running, pid, database, state FROM clinical.worker_status()"

section "set_updated_at: a C trigger for updated_at columns"
run "CREATE TABLE demo_patient (patient_id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL DEFAULT '2020-01-01')"
run "INSERT INTO demo_patient VALUES (1, 'alpha'), (2, 'bravo')"
show "CREATE TRIGGER demo_patient_updated_at BEFORE UPDATE ON demo_patient FOR EACH ROW EXECUTE FUNCTION clinical.set_updated_at()"
show "UPDATE demo_patient SET name = 'alpha-2' WHERE patient_id = 1"
show "SELECT patient_id, name, updated_at > '2020-01-01' AS touched FROM demo_patient ORDER BY patient_id"
run "DROP TABLE demo_patient"
