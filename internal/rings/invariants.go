package rings

import "fmt"

// CheckOneOperationAtATime reads a journal (one run's events or every run's, in the order they
// were appended) and reports the first target that had two Terraform operations in flight at
// once: an apply or rollback journaled as started while another of that target had not ended.
// A run that finished ends whatever of its work was still open (the process driving it is gone).
func CheckOneOperationAtATime(evs []Event) error {
	open := map[string]Event{} // by target: the start of its operation in flight
	for _, ev := range evs {
		switch ev.Type {
		case TargetApplying, TargetRollingBack:
			if was, ok := open[ev.Target]; ok {
				return fmt.Errorf("target %s: %s (run %s, seq %d) while %s (run %s, seq %d) was in flight",
					ev.Target, ev.Type, ev.RunID, ev.Seq, was.Type, was.RunID, was.Seq)
			}
			open[ev.Target] = ev
		case TargetApplied, TargetApplyFailed, TargetRolledBack, TargetRollbackFailed:
			delete(open, ev.Target)
		case RunFinished:
			for t, was := range open {
				if was.RunID == ev.RunID {
					delete(open, t)
				}
			}
		}
	}
	return nil
}
