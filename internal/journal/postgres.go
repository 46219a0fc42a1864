package journal

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rollout-dev/rollout/internal/rings"
)

//go:embed migrations/postgres/*.sql
var pgMigrationFS embed.FS

// pgMigrations are the embedded schema versions, in order: migrations/postgres/NNNN_name.sql.
func pgMigrations() []string {
	names, _ := fs.Glob(pgMigrationFS, "migrations/postgres/*.sql")
	sort.Strings(names)
	out := make([]string, len(names))
	for i, n := range names {
		b, _ := pgMigrationFS.ReadFile(n)
		out[i] = string(b)
	}
	return out
}

// migrationLock is the advisory lock key under which migrations run, so that two processes
// starting at once do not both apply one.
const migrationLock = 0x726f6c6c6f7574 // "rollout"

// Postgres is the journal in a PostgreSQL database shared by a team's pipelines and operators.
type Postgres struct {
	pool  *pgxpool.Pool
	desc  string
	fence atomic.Int64
}

var _ Store = (*Postgres)(nil)

// OpenPostgres connects, and applies migrations the database lacks.
func OpenPostgres(ctx context.Context, rawURL string) (*Postgres, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("state URL: %v", err)
	}
	if _, has := u.User.Password(); has {
		return nil, errors.New("state URL: remove the password; give it in PGPASSWORD or a password file (PGPASSFILE), never in configuration")
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("state URL: %v", err)
	}
	cfg.MaxConns = 8
	desc := fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", desc, err)
	}
	s := &Postgres{pool: pool, desc: desc}
	if err := s.Migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open journal %s: %w", desc, err)
	}
	return s, nil
}

func (s *Postgres) Close() error     { s.pool.Close(); return nil }
func (s *Postgres) Describe() string { return s.desc }

// Migrate applies the embedded migrations the database lacks, under an advisory lock.
func (s *Postgres) Migrate(ctx context.Context) error {
	migs := pgMigrations()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
			return err
		}
		if v > len(migs) {
			return fmt.Errorf("journal schema version %d is newer than this rollout understands (%d): upgrade rollout", v, len(migs))
		}
		for i := v; i < len(migs); i++ {
			if _, err := tx.Exec(ctx, migs[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_version(version) VALUES ($1)`, i+1); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Postgres) SchemaVersion(ctx context.Context) (int, int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, len(pgMigrations()), err
}

// write runs fn in a transaction fenced by this store's lease token: the lease row is read FOR
// SHARE, so a takeover (which updates it) waits for this write, and every later write sees it.
func (s *Postgres) write(ctx context.Context, what string, fn func(tx pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if want := s.fence.Load(); want != 0 {
			var token int64
			err := tx.QueryRow(ctx, `SELECT token FROM lease WHERE fleet = $1 FOR SHARE`, fleetKey).Scan(&token)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && token != want) {
				return ErrLeaseLost
			}
			if err != nil {
				return err
			}
		}
		return fn(tx)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (s *Postgres) CreateRun(ctx context.Context, r Run) error {
	return s.write(ctx, "create run "+r.ID, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO runs(id, kind, release, digest, created_at) VALUES ($1,$2,$3,$4,$5)`,
			r.ID, r.Kind, r.Release.Name, r.Release.Digest, formatTime(r.Created))
		return err
	})
}

func (s *Postgres) runs(ctx context.Context, where string, args ...any) ([]Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, kind, release, digest, created_at FROM runs `+where+` ORDER BY created_at DESC, id DESC`, args...)
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

func (s *Postgres) Runs(ctx context.Context) ([]Run, error) { return s.runs(ctx, "") }

func (s *Postgres) Run(ctx context.Context, id string) (Run, error) {
	rs, err := s.runs(ctx, "WHERE id = $1 OR left(id, $2) = $1", id, len(id))
	if err != nil {
		return Run{}, err
	}
	return pickRun(id, rs)
}

func (s *Postgres) RunForRelease(ctx context.Context, release string) (Run, bool, error) {
	rs, err := s.runs(ctx, "WHERE kind = $1 AND release = $2", rings.KindRelease, release)
	if err != nil || len(rs) == 0 {
		return Run{}, false, err
	}
	return rs[0], true, nil
}

func (s *Postgres) Append(ctx context.Context, events ...rings.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.write(ctx, "append events", func(tx pgx.Tx) error {
		next := map[string]int64{}
		for i := range events {
			ev := &events[i]
			n, ok := next[ev.RunID]
			if !ok {
				// Appenders of one run take turns: numbering is per run, without gaps.
				if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, ev.RunID); err != nil {
					return err
				}
				if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = $1`, ev.RunID).Scan(&n); err != nil {
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
			if _, err := tx.Exec(ctx, `INSERT INTO events(run_id, seq, at, type, target, data) VALUES ($1,$2,$3,$4,$5,$6)`,
				ev.RunID, ev.Seq, formatTime(ev.At), string(ev.Type), ev.Target, data); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Postgres) scanEvents(ctx context.Context, fn func(rings.Event) error, q string, args ...any) error {
	rows, err := s.pool.Query(ctx, q, args...)
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

func (s *Postgres) Events(ctx context.Context, runID string) ([]rings.Event, error) {
	var out []rings.Event
	if err := s.scanEvents(ctx, collect(&out), `SELECT data FROM events WHERE run_id = $1 ORDER BY seq`, runID); err != nil {
		return nil, fmt.Errorf("read journal of %s: %w", runID, err)
	}
	return out, nil
}

func (s *Postgres) TargetEvents(ctx context.Context, target string, types ...rings.EventType) ([]rings.Event, error) {
	q := `SELECT data FROM events WHERE target = $1`
	args := []any{target}
	if len(types) > 0 {
		names := make([]string, len(types))
		for i, t := range types {
			names[i] = string(t)
		}
		q += ` AND type = ANY($2)`
		args = append(args, names)
	}
	var out []rings.Event
	if err := s.scanEvents(ctx, collect(&out), q+` ORDER BY id`, args...); err != nil {
		return nil, fmt.Errorf("read history of %s: %w", target, err)
	}
	return out, nil
}

func (s *Postgres) AllEvents(ctx context.Context, fn func(rings.Event) error) error {
	return s.scanEvents(ctx, fn, `SELECT data FROM events ORDER BY id`)
}

func (s *Postgres) RecordRelease(ctx context.Context, r Release) error {
	vars, err := json.Marshal(r.Vars)
	if err != nil {
		return err
	}
	return s.write(ctx, "record release "+r.Name, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO releases(name, digest, vars, created_at) VALUES ($1,$2,$3,$4) ON CONFLICT (name) DO NOTHING`,
			r.Name, r.Digest, string(vars), formatTime(r.Created)); err != nil {
			return err
		}
		var digest, oldVars string
		if err := tx.QueryRow(ctx, `SELECT digest, vars FROM releases WHERE name = $1`, r.Name).Scan(&digest, &oldVars); err != nil {
			return err
		}
		return releaseChanged(r.Name, digest, r.Digest, oldVars, string(vars))
	})
}

func (s *Postgres) releases(ctx context.Context, where string, args ...any) ([]Release, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, digest, vars, created_at FROM releases `+where+` ORDER BY created_at, name`, args...)
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

func (s *Postgres) Release(ctx context.Context, name string) (Release, error) {
	rs, err := s.releases(ctx, "WHERE name = $1", name)
	if err != nil {
		return Release{}, err
	}
	if len(rs) == 0 {
		return Release{}, fmt.Errorf("release %q: %w", name, ErrNotFound)
	}
	return rs[0], nil
}

func (s *Postgres) Releases(ctx context.Context) ([]Release, error) { return s.releases(ctx, "") }

func (s *Postgres) PutBundle(ctx context.Context, digest string, data []byte) error {
	return s.write(ctx, "keep bundle "+digest, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO bundles(digest, data, created_at) VALUES ($1,$2,$3) ON CONFLICT (digest) DO NOTHING`,
			digest, data, formatTime(time.Now()))
		return err
	})
}

func (s *Postgres) Bundle(ctx context.Context, digest string) ([]byte, error) {
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM bundles WHERE digest = $1`, digest).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("bundle %s: %w", digest, ErrNotFound)
	}
	return data, err
}

func (s *Postgres) BundleDigests(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT digest FROM bundles ORDER BY digest`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func (s *Postgres) AcquireLease(ctx context.Context, h Holder, now time.Time, ttl time.Duration) error {
	var token int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Make sure the row exists, then lock it: concurrent acquirers queue on the row lock.
		if _, err := tx.Exec(ctx, `INSERT INTO lease(fleet, holder, host, pid, doing, token, acquired_at, expires_at)
			VALUES ($1, '', '', 0, '', 0, $2, $2) ON CONFLICT (fleet) DO NOTHING`, fleetKey, formatTime(time.Unix(0, 0))); err != nil {
			return err
		}
		var cur Holder
		var since, expires string
		if err := tx.QueryRow(ctx, `SELECT holder, host, pid, doing, token, acquired_at, expires_at FROM lease WHERE fleet = $1 FOR UPDATE`, fleetKey).
			Scan(&cur.Name, &cur.Host, &cur.PID, &cur.Doing, &token, &since, &expires); err != nil {
			return err
		}
		if !mayTakeOver(cur, h, now, parseTime(expires)) {
			return &LeaseHeldError{Holder: cur, Since: parseTime(since), Expires: parseTime(expires)}
		}
		token++
		_, err := tx.Exec(ctx, `UPDATE lease SET holder=$2, host=$3, pid=$4, doing=$5, token=$6, acquired_at=$7, expires_at=$8 WHERE fleet = $1`,
			fleetKey, h.Name, h.Host, h.PID, h.Doing, token, formatTime(now), formatTime(now.Add(ttl)))
		return err
	})
	var held *LeaseHeldError
	if errors.As(err, &held) {
		return held
	}
	if err != nil {
		return fmt.Errorf("acquire lease: %w", err)
	}
	s.fence.Store(token)
	return nil
}

func (s *Postgres) RenewLease(ctx context.Context, now time.Time, ttl time.Duration) error {
	tag, err := s.pool.Exec(ctx, `UPDATE lease SET expires_at = $1 WHERE fleet = $2 AND token = $3`, formatTime(now.Add(ttl)), fleetKey, s.fence.Load())
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrLeaseLost
	}
	return nil
}

func (s *Postgres) ReleaseLease(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `UPDATE lease SET expires_at = $1 WHERE fleet = $2 AND token = $3`, formatTime(time.Unix(0, 0)), fleetKey, s.fence.Swap(0))
	return err
}

func (s *Postgres) Lease(ctx context.Context) (*LeaseInfo, error) {
	var l LeaseInfo
	var since, expires string
	err := s.pool.QueryRow(ctx, `SELECT holder, host, pid, doing, token, acquired_at, expires_at FROM lease WHERE fleet = $1`, fleetKey).
		Scan(&l.Holder.Name, &l.Holder.Host, &l.Holder.PID, &l.Holder.Doing, &l.Token, &since, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l.Since, l.Expires = parseTime(since), parseTime(expires)
	if !time.Now().Before(l.Expires) {
		return nil, nil
	}
	return &l, nil
}
