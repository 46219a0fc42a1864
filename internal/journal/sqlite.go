package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
	_ "modernc.org/sqlite"
)

var sqliteMigrations = []string{
	// 1: the first schema.
	`CREATE TABLE runs (
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
	);`,
}

// SQLite is the journal in one SQLite file.
type SQLite struct {
	db    *sql.DB
	path  string
	fence atomic.Int64 // the token of the lease this store holds; 0: none
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating and migrating as needed) the journal at path.
func OpenSQLite(path string) (*SQLite, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	s := &SQLite{db: db, path: path}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) Close() error     { return s.db.Close() }
func (s *SQLite) Describe() string { return "sqlite:" + s.path }

func (s *SQLite) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	if v > len(sqliteMigrations) {
		return fmt.Errorf("journal schema version %d is newer than this rollout understands (%d): upgrade rollout", v, len(sqliteMigrations))
	}
	for i := v; i < len(sqliteMigrations); i++ {
		if _, err := tx.ExecContext(ctx, sqliteMigrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES (?)`, i+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (s *SQLite) SchemaVersion(ctx context.Context) (int, int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, len(sqliteMigrations), err
}

// fenced checks, inside a write transaction, that this store still holds the lease it took.
func (s *SQLite) fenced(ctx context.Context, tx *sql.Tx) error {
	want := s.fence.Load()
	if want == 0 {
		return nil
	}
	var token int64
	err := tx.QueryRowContext(ctx, `SELECT token FROM lease WHERE fleet = ?`, fleetKey).Scan(&token)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && token != want) {
		return ErrLeaseLost
	}
	return err
}

// write runs fn in a fenced transaction.
func (s *SQLite) write(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback()
	if err := s.fenced(ctx, tx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (s *SQLite) CreateRun(ctx context.Context, r Run) error {
	return s.write(ctx, "create run "+r.ID, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO runs(id, kind, release, digest, created_at) VALUES (?,?,?,?,?)`,
			r.ID, r.Kind, r.Release.Name, r.Release.Digest, formatTime(r.Created))
		return err
	})
}

func (s *SQLite) runs(ctx context.Context, where string, args ...any) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, kind, release, digest, created_at FROM runs `+where+` ORDER BY created_at DESC, id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var at string
		if err := rows.Scan(&r.ID, &r.Kind, &r.Release.Name, &r.Release.Digest, &at); err != nil {
			return nil, err
		}
		r.Created = parseTime(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *SQLite) Runs(ctx context.Context) ([]Run, error) { return s.runs(ctx, "") }

func (s *SQLite) Run(ctx context.Context, id string) (Run, error) {
	rs, err := s.runs(ctx, "WHERE id = ? OR substr(id, 1, ?) = ?", id, len(id), id)
	if err != nil {
		return Run{}, err
	}
	return pickRun(id, rs)
}

// pickRun chooses the run an id (or id prefix) names.
func pickRun(id string, rs []Run) (Run, error) {
	for _, r := range rs {
		if r.ID == id {
			return r, nil
		}
	}
	switch len(rs) {
	case 0:
		return Run{}, fmt.Errorf("run %q: %w", id, ErrNotFound)
	case 1:
		return rs[0], nil
	}
	return Run{}, fmt.Errorf("run %q is ambiguous: %d runs start with it", id, len(rs))
}

func (s *SQLite) RunForRelease(ctx context.Context, release string) (Run, bool, error) {
	rs, err := s.runs(ctx, "WHERE kind = ? AND release = ?", rings.KindRelease, release)
	if err != nil || len(rs) == 0 {
		return Run{}, false, err
	}
	return rs[0], true, nil
}

// encodeEvent prepares an event for storage, defaulting its version.
func encodeEvent(ev *rings.Event) (string, error) {
	if ev.V == 0 {
		ev.V = rings.EventVersion
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", ev.Type, err)
	}
	return string(data), nil
}

func decodeEvent(data string) (rings.Event, error) {
	var ev rings.Event
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		return ev, fmt.Errorf("decode event: %w", err)
	}
	if ev.V > rings.EventVersion {
		return ev, fmt.Errorf("event %s #%d has version %d, newer than this rollout understands (%d): upgrade rollout", ev.RunID, ev.Seq, ev.V, rings.EventVersion)
	}
	return ev, nil
}

func (s *SQLite) Append(ctx context.Context, events ...rings.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.write(ctx, "append events", func(tx *sql.Tx) error {
		next := map[string]int64{}
		for i := range events {
			ev := &events[i]
			n, ok := next[ev.RunID]
			if !ok {
				if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?`, ev.RunID).Scan(&n); err != nil {
					return err
				}
			}
			n++
			next[ev.RunID] = n
			ev.Seq = n
			data, err := encodeEvent(ev)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO events(run_id, seq, at, type, target, data) VALUES (?,?,?,?,?,?)`,
				ev.RunID, ev.Seq, formatTime(ev.At), string(ev.Type), ev.Target, data); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *SQLite) scanEvents(rows *sql.Rows, err error, fn func(rings.Event) error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return err
		}
		ev, err := decodeEvent(data)
		if err != nil {
			return err
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return rows.Err()
}

func collect(out *[]rings.Event) func(rings.Event) error {
	return func(ev rings.Event) error { *out = append(*out, ev); return nil }
}

func (s *SQLite) Events(ctx context.Context, runID string) ([]rings.Event, error) {
	var out []rings.Event
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM events WHERE run_id = ? ORDER BY seq`, runID)
	if err := s.scanEvents(rows, err, collect(&out)); err != nil {
		return nil, fmt.Errorf("read journal of %s: %w", runID, err)
	}
	return out, nil
}

func (s *SQLite) TargetEvents(ctx context.Context, target string, types ...rings.EventType) ([]rings.Event, error) {
	q := `SELECT data FROM events WHERE target = ?`
	args := []any{target}
	if len(types) > 0 {
		q += ` AND type IN (` + strings.TrimSuffix(strings.Repeat("?,", len(types)), ",") + `)`
		for _, t := range types {
			args = append(args, string(t))
		}
	}
	var out []rings.Event
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err := s.scanEvents(rows, err, collect(&out)); err != nil {
		return nil, fmt.Errorf("read history of %s: %w", target, err)
	}
	return out, nil
}

func (s *SQLite) AllEvents(ctx context.Context, fn func(rings.Event) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM events ORDER BY id`)
	return s.scanEvents(rows, err, fn)
}

func (s *SQLite) RecordRelease(ctx context.Context, r Release) error {
	vars, err := json.Marshal(r.Vars)
	if err != nil {
		return err
	}
	return s.write(ctx, "record release "+r.Name, func(tx *sql.Tx) error {
		var digest, oldVars string
		err := tx.QueryRowContext(ctx, `SELECT digest, vars FROM releases WHERE name = ?`, r.Name).Scan(&digest, &oldVars)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err := tx.ExecContext(ctx, `INSERT INTO releases(name, digest, vars, created_at) VALUES (?,?,?,?)`,
				r.Name, r.Digest, string(vars), formatTime(r.Created))
			return err
		case err != nil:
			return err
		}
		return releaseChanged(r.Name, digest, r.Digest, oldVars, string(vars))
	})
}

func releaseChanged(name, oldDigest, newDigest, oldVars, newVars string) error {
	if oldDigest != newDigest {
		return &ReleaseChangedError{Name: name, What: "module tree", Was: oldDigest, Now: newDigest}
	}
	if oldVars != newVars {
		return &ReleaseChangedError{Name: name, What: "variables", Was: oldVars, Now: newVars}
	}
	return nil
}

func (s *SQLite) releases(ctx context.Context, where string, args ...any) ([]Release, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, digest, vars, created_at FROM releases `+where+` ORDER BY created_at, name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		var r Release
		var vars, at string
		if err := rows.Scan(&r.Name, &r.Digest, &vars, &at); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(vars), &r.Vars)
		r.Created = parseTime(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *SQLite) Release(ctx context.Context, name string) (Release, error) {
	rs, err := s.releases(ctx, "WHERE name = ?", name)
	if err != nil {
		return Release{}, err
	}
	if len(rs) == 0 {
		return Release{}, fmt.Errorf("release %q: %w", name, ErrNotFound)
	}
	return rs[0], nil
}

func (s *SQLite) Releases(ctx context.Context) ([]Release, error) { return s.releases(ctx, "") }

func (s *SQLite) PutBundle(ctx context.Context, digest string, data []byte) error {
	return s.write(ctx, "keep bundle "+digest, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO bundles(digest, data, created_at) VALUES (?,?,?) ON CONFLICT(digest) DO NOTHING`,
			digest, data, formatTime(time.Now()))
		return err
	})
}

func (s *SQLite) Bundle(ctx context.Context, digest string) ([]byte, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, `SELECT data FROM bundles WHERE digest = ?`, digest).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("bundle %s: %w", digest, ErrNotFound)
	}
	return data, err
}

func (s *SQLite) BundleDigests(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT digest FROM bundles ORDER BY digest`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

const fleetKey = "fleet"

// mayTakeOver says whether h may take a lease that cur holds until expires.
func mayTakeOver(cur, h Holder, now, expires time.Time) bool {
	mine := cur.Host == h.Host && cur.PID == h.PID
	dead := cur.Host == h.Host && !processAlive(cur.PID)
	return mine || dead || !now.Before(expires)
}

func (s *SQLite) AcquireLease(ctx context.Context, h Holder, now time.Time, ttl time.Duration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("acquire lease: %w", err)
	}
	defer tx.Rollback()
	var cur Holder
	var token int64
	var since, expires string
	err = tx.QueryRowContext(ctx, `SELECT holder, host, pid, doing, token, acquired_at, expires_at FROM lease WHERE fleet = ?`, fleetKey).
		Scan(&cur.Name, &cur.Host, &cur.PID, &cur.Doing, &token, &since, &expires)
	switch {
	case err == nil:
		if !mayTakeOver(cur, h, now, parseTime(expires)) {
			return &LeaseHeldError{Holder: cur, Since: parseTime(since), Expires: parseTime(expires)}
		}
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("acquire lease: %w", err)
	}
	token++ // the row is never deleted, so tokens only grow
	if _, err := tx.ExecContext(ctx, `INSERT INTO lease(fleet, holder, host, pid, doing, token, acquired_at, expires_at) VALUES (?,?,?,?,?,?,?,?)
		ON CONFLICT(fleet) DO UPDATE SET holder=excluded.holder, host=excluded.host, pid=excluded.pid, doing=excluded.doing,
		token=excluded.token, acquired_at=excluded.acquired_at, expires_at=excluded.expires_at`,
		fleetKey, h.Name, h.Host, h.PID, h.Doing, token, formatTime(now), formatTime(now.Add(ttl))); err != nil {
		return fmt.Errorf("acquire lease: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acquire lease: %w", err)
	}
	s.fence.Store(token)
	return nil
}

func (s *SQLite) RenewLease(ctx context.Context, now time.Time, ttl time.Duration) error {
	res, err := s.db.ExecContext(ctx, `UPDATE lease SET expires_at = ? WHERE fleet = ? AND token = ?`, formatTime(now.Add(ttl)), fleetKey, s.fence.Load())
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// ReleaseLease expires the lease (the row stays, keeping the token sequence).
func (s *SQLite) ReleaseLease(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `UPDATE lease SET expires_at = ? WHERE fleet = ? AND token = ?`, formatTime(time.Unix(0, 0)), fleetKey, s.fence.Swap(0))
	return err
}

func (s *SQLite) Lease(ctx context.Context) (*LeaseInfo, error) {
	var l LeaseInfo
	var since, expires string
	err := s.db.QueryRowContext(ctx, `SELECT holder, host, pid, doing, token, acquired_at, expires_at FROM lease WHERE fleet = ?`, fleetKey).
		Scan(&l.Holder.Name, &l.Holder.Host, &l.Holder.PID, &l.Holder.Doing, &l.Token, &since, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	l.Since, l.Expires = parseTime(since), parseTime(expires)
	if err == nil && !time.Now().Before(l.Expires) {
		return nil, nil // released or expired
	}
	return &l, err
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
