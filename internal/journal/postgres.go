package journal

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed migrations
var migrationFS embed.FS

// migrations are a dialect's embedded schema versions, in order: migrations/DIALECT/NNNN_name.sql.
func migrations(name string) []string {
	names, _ := fs.Glob(migrationFS, "migrations/"+name+"/*.sql")
	sort.Strings(names)
	out := make([]string, len(names))
	for i, n := range names {
		b, _ := migrationFS.ReadFile(n)
		out[i] = string(b)
	}
	return out
}

// PostgreSQL runs at READ COMMITTED: advisory locks make migrations and the numbering of one run's
// events take turns, and row locks order lease takeovers after the writes they fence.
var postgresDialect = dialect{
	name:          "postgres",
	migrations:    migrations("postgres"),
	numbered:      true,
	migrationLock: `SELECT pg_advisory_xact_lock(8245936955040884084)`, // "rollout" as a number
	runLock:       `SELECT pg_advisory_xact_lock(hashtext(?))`,
	forShare:      ` FOR SHARE`,
	forUpdate:     ` FOR UPDATE`,
}

// OpenPostgres connects with pgx, and applies the migrations the database lacks.
func OpenPostgres(ctx context.Context, rawURL string) (*DB, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("state URL: cannot be parsed") // not echoed: it may hold a secret
	}
	if _, has := u.User.Password(); has {
		return nil, errors.New("state URL: remove the password; give it in PGPASSWORD or a password file (PGPASSFILE), never in configuration")
	}
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("state URL: %v", err)
	}
	desc := fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
	db := sql.OpenDB(stdlib.GetConnector(*cfg))
	db.SetMaxOpenConns(8)
	s := &DB{db: db, d: postgresDialect, desc: desc}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %s: %w", desc, err)
	}
	return s, nil
}
