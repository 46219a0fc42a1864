package runs

import (
	"context"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
)

// failedReleases are the releases a run rolled back on any of targets, less those a retry then
// carried through (see forgive).
func (f *Fleet) failedReleases(ctx context.Context, targets []string) (map[string]bool, error) {
	failed, err := journal.FailedReleases(ctx, f.reader, targets)
	if err != nil {
		return nil, err
	}
	return failed, f.forgive(ctx, failed)
}

// forgive takes out of failed the releases a later attempt (start --retry) carried through every
// ring: a release rolled back once is no target's last known good until a retry of it succeeds.
func (f *Fleet) forgive(ctx context.Context, failed map[string]bool) error {
	for name := range failed {
		run, found, err := f.reader.RunForRelease(ctx, name) // the newest attempt
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		rep, _, err := f.report(ctx, run.ID, NeedHead)
		if err != nil {
			return err
		}
		if rep.Attempt > 1 && rep.Phase == rings.PhaseSucceeded {
			delete(failed, name)
		}
	}
	return nil
}
