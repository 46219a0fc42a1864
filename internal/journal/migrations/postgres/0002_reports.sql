-- rollout journal, PostgreSQL schema version 2: reports of finished runs, derived from their events
-- and kept so that `rollout status` need not replay a large run. A report is valid only for the
-- run's last event number (seq) and the report format version it was made with.
CREATE TABLE reports (
	run_id TEXT PRIMARY KEY REFERENCES runs(id),
	seq BIGINT NOT NULL,
	version INTEGER NOT NULL,
	data TEXT NOT NULL
);
