package journal

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", pure Go

	"github.com/rollout-dev/rollout/internal/resilience"
)

// SQLite serialises write transactions itself (BEGIN IMMEDIATE, below), so it needs no locks of
// its own for migrations, numbering or the lease.
var sqliteDialect = dialect{name: "sqlite", migrations: migrations("sqlite")}

// OpenSQLite opens (creating and migrating as needed) the journal in the SQLite file at path.
func OpenSQLite(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	s := &DB{db: db, d: sqliteDialect, desc: "sqlite:" + path}
	defer tighten(path) // the journal may hold what a release must not show the world
	// A connection's first use sets its pragmas; switching a new file to WAL needs a lock that
	// SQLite reports busy at once, without its busy timeout, when another process opens the same
	// new file at that moment (a pipeline's status poll racing the start that creates it). Wait
	// and try again, as the busy timeout would.
	_, _, err = resilience.Retry(context.Background(), resilience.Policy{Attempts: 1000, Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond, MaxElapsed: 10 * time.Second},
		busy, nil, func() (struct{}, error) { return struct{}{}, s.migrate(context.Background()) })
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	return s, nil
}

// busy says whether SQLite refused for a lock another connection held.
func busy(err error) bool {
	return strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked")
}

// tighten makes the journal's files readable by their owner only.
func tighten(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o077 != 0 {
			_ = os.Chmod(p, st.Mode().Perm()&0o700)
		}
	}
}
