-- rollout journal, SQLite schema version 3: the fleet's stop-the-line switch, as the history of
-- who turned it on or off, when and why (`rollout freeze on|off`); the newest row is its state.
CREATE TABLE freeze_switch (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	turned_on INTEGER NOT NULL,
	actor TEXT NOT NULL,
	reason TEXT NOT NULL,
	at TEXT NOT NULL
);
