package journal

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", pure Go
)

// SQLite serialises write transactions itself (BEGIN IMMEDIATE, below), so it needs no locks of
// its own for migrations, numbering or the lease.
var sqliteDialect = dialect{name: "sqlite", migrations: migrations("sqlite")}

// OpenSQLite opens (creating and migrating as needed) the journal in the SQLite file at path.
func OpenSQLite(path string) (Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	s := &sqlStore{db: db, d: sqliteDialect, desc: "sqlite:" + path}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	return s, nil
}
