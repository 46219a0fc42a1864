// Package journal keeps runs, their append-only events, releases and the fleet lease. SQLite
// (modernc.org/sqlite, no cgo) at .rollout/state.db is the embedded default.
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
	"syscall"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
	_ "modernc.org/sqlite"
)

const schemaVersion = 1

var migrations = []string{
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
	CREATE TABLE lease (
		fleet TEXT PRIMARY KEY,
		holder TEXT NOT NULL,
		host TEXT NOT NULL,
		pid INTEGER NOT NULL,
		doing TEXT NOT NULL,
		acquired_at TEXT NOT NULL,
		expires_at TEXT NOT NULL
	);`,
}

// SQLite is the journal in one SQLite file.
type SQLite struct {
	db   *sql.DB
	path string
}

var _ rings.Store = (*SQLite)(nil)

// Open opens (creating and migrating as needed) the journal at path.
func Open(path string) (*SQLite, error) {
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

func (s *SQLite) Close() error { return s.db.Close() }

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
	if v > schemaVersion {
		return fmt.Errorf("journal schema version %d is newer than this rollout understands (%d): upgrade rollout", v, schemaVersion)
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES (?)`, i+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}

const timeFormat = time.RFC3339Nano

// Run is one run's header.
type Run struct {
	ID      string           `json:"id"`
	Kind    string           `json:"kind"`
	Release rings.ReleaseRef `json:"release"`
	Created time.Time        `json:"created"`
}

// ErrNotFound is returned for a run or release that is not in the journal.
var ErrNotFound = errors.New("not found")

func (s *SQLite) CreateRun(ctx context.Context, r Run) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO runs(id, kind, release, digest, created_at) VALUES (?,?,?,?,?)`,
		r.ID, r.Kind, r.Release.Name, r.Release.Digest, r.Created.UTC().Format(timeFormat))
	if err != nil {
		return fmt.Errorf("create run %s: %w", r.ID, err)
	}
	return nil
}

func (s *SQLite) runs(ctx context.Context, where string, args ...any) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, kind, release, digest, created_at FROM runs `+where+` ORDER BY created_at DESC, rowid DESC`, args...)
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
		r.Created, _ = time.Parse(timeFormat, at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Runs lists every run, newest first.
func (s *SQLite) Runs(ctx context.Context) ([]Run, error) { return s.runs(ctx, "") }

// Run finds a run by its id or a unique prefix of it.
func (s *SQLite) Run(ctx context.Context, id string) (Run, error) {
	rs, err := s.runs(ctx, "WHERE id = ? OR id LIKE ?", id, strings.ReplaceAll(id, "%", "")+"%")
	if err != nil {
		return Run{}, err
	}
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

// RunForRelease finds the release run of a release, if there is one.
func (s *SQLite) RunForRelease(ctx context.Context, release string) (Run, bool, error) {
	rs, err := s.runs(ctx, "WHERE kind = ? AND release = ?", rings.KindRelease, release)
	if err != nil || len(rs) == 0 {
		return Run{}, false, err
	}
	return rs[0], true, nil
}

// Append writes events in one transaction, numbering them after the run's last event.
func (s *SQLite) Append(ctx context.Context, events ...rings.Event) error {
	if len(events) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	defer tx.Rollback()
	next := map[string]int64{}
	for i := range events {
		ev := &events[i]
		n, ok := next[ev.RunID]
		if !ok {
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?`, ev.RunID).Scan(&n); err != nil {
				return fmt.Errorf("append events: %w", err)
			}
		}
		n++
		next[ev.RunID] = n
		ev.Seq = n
		if ev.V == 0 {
			ev.V = rings.EventVersion
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("append events: encode %s: %w", ev.Type, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events(run_id, seq, at, type, target, data) VALUES (?,?,?,?,?,?)`,
			ev.RunID, ev.Seq, ev.At.UTC().Format(timeFormat), string(ev.Type), ev.Target, string(data)); err != nil {
			return fmt.Errorf("append events: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	return nil
}

func scanEvents(rows *sql.Rows) ([]rings.Event, error) {
	defer rows.Close()
	var out []rings.Event
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		var ev rings.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return nil, fmt.Errorf("decode event: %w", err)
		}
		if ev.V > rings.EventVersion {
			return nil, fmt.Errorf("event %s #%d has version %d, newer than this rollout understands (%d): upgrade rollout", ev.RunID, ev.Seq, ev.V, rings.EventVersion)
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// Events returns a run's journal in order.
func (s *SQLite) Events(ctx context.Context, runID string) ([]rings.Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM events WHERE run_id = ? ORDER BY seq`, runID)
	if err != nil {
		return nil, fmt.Errorf("read journal of %s: %w", runID, err)
	}
	return scanEvents(rows)
}

// TargetEvents returns a target's events of the given types across all runs, oldest first.
func (s *SQLite) TargetEvents(ctx context.Context, target string, types ...rings.EventType) ([]rings.Event, error) {
	q := `SELECT data FROM events WHERE target = ?`
	args := []any{target}
	if len(types) > 0 {
		q += ` AND type IN (` + strings.TrimSuffix(strings.Repeat("?,", len(types)), ",") + `)`
		for _, t := range types {
			args = append(args, string(t))
		}
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", target, err)
	}
	return scanEvents(rows)
}

// LastKnownGood is the newest release whose gates passed on target (after a promotion or a
// rollback), leaving out the release named exclude (the one a run is about to apply).
func (s *SQLite) LastKnownGood(ctx context.Context, target, exclude string) (*rings.ReleaseRef, error) {
	evs, err := s.TargetEvents(ctx, target, rings.TargetVerified, rings.TargetRolledBack)
	if err != nil {
		return nil, err
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if r := evs[i].Release; r != nil && r.Name != exclude {
			return r, nil
		}
	}
	return nil, nil
}

// Current is the release last applied to target by any run (a promotion, an automatic or a
// manual rollback), or nil if none was.
func (s *SQLite) Current(ctx context.Context, target string) (*rings.ReleaseRef, error) {
	evs, err := s.TargetEvents(ctx, target, rings.TargetApplied, rings.TargetRolledBack)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return evs[len(evs)-1].Release, nil
}

// Release is a recorded, immutable release.
type Release struct {
	Name    string         `json:"name"`
	Digest  string         `json:"digest"`
	Vars    map[string]any `json:"vars"`
	Created time.Time      `json:"created"`
}

// RecordRelease records a release the first time it is seen. A release is immutable: recording a
// name again with another digest or other variables fails, naming both.
func (s *SQLite) RecordRelease(ctx context.Context, r Release) error {
	vars, err := json.Marshal(r.Vars)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var digest, oldVars string
	err = tx.QueryRowContext(ctx, `SELECT digest, vars FROM releases WHERE name = ?`, r.Name).Scan(&digest, &oldVars)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO releases(name, digest, vars, created_at) VALUES (?,?,?,?)`,
			r.Name, r.Digest, string(vars), r.Created.UTC().Format(timeFormat)); err != nil {
			return err
		}
		return tx.Commit()
	case err != nil:
		return err
	case digest != r.Digest:
		return &ReleaseChangedError{Name: r.Name, Was: digest, Now: r.Digest, What: "module tree"}
	case oldVars != string(vars):
		return &ReleaseChangedError{Name: r.Name, What: "variables", Was: oldVars, Now: string(vars)}
	}
	return nil
}

// ReleaseChangedError says a release name was reused for different content.
type ReleaseChangedError struct{ Name, What, Was, Now string }

func (e *ReleaseChangedError) Error() string {
	return fmt.Sprintf("release %s is immutable and its %s changed (recorded %s, now %s): give the new content a new release name",
		e.Name, e.What, short(e.Was), short(e.Now))
}

func short(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Release returns a recorded release.
func (s *SQLite) Release(ctx context.Context, name string) (Release, error) {
	var r Release
	var vars, at string
	err := s.db.QueryRowContext(ctx, `SELECT name, digest, vars, created_at FROM releases WHERE name = ?`, name).Scan(&r.Name, &r.Digest, &vars, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("release %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return r, err
	}
	_ = json.Unmarshal([]byte(vars), &r.Vars)
	r.Created, _ = time.Parse(timeFormat, at)
	return r, nil
}

// Holder identifies who holds the fleet lease.
type Holder struct {
	Name  string // user@host, shown to whoever is refused
	Host  string
	PID   int
	Doing string // what the holder is doing, e.g. "start --release v42"
}

// LeaseHeldError is returned when another live process holds the fleet's lease.
type LeaseHeldError struct {
	Holder  Holder
	Since   time.Time
	Expires time.Time
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("another rollout holds this fleet: %s (pid %d on %s, %s) since %s; its lease expires %s unless renewed",
		e.Holder.Name, e.Holder.PID, e.Holder.Host, e.Holder.Doing, e.Since.Format(time.RFC3339), e.Expires.Format(time.RFC3339))
}

const fleetKey = "fleet"

// AcquireLease takes the fleet's lease for ttl. A lease held by someone else is refused unless it
// expired, or its holder was a process on this host that no longer exists (crashed).
func (s *SQLite) AcquireLease(ctx context.Context, h Holder, now time.Time, ttl time.Duration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("acquire lease: %w", err)
	}
	defer tx.Rollback()
	var cur Holder
	var since, expires string
	err = tx.QueryRowContext(ctx, `SELECT holder, host, pid, doing, acquired_at, expires_at FROM lease WHERE fleet = ?`, fleetKey).
		Scan(&cur.Name, &cur.Host, &cur.PID, &cur.Doing, &since, &expires)
	if err == nil {
		exp, _ := time.Parse(timeFormat, expires)
		mine := cur.Host == h.Host && cur.PID == h.PID
		dead := cur.Host == h.Host && !processAlive(cur.PID)
		if !mine && !dead && now.Before(exp) {
			st, _ := time.Parse(timeFormat, since)
			return &LeaseHeldError{Holder: cur, Since: st, Expires: exp}
		}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("acquire lease: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO lease(fleet, holder, host, pid, doing, acquired_at, expires_at) VALUES (?,?,?,?,?,?,?)
		ON CONFLICT(fleet) DO UPDATE SET holder=excluded.holder, host=excluded.host, pid=excluded.pid, doing=excluded.doing,
		acquired_at=excluded.acquired_at, expires_at=excluded.expires_at`,
		fleetKey, h.Name, h.Host, h.PID, h.Doing, now.UTC().Format(timeFormat), now.Add(ttl).UTC().Format(timeFormat)); err != nil {
		return fmt.Errorf("acquire lease: %w", err)
	}
	return tx.Commit()
}

// ErrLeaseLost is returned by RenewLease when another holder took the lease.
var ErrLeaseLost = errors.New("the fleet lease was taken over by another process")

// RenewLease extends the lease h holds.
func (s *SQLite) RenewLease(ctx context.Context, h Holder, now time.Time, ttl time.Duration) error {
	res, err := s.db.ExecContext(ctx, `UPDATE lease SET expires_at = ? WHERE fleet = ? AND host = ? AND pid = ?`,
		now.Add(ttl).UTC().Format(timeFormat), fleetKey, h.Host, h.PID)
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// ReleaseLease gives the lease up if h holds it.
func (s *SQLite) ReleaseLease(ctx context.Context, h Holder) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM lease WHERE fleet = ? AND host = ? AND pid = ?`, fleetKey, h.Host, h.PID)
	return err
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
