package journal

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rollout-dev/rollout/internal/proc"
	"github.com/rollout-dev/rollout/internal/rings"
)

// dialect is what differs between the SQL databases the journal runs on.
type dialect struct {
	name       string
	migrations []string
	// numbered placeholders ($1, $2, ...) instead of ?
	numbered bool
	// statements run at the start of a transaction that must not interleave with another of its
	// kind: migrations, and appends to one run (the run id is the argument). Empty when the
	// database serialises write transactions anyway (SQLite with BEGIN IMMEDIATE).
	migrationLock, runLock string
	// row locks on the lease: a write's check of its token, an acquirer's read.
	forShare, forUpdate string
}

// DB is the journal on a SQL database; SQLite and PostgreSQL differ only by dialect. Writes by a
// process that holds the fleet lease are fenced: once another process took the lease over, they
// fail with ErrLeaseLost, so a paused or partitioned holder can never write after its successor
// started. Writes by a process without the lease (an approval) are not fenced. Its users declare
// the few methods they need as their own interfaces.
type DB struct {
	db    *sql.DB
	d     dialect
	desc  string
	fence atomic.Int64 // the token of the lease this store holds; 0: none
}

// q rewrites ? placeholders for the dialect.
func (s *DB) q(query string) string {
	if !s.d.numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *DB) Close() error { return s.db.Close() }

// Describe names the store for people (no credentials).
func (s *DB) Describe() string { return s.desc }

// migrate applies the migrations the database lacks, in one transaction.
func (s *DB) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.d.migrationLock != "" {
		if _, err := tx.ExecContext(ctx, s.d.migrationLock); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return err
	}
	if v > len(s.d.migrations) {
		return fmt.Errorf("journal schema version %d is newer than this rollout understands (%d): upgrade rollout", v, len(s.d.migrations))
	}
	for i := v; i < len(s.d.migrations); i++ {
		if _, err := tx.ExecContext(ctx, s.d.migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_version(version) VALUES (?)`), i+1); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// SchemaVersion is the version of the schema in the store, and the newest this binary knows.
func (s *DB) SchemaVersion(ctx context.Context) (int, int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, len(s.d.migrations), err
}

// write runs fn in a transaction fenced by this store's lease token: the check reads the lease
// row (FOR SHARE where rows are locked), so a takeover waits for this write to commit, and every
// write after it sees the new token.
func (s *DB) write(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback()
	if want := s.fence.Load(); want != 0 {
		var token int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT token FROM lease WHERE fleet = ?`+s.d.forShare), fleetKey).Scan(&token)
		switch {
		case errors.Is(err, sql.ErrNoRows) || (err == nil && token != want):
			return fmt.Errorf("%s: %w", what, ErrLeaseLost)
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// CreateRun records a new run (fenced).
func (s *DB) CreateRun(ctx context.Context, r Run) error {
	return s.write(ctx, "create run "+r.ID, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO runs(id, kind, release, digest, created_at) VALUES (?,?,?,?,?)`),
			r.ID, r.Kind, r.Release.Name, r.Release.Digest, formatTime(r.Created))
		return err
	})
}

func (s *DB) runs(ctx context.Context, where string, args ...any) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, kind, release, digest, created_at FROM runs `+where+` ORDER BY created_at DESC, id DESC`), args...)
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

// Runs lists every run, newest first.
func (s *DB) Runs(ctx context.Context) ([]Run, error) { return s.runs(ctx, "") }

// Run finds a run by id or unique id prefix; ErrNotFound when none.
func (s *DB) Run(ctx context.Context, id string) (Run, error) {
	rs, err := s.runs(ctx, "WHERE id = ? OR substr(id, 1, ?) = ?", id, len(id), id)
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

// RunForRelease finds the release run of a release, if any.
func (s *DB) RunForRelease(ctx context.Context, release string) (Run, bool, error) {
	rs, err := s.runs(ctx, "WHERE kind = ? AND release = ?", rings.KindRelease, release)
	if err != nil || len(rs) == 0 {
		return Run{}, false, err
	}
	return rs[0], true, nil
}

// Append writes events in order, atomically, numbered per run (Seq); fenced.
func (s *DB) Append(ctx context.Context, events ...rings.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.write(ctx, "append events", func(tx *sql.Tx) error {
		next := map[string]int64{}
		for i := range events {
			ev := &events[i]
			n, ok := next[ev.RunID]
			if !ok {
				if s.d.runLock != "" { // appenders of one run take turns: numbering without gaps
					if _, err := tx.ExecContext(ctx, s.q(s.d.runLock), ev.RunID); err != nil {
						return err
					}
				}
				if err := tx.QueryRowContext(ctx, s.q(`SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?`), ev.RunID).Scan(&n); err != nil {
					return err
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
				return fmt.Errorf("encode %s: %w", ev.Type, err)
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO events(run_id, seq, at, type, target, data) VALUES (?,?,?,?,?,?)`),
				ev.RunID, ev.Seq, formatTime(ev.At), string(ev.Type), ev.Target, string(data)); err != nil {
				return err
			}
		}
		return nil
	})
}

// eventFields are an event's fields without its JSON method, and storedEvent an event as any
// version stored it: decoding one is a single pass, where rings.Event's own UnmarshalJSON (for
// everything else that reads events) is two.
type eventFields rings.Event

type storedEvent struct {
	eventFields
	Outcome string `json:"outcome"` // version 1
}

// events streams the events a query selects (its one column: data) to fn.
func (s *DB) events(ctx context.Context, fn func(rings.Event) error, query string, args ...any) error {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return err
		}
		var stored storedEvent
		if err := json.Unmarshal([]byte(data), &stored); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		ev := rings.Event(stored.eventFields)
		ev.Upgrade(stored.Outcome)
		if ev.V > rings.EventVersion {
			return fmt.Errorf("event %s #%d has version %d, newer than this rollout understands (%d): upgrade rollout", ev.RunID, ev.Seq, ev.V, rings.EventVersion)
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

// Events returns a run's events by Seq.
func (s *DB) Events(ctx context.Context, runID string) ([]rings.Event, error) {
	n, err := s.LastSeq(ctx, runID) // sized once: growing a slice of 40,000 events copies them many times
	if err != nil {
		return nil, err
	}
	out := make([]rings.Event, 0, n)
	return out, s.RunEvents(ctx, runID, collect(&out))
}

// RunEvents calls fn for each of a run's events, by Seq, without holding them all.
func (s *DB) RunEvents(ctx context.Context, runID string, fn func(rings.Event) error) error {
	if err := s.events(ctx, fn, `SELECT data FROM events WHERE run_id = ? ORDER BY seq`, runID); err != nil {
		return fmt.Errorf("read journal of %s: %w", runID, err)
	}
	return nil
}

// TargetEvents returns a target's events of the given types (all when none) across runs, in
// the order they were appended.
func (s *DB) TargetEvents(ctx context.Context, target string, types ...rings.EventType) ([]rings.Event, error) {
	query := `SELECT data FROM events WHERE target = ?`
	args := []any{target}
	if len(types) > 0 {
		query += ` AND type IN (` + strings.TrimSuffix(strings.Repeat("?,", len(types)), ",") + `)`
		for _, t := range types {
			args = append(args, string(t))
		}
	}
	var out []rings.Event
	if err := s.events(ctx, collect(&out), query+` ORDER BY id`, args...); err != nil {
		return nil, fmt.Errorf("read history of %s: %w", target, err)
	}
	return out, nil
}

// EventsOfType calls fn for every event of the given types, of every run, in the order they were
// appended: one read where a view of every target would read each target's history.
func (s *DB) EventsOfType(ctx context.Context, fn func(rings.Event) error, types ...rings.EventType) error {
	args := make([]any, len(types))
	for i, t := range types {
		args[i] = string(t)
	}
	return s.events(ctx, fn, `SELECT data FROM events WHERE type IN (`+strings.TrimSuffix(strings.Repeat("?,", len(types)), ",")+`) ORDER BY id`, args...)
}

// Head is the number of the newest event of the whole journal (0: none yet): it moves with every
// append of any run, so a view of the whole journal is current while it stands still.
func (s *DB) Head(ctx context.Context) (int64, error) {
	var head int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&head); err != nil {
		return 0, fmt.Errorf("read the journal's head: %w", err)
	}
	return head, nil
}

// AllEvents calls fn for every event of every run, in the order they were appended.
func (s *DB) AllEvents(ctx context.Context, fn func(rings.Event) error) error {
	return s.events(ctx, fn, `SELECT data FROM events ORDER BY id`)
}

// EventsAfter returns a run's events numbered after seq, by Seq: what a running process has
// not seen yet (an operator's pause or abort, written by another process).
func (s *DB) EventsAfter(ctx context.Context, runID string, seq int64) ([]rings.Event, error) {
	var out []rings.Event
	err := s.events(ctx, func(ev rings.Event) error {
		out = append(out, ev)
		return nil
	}, `SELECT data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq`, runID, seq)
	return out, err
}

// SetSwitch turns the fleet's stop-the-line switch on or off (not fenced: an operator acts
// whoever holds the lease); Switch returns it when on, nil when off.
func (s *DB) SetSwitch(ctx context.Context, on bool, sw rings.Switch) error {
	flag := 0
	if on {
		flag = 1
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO freeze_switch(turned_on, actor, reason, at) VALUES (?,?,?,?)`), flag, sw.Actor, sw.Reason, formatTime(sw.At))
	if err != nil {
		return fmt.Errorf("set the stop-the-line switch: %w", err)
	}
	return nil
}

// Switch returns the fleet's stop-the-line switch when on, nil when off.
func (s *DB) Switch(ctx context.Context) (*rings.Switch, error) {
	var on int
	var sw rings.Switch
	var at string
	err := s.db.QueryRowContext(ctx, `SELECT turned_on, actor, reason, at FROM freeze_switch ORDER BY id DESC LIMIT 1`).Scan(&on, &sw.Actor, &sw.Reason, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read the stop-the-line switch: %w", err)
	case on == 0:
		return nil, nil
	}
	sw.At = parseTime(at)
	return &sw, nil
}

// LastSeq is the number of a run's last event (0 when it has none).
func (s *DB) LastSeq(ctx context.Context, runID string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?`), runID).Scan(&n)
	return n, err
}

// SaveReport keeps a report derived from a run's events up to seq, in format version; it is
// derived data, so it is not fenced and not exported.
func (s *DB) SaveReport(ctx context.Context, runID string, seq int64, version int, data []byte) error {
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO reports(run_id, seq, version, data) VALUES (?,?,?,?)
		ON CONFLICT (run_id) DO UPDATE SET seq = excluded.seq, version = excluded.version, data = excluded.data`), runID, seq, version, string(data))
	if err != nil {
		return fmt.Errorf("keep report of %s: %w", runID, err)
	}
	return nil
}

// LoadReport returns the kept report of a run with the seq and version it was made for;
// ErrNotFound when there is none.
func (s *DB) LoadReport(ctx context.Context, runID string) (int64, int, []byte, error) {
	var seq int64
	var version int
	var data string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT seq, version, data FROM reports WHERE run_id = ?`), runID).Scan(&seq, &version, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil, fmt.Errorf("report of %s: %w", runID, ErrNotFound)
	}
	return seq, version, []byte(data), err
}

// RecordRelease binds a release name to its digest and variables the first time (fenced);
// after that it only checks them (*ReleaseChangedError when they differ).
func (s *DB) RecordRelease(ctx context.Context, r Release) error {
	vars, err := json.Marshal(r.Vars)
	if err != nil {
		return err
	}
	return s.write(ctx, "record release "+r.Name, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO releases(name, digest, vars, created_at, module) VALUES (?,?,?,?,?) ON CONFLICT (name) DO NOTHING`),
			r.Name, r.Digest, string(vars), formatTime(r.Created), r.Module); err != nil {
			return err
		}
		var digest, oldVars, module string
		if err := tx.QueryRowContext(ctx, s.q(`SELECT digest, vars, module FROM releases WHERE name = ?`), r.Name).Scan(&digest, &oldVars, &module); err != nil {
			return err
		}
		if module != r.Module {
			return &ReleaseChangedError{Name: r.Name, What: "module tree", Was: cmp.Or(module, digest), Now: r.Module}
		}
		if oldVars != string(vars) {
			return &ReleaseChangedError{Name: r.Name, What: "variables", Was: oldVars, Now: string(vars)}
		}
		if digest != r.Digest {
			return &ReleaseChangedError{Name: r.Name, What: "digest", Was: digest, Now: r.Digest}
		}
		return nil
	})
}

func (s *DB) releases(ctx context.Context, where string, args ...any) ([]Release, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT name, digest, vars, created_at, module FROM releases `+where+` ORDER BY created_at, name`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Release
	for rows.Next() {
		var r Release
		var vars, at string
		if err := rows.Scan(&r.Name, &r.Digest, &vars, &at, &r.Module); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(vars), &r.Vars)
		r.Created = parseTime(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Release returns a recorded release; ErrNotFound when none.
func (s *DB) Release(ctx context.Context, name string) (Release, error) {
	rs, err := s.releases(ctx, "WHERE name = ?", name)
	if err != nil {
		return Release{}, err
	}
	if len(rs) == 0 {
		return Release{}, fmt.Errorf("release %q: %w", name, ErrNotFound)
	}
	return rs[0], nil
}

// Releases lists every recorded release, oldest first.
func (s *DB) Releases(ctx context.Context) ([]Release, error) { return s.releases(ctx, "") }

// PutBundle keeps a release's module snapshot (a gzipped tar) under its digest; idempotent (fenced).
func (s *DB) PutBundle(ctx context.Context, digest string, data []byte) error {
	return s.write(ctx, "keep bundle "+digest, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO bundles(digest, data, created_at) VALUES (?,?,?) ON CONFLICT (digest) DO NOTHING`),
			digest, data, formatTime(time.Now()))
		return err
	})
}

// Bundle returns a kept bundle; ErrNotFound when none.
func (s *DB) Bundle(ctx context.Context, digest string) ([]byte, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, s.q(`SELECT data FROM bundles WHERE digest = ?`), digest).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("bundle %s: %w", digest, ErrNotFound)
	}
	return data, err
}

// BundleDigests lists the digests of kept bundles.
func (s *DB) BundleDigests(ctx context.Context) ([]string, error) {
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

var leaseEpoch = formatTime(time.Unix(0, 0))

// AcquireLease takes the fleet lease for ttl, unless another live holder has it
// (*LeaseHeldError). A holder on this host whose process is gone is taken over at once; any
// other when its lease expired. Each acquisition gets a new fencing token.
func (s *DB) AcquireLease(ctx context.Context, h Holder, now time.Time, ttl time.Duration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("acquire lease: %w", err)
	}
	defer tx.Rollback()
	// The row is never deleted (releasing expires it), so tokens only grow. Make sure it exists,
	// then lock it: concurrent acquirers queue on it.
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO lease(fleet, holder, host, pid, doing, token, acquired_at, expires_at)
		VALUES (?, '', '', 0, '', 0, ?, ?) ON CONFLICT (fleet) DO NOTHING`), fleetKey, leaseEpoch, leaseEpoch); err != nil {
		return fmt.Errorf("acquire lease: %w", err)
	}
	var cur Holder
	var token int64
	var since, expires string
	if err := tx.QueryRowContext(ctx, s.q(`SELECT holder, host, pid, doing, token, acquired_at, expires_at FROM lease WHERE fleet = ?`+s.d.forUpdate), fleetKey).
		Scan(&cur.Name, &cur.Host, &cur.PID, &cur.Doing, &token, &since, &expires); err != nil {
		return fmt.Errorf("acquire lease: %w", err)
	}
	mine := cur.Host == h.Host && cur.PID == h.PID
	dead := cur.Host == h.Host && !processAlive(cur.PID)
	if !mine && !dead && now.Before(parseTime(expires)) {
		return &LeaseHeldError{Holder: cur, Since: parseTime(since), Expires: parseTime(expires)}
	}
	token++
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE lease SET holder=?, host=?, pid=?, doing=?, token=?, acquired_at=?, expires_at=? WHERE fleet = ?`),
		h.Name, h.Host, h.PID, h.Doing, token, formatTime(now), formatTime(now.Add(ttl)), fleetKey); err != nil {
		return fmt.Errorf("acquire lease: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acquire lease: %w", err)
	}
	s.fence.Store(token)
	return nil
}

// RenewLease extends this store's lease; ErrLeaseLost when another holder took it.
func (s *DB) RenewLease(ctx context.Context, now time.Time, ttl time.Duration) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE lease SET expires_at = ? WHERE fleet = ? AND token = ?`), formatTime(now.Add(ttl)), fleetKey, s.fence.Load())
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// ReleaseLease gives this store's lease up, if it still holds it.
func (s *DB) ReleaseLease(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, s.q(`UPDATE lease SET expires_at = ? WHERE fleet = ? AND token = ?`), leaseEpoch, fleetKey, s.fence.Swap(0))
	return err
}

// Lease describes the current lease, or nil when nobody holds one.
func (s *DB) Lease(ctx context.Context) (*LeaseInfo, error) {
	var l LeaseInfo
	var since, expires string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT holder, host, pid, doing, token, acquired_at, expires_at FROM lease WHERE fleet = ?`), fleetKey).
		Scan(&l.Holder.Name, &l.Holder.Host, &l.Holder.PID, &l.Holder.Doing, &l.Token, &since, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l.Since, l.Expires = parseTime(since), parseTime(expires)
	if !time.Now().Before(l.Expires) {
		return nil, nil // released or expired
	}
	return &l, nil
}

// processAlive says whether the holder's process still runs on this host (a zombie does not: it
// exited and only waits for its parent).
func processAlive(pid int) bool { return proc.Alive(pid) }
