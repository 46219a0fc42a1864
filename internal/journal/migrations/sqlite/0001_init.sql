-- rollout journal, SQLite schema version 1. Times are fixed-width UTC text
-- (2006-01-02T15:04:05.000000000Z): they sort as text and survive export and import exactly.
CREATE TABLE runs (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	release TEXT NOT NULL,
	digest TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE INDEX runs_release ON runs(kind, release);
CREATE TABLE events (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id TEXT NOT NULL REFERENCES runs(id),
	seq INTEGER NOT NULL,
	at TEXT NOT NULL,
	type TEXT NOT NULL,
	target TEXT NOT NULL DEFAULT '',
	data TEXT NOT NULL,
	UNIQUE (run_id, seq)
);
CREATE INDEX events_target ON events(target, type);
CREATE TABLE releases (
	name TEXT PRIMARY KEY,
	digest TEXT NOT NULL,
	vars TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE TABLE bundles (
	digest TEXT PRIMARY KEY,
	data BLOB NOT NULL,
	created_at TEXT NOT NULL
);
CREATE TABLE lease (
	fleet TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	host TEXT NOT NULL,
	pid INTEGER NOT NULL,
	doing TEXT NOT NULL,
	token INTEGER NOT NULL,
	acquired_at TEXT NOT NULL,
	expires_at TEXT NOT NULL
);
