-- rollout journal, SQLite schema version 4: a release's digest covers its module tree and its
-- variables; the module tree's own digest (the snapshot and bundle it ships) is kept beside it.
-- Releases recorded before have module '' and a digest of the module tree alone.
ALTER TABLE releases ADD COLUMN module TEXT NOT NULL DEFAULT '';
