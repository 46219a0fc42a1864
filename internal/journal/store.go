// Package journal keeps runs, their append-only events, releases (with their module bundles) and
// the fleet lease. SQLite (modernc.org/sqlite, no cgo) at .rollout/state.db is the embedded
// default; PostgreSQL (pgx) is the shared journal a team's pipelines and operators use together.
// Both are one DB with a dialect each, and pass one conformance suite (conformance_test.go).
package journal

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

// Run is one run's header.
type Run struct {
	ID      string           `json:"id"`
	Kind    string           `json:"kind"`
	Release rings.ReleaseRef `json:"release"`
	Created time.Time        `json:"created"`
}

// Release is a recorded, immutable release: a name bound to a digest of its module tree and its
// variables. Module is the module tree's own digest (its snapshot and bundle); a release recorded
// before schema version 4 has none, and its Digest is the module tree's.
type Release struct {
	Name    string         `json:"name"`
	Digest  string         `json:"digest"`
	Module  string         `json:"module,omitempty"`
	Vars    map[string]any `json:"vars"`
	Created time.Time      `json:"created"`
}

// Ref is the release as runs name it.
func (r Release) Ref() rings.ReleaseRef {
	return rings.ReleaseRef{Name: r.Name, Digest: r.Digest, Module: r.Module}
}

// Holder identifies who holds the fleet lease.
type Holder struct {
	Name  string // user@host, shown to whoever is refused
	Host  string
	PID   int
	Doing string // what the holder is doing, e.g. "start --release v42"
}

// LeaseInfo is the current lease.
type LeaseInfo struct {
	Holder  Holder
	Token   int64
	Since   time.Time
	Expires time.Time
}

// Live says whether the lease's holder may still be at work, as seen from host: the lease has not
// expired, and a holder on host is a process that still runs (not a zombie).
func (l *LeaseInfo) Live(host string) bool {
	if l == nil || !time.Now().Before(l.Expires) {
		return false
	}
	return l.Holder.Host != host || processAlive(l.Holder.PID)
}

var (
	// ErrNotFound is returned for a run, release or bundle that is not in the journal.
	ErrNotFound = errors.New("not found")
	// ErrLeaseLost is returned when another process took this process's lease over.
	ErrLeaseLost = errors.New("the fleet lease was taken over by another process")
)

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

// timeFormat is fixed-width UTC, so that stored times sort as text in both stores and survive an
// export and import to the nanosecond.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(timeFormat, s)
	return t
}

// TargetHistory reads a target's events across runs: what LastKnownGood, Releases and Current need.
type TargetHistory interface {
	TargetEvents(ctx context.Context, target string, types ...rings.EventType) ([]rings.Event, error)
}

// releaseTypes are the events of a target that say which releases it ran, which passed there, and
// which a run rolled back there.
var releaseTypes = []rings.EventType{rings.TargetApplying, rings.TargetApplied, rings.TargetVerified, rings.TargetRollingBack, rings.TargetRolledBack}

// ReleaseEvents reads a target's release events across runs (see Pick and RolledBack), oldest first.
func ReleaseEvents(ctx context.Context, s TargetHistory, target string) ([]rings.Event, error) {
	return s.TargetEvents(ctx, target, releaseTypes...)
}

// RolledBack adds to failed the releases a run rolled back on the target whose release events
// these are (its ring or the run halted, or an operator aborted it with rollback): the release
// that run last applied there. Such a release is no target's last known good, wherever it passed.
func RolledBack(evs []rings.Event, failed map[string]bool) {
	applied := map[string]string{} // run -> the release it last applied here
	for _, ev := range evs {
		switch {
		case (ev.Type == rings.TargetApplying || ev.Type == rings.TargetApplied) && ev.Release != nil:
			applied[ev.RunID] = ev.Release.Name
		case ev.Type == rings.TargetRollingBack && applied[ev.RunID] != "":
			failed[applied[ev.RunID]] = true
		}
	}
}

// Pick is, from a target's release events, its last known good (the newest release whose gates
// passed there after a promotion or a rollback, other than exclude and not failed) and what it
// runs now (the release last applied there by any run).
func Pick(evs []rings.Event, exclude string, failed map[string]bool) (lkg, current *rings.ReleaseRef) {
	for i := len(evs) - 1; i >= 0; i-- {
		r := evs[i].Release
		if r == nil {
			continue
		}
		if current == nil && (evs[i].Type == rings.TargetApplied || evs[i].Type == rings.TargetRolledBack) {
			current = r
		}
		if lkg == nil && (evs[i].Type == rings.TargetVerified || evs[i].Type == rings.TargetRolledBack) && r.Name != exclude && !failed[r.Name] {
			lkg = r
		}
		if lkg != nil && current != nil {
			break
		}
	}
	return lkg, current
}

// LastKnownGood is the newest release whose gates passed on target (after a promotion or a
// rollback), leaving out the release named exclude (the one a run is about to apply) and the
// failed ones (see RolledBack).
func LastKnownGood(ctx context.Context, s TargetHistory, target, exclude string, failed map[string]bool) (*rings.ReleaseRef, error) {
	evs, err := ReleaseEvents(ctx, s, target)
	if err != nil {
		return nil, err
	}
	lkg, _ := Pick(evs, exclude, failed)
	return lkg, nil
}

// FailedReleases are the releases a run rolled back on any of targets (see RolledBack).
func FailedReleases(ctx context.Context, s TargetHistory, targets []string) (map[string]bool, error) {
	failed := map[string]bool{}
	for _, t := range targets {
		evs, err := ReleaseEvents(ctx, s, t)
		if err != nil {
			return nil, err
		}
		RolledBack(evs, failed)
	}
	return failed, nil
}

// Current is the release last applied to target by any run (a promotion, an automatic or a
// manual rollback), or nil if none was.
func Current(ctx context.Context, s TargetHistory, target string) (*rings.ReleaseRef, error) {
	evs, err := s.TargetEvents(ctx, target, rings.TargetApplied, rings.TargetRolledBack)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return evs[len(evs)-1].Release, nil
}

// Open opens the journal named by url: "" or "sqlite" for stateDir/state.db (the fleet's own
// directory), "sqlite:PATH" for another file (relative to fleetDir, the folder of rollout.yaml),
// or a postgres:// (postgresql://) URL. A password in the URL is refused: give it in PGPASSWORD or
// a password file (PGPASSFILE), never in configuration.
func Open(ctx context.Context, url, fleetDir, stateDir string) (*DB, error) {
	switch {
	case url == "" || url == "sqlite":
		return OpenSQLite(filepath.Join(stateDir, "state.db"))
	case strings.HasPrefix(url, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//")
		if !filepath.IsAbs(p) {
			p = filepath.Join(fleetDir, p)
		}
		return OpenSQLite(p)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return OpenPostgres(ctx, url)
	}
	return nil, fmt.Errorf("state %q: want sqlite, sqlite:PATH or a postgres:// URL", url)
}
