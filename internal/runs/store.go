package runs

import (
	"context"
	"time"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

// The run service sees the journal through the few methods each of its parts uses; *journal.DB
// (SQLite or PostgreSQL) has them all. A front end that needs the journal itself (export and
// import) asks Fleet.Journal.

// runReader reads runs and their events: replay, reports, history, waits.
type runReader interface {
	journal.TargetHistory
	Run(ctx context.Context, id string) (journal.Run, error)
	Runs(ctx context.Context) ([]journal.Run, error)
	RunForRelease(ctx context.Context, release string) (journal.Run, bool, error)
	RunEvents(ctx context.Context, runID string, fn func(rings.Event) error) error
	Events(ctx context.Context, runID string) ([]rings.Event, error)
	EventsAfter(ctx context.Context, runID string, seq int64) ([]rings.Event, error)
	LastSeq(ctx context.Context, runID string) (int64, error)
	EventsOfType(ctx context.Context, fn func(rings.Event) error, types ...rings.EventType) error
	Head(ctx context.Context) (int64, error)
}

// runWriter writes runs and their events: the engine (rings.Store) and the operators' acts. The
// fleet's is behind the redactor.
type runWriter interface {
	rings.Store
	CreateRun(ctx context.Context, r journal.Run) error
}

// releaseBook binds release names to their content and keeps module bundles.
type releaseBook interface {
	Release(ctx context.Context, name string) (journal.Release, error)
	RecordRelease(ctx context.Context, r journal.Release) error
	PutBundle(ctx context.Context, digest string, data []byte) error
	Bundle(ctx context.Context, digest string) ([]byte, error)
}

// reportCache keeps the reports of finished runs.
type reportCache interface {
	SaveReport(ctx context.Context, runID string, seq int64, version int, data []byte) error
	LoadReport(ctx context.Context, runID string) (seq int64, version int, data []byte, err error)
}

// switchBoard is the fleet's stop-the-line switch.
type switchBoard interface {
	SetSwitch(ctx context.Context, on bool, sw rings.Switch) error
	Switch(ctx context.Context) (*rings.Switch, error)
}

// leaseKeeper takes, renews and gives up the fleet lease, and tells who holds it.
type leaseKeeper interface {
	AcquireLease(ctx context.Context, h journal.Holder, now time.Time, ttl time.Duration) error
	RenewLease(ctx context.Context, now time.Time, ttl time.Duration) error
	ReleaseLease(ctx context.Context) error
	Lease(ctx context.Context) (*journal.LeaseInfo, error)
}

// doctorStore is what state doctor reads.
type doctorStore interface {
	Describe() string
	SchemaVersion(ctx context.Context) (have, want int, err error)
	Lease(ctx context.Context) (*journal.LeaseInfo, error)
	Runs(ctx context.Context) ([]journal.Run, error)
	RunEvents(ctx context.Context, runID string, fn func(rings.Event) error) error
	Releases(ctx context.Context) ([]journal.Release, error)
	BundleDigests(ctx context.Context) ([]string, error)
}

var (
	_ runReader   = (*journal.DB)(nil)
	_ runWriter   = (*journal.DB)(nil)
	_ runWriter   = redactingStore{}
	_ releaseBook = (*journal.DB)(nil)
	_ reportCache = (*journal.DB)(nil)
	_ switchBoard = (*journal.DB)(nil)
	_ leaseKeeper = (*journal.DB)(nil)
	_ doctorStore = (*journal.DB)(nil)
)

// stores is the journal as the fleet's parts see it.
type stores struct {
	reader   runReader
	writer   runWriter
	releases releaseBook
	reports  reportCache
	switches switchBoard
	lease    leaseKeeper
}

// storesOf gives every part the same journal, with writes behind the redactor.
func storesOf(db *journal.DB, writer runWriter) stores {
	return stores{reader: db, writer: writer, releases: db, reports: db, switches: db, lease: db}
}
