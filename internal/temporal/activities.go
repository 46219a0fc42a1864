package temporal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/rollout-dev/rollout/internal/rings"
)

// ErrPermanent is the type of an activity's error that no retry can mend (the worker cannot do
// this work: not its boundary, another release's module): the workflow takes it as the work's
// failure instead of retrying.
const ErrPermanent = "permanent"

// Fleet is what the activities need of the fleet, on the worker that runs them (runs.Fleet).
type Fleet interface {
	// Events reads a run's journal after seq after.
	Events(ctx context.Context, runID string, after int64) ([]rings.Event, error)
	// AppendOnce journals evs (a round: all or none) unless they already are (an append retried
	// after its answer was lost): events after seq after are compared with them. It returns their
	// seqs.
	AppendOnce(ctx context.Context, runID string, after int64, evs []rings.Event) ([]int64, error)
	// Inbox reads what others journaled for the run after seq after, and the switch's change
	// (a freeze.changed to journal, Seq 0) when it is no longer sw.
	Inbox(ctx context.Context, runID string, after int64, sw *rings.Switch) ([]rings.Event, error)
	// Executor is this worker's executor for a run: its boundaries' Terraform, gates, preflight.
	Executor(ctx context.Context, runID string) (*rings.Executor, error)
	// Mask masks in events every secret this worker knows (its boundaries' credentials, secret
	// release variables) before they leave it: through Temporal, to the journal.
	Mask(evs []rings.Event)
}

// AppendInput is a round of events to journal.
type AppendInput struct {
	RunID  string
	After  int64
	Events []rings.Event
}

// InboxInput asks for what changed outside the workflow.
type InboxInput struct {
	RunID  string
	After  int64
	Switch *rings.Switch
}

// WorkInput is work for a boundary's worker: the run and the command, with names and releases
// (never state or credentials).
type WorkInput struct {
	RunID string
	Work  rings.Work
}

// WorkOutput is what the work produced: its events, the outcome last.
type WorkOutput struct {
	Events []rings.Event
}

// Activities are the activities a worker runs, over its fleet.
type Activities struct {
	Fleet Fleet
	// Boundaries this worker serves: work for another is refused for good (a misrouted task).
	Boundaries map[string]bool
	// Journal: this worker serves the journal queue (ring-wide gates run there too).
	Journal bool
}

// Load reads a run's whole journal (a workflow's start, or its continuation as new).
func (a *Activities) Load(ctx context.Context, runID string) ([]rings.Event, error) {
	return a.Fleet.Events(ctx, runID, 0)
}

// Append journals a round once.
func (a *Activities) Append(ctx context.Context, in AppendInput) ([]int64, error) {
	return a.Fleet.AppendOnce(ctx, in.RunID, in.After, in.Events)
}

// Inbox reads what changed outside the workflow.
func (a *Activities) Inbox(ctx context.Context, in InboxInput) ([]rings.Event, error) {
	return a.Fleet.Inbox(ctx, in.RunID, in.After, in.Switch)
}

// Work carries out a command, heartbeating while it runs so that a worker that dies is noticed
// within the heartbeat timeout and the work given to another worker of the boundary.
func (a *Activities) Work(ctx context.Context, in WorkInput) (WorkOutput, error) {
	c := in.Work.Command
	if b := a.boundary(in.Work); !a.serves(c, b) {
		return WorkOutput{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("this worker does not serve boundary %q", b), ErrPermanent, nil, true)
	}
	x, err := a.Fleet.Executor(ctx, in.RunID)
	if err != nil {
		var perm interface{ Permanent() bool }
		if errors.As(err, &perm) && perm.Permanent() {
			return WorkOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrPermanent, err, true)
		}
		return WorkOutput{}, err
	}
	stop := heartbeat(ctx)
	defer stop()
	evs, ok := x.Carry(ctx, in.Work)
	if !ok {
		if ctx.Err() != nil {
			return WorkOutput{}, ctx.Err()
		}
		return WorkOutput{}, errors.New("interrupted")
	}
	a.Fleet.Mask(evs)
	return WorkOutput{Events: evs}, nil
}

// boundary is the boundary a piece of work runs in ("" for ring-wide work).
func (a *Activities) boundary(w rings.Work) string {
	if w.Command.Boundary != "" {
		return w.Command.Boundary
	}
	for _, t := range w.Command.Targets {
		if b := w.Bounds[t]; b != "" {
			return b
		}
	}
	return ""
}

func (a *Activities) serves(c rings.Command, boundary string) bool {
	if c.Kind == rings.CmdBake {
		return a.Journal
	}
	return boundary == "" || a.Boundaries[boundary]
}

// heartbeat tells Temporal this worker is alive, a few times per heartbeat timeout, until stop.
func heartbeat(ctx context.Context) (stop func()) {
	every := activity.GetInfo(ctx).HeartbeatTimeout / 3
	if every <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			activity.RecordHeartbeat(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return cancel
}

// Written finds a round of events among have (the run's events after the seq the workflow last
// knew): a retried append whose first try wrote it, though its answer was lost. The round's first
// event is its key: its type, ring, target and time (the workflow's, fixed in its history) with
// the events after it. It returns their seqs.
func Written(have, round []rings.Event) ([]int64, bool) {
	if len(round) == 0 {
		return nil, true
	}
	for i, ev := range have {
		if !sameEvent(ev, round[0]) || i+len(round) > len(have) {
			continue
		}
		seqs := make([]int64, len(round))
		for j := range round {
			if have[i+j].Type != round[j].Type {
				return nil, false
			}
			seqs[j] = have[i+j].Seq
		}
		return seqs, true
	}
	return nil, false
}

func sameEvent(a, b rings.Event) bool {
	return a.Type == b.Type && a.Ring == b.Ring && a.Target == b.Target && a.At.Truncate(time.Microsecond).Equal(b.At.Truncate(time.Microsecond))
}
