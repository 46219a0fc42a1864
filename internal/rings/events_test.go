package rings

import (
	"encoding/json"
	"testing"
)

// Every meaning of version 1's "outcome" lands in its own field, and the published version 1
// form (--events) gives back the very line a version 1 journal held.
func TestVersion1EventsReadIntoTheirFieldsAndWriteBackTheSame(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		v1   string
		want Event
	}{
		{`{"v":1,"seq":9,"run":"r","at":"2026-01-01T00:00:00Z","type":"run.finished","outcome":"rolled_back","message":"gate failed"}`,
			Event{Type: RunFinished, Phase: PhaseRolledBack}},
		{`{"v":1,"seq":3,"run":"r","at":"2026-01-01T00:00:00Z","type":"target.apply_failed","target":"t","outcome":"untouched"}`,
			Event{Type: TargetApplyFailed, Untouched: true}},
		{`{"v":1,"seq":3,"run":"r","at":"2026-01-01T00:00:00Z","type":"target.apply_failed","target":"t","outcome":"permanent"}`,
			Event{Type: TargetApplyFailed, Class: Permanent}},
		{`{"v":1,"seq":3,"run":"r","at":"2026-01-01T00:00:00Z","type":"target.retrying","target":"t","outcome":"transient"}`,
			Event{Type: TargetRetrying, Class: Transient}},
		{`{"v":1,"seq":4,"run":"r","at":"2026-01-01T00:00:00Z","type":"gate.measured","target":"t","gate":"g","passed":true,"outcome":"ok (dry run)"}`,
			Event{Type: GateMeasured, Passed: &yes, Measured: OK, DryRun: true}},
		{`{"v":1,"seq":4,"run":"r","at":"2026-01-01T00:00:00Z","type":"gate.measured","target":"t","gate":"g","passed":false,"stale":true,"outcome":"error"}`,
			Event{Type: GateMeasured, Passed: &no, Measured: Error, Stale: true}},
		{`{"v":1,"seq":5,"run":"r","at":"2026-01-01T00:00:00Z","type":"gate.overridden","target":"t","gate":"g","outcome":"pass","actor":"oncall"}`,
			Event{Type: GateOverridden, Passed: &yes}},
		{`{"v":1,"seq":5,"run":"r","at":"2026-01-01T00:00:00Z","type":"ring.drift_checked","ring":"a","outcome":"drift","targets":["t"]}`,
			Event{Type: RingDriftChecked, Drift: Drifted}},
		{`{"v":1,"seq":6,"run":"r","at":"2026-01-01T00:00:00Z","type":"run.abort_requested","outcome":"rollback","actor":"oncall"}`,
			Event{Type: RunAbortRequested, Rollback: true}},
		{`{"v":1,"seq":7,"run":"r","at":"2026-01-01T00:00:00Z","type":"freeze.changed","outcome":"off"}`,
			Event{Type: FreezeChanged}},
	} {
		var ev Event
		if err := json.Unmarshal([]byte(c.v1), &ev); err != nil {
			t.Fatal(err)
		}
		w := c.want
		if ev.V != EventVersion || ev.Phase != w.Phase || ev.Untouched != w.Untouched || ev.Class != w.Class || ev.Measured != w.Measured ||
			ev.DryRun != w.DryRun || ev.Drift != w.Drift || ev.Rollback != w.Rollback || (ev.Passed == nil) != (w.Passed == nil) ||
			ev.Passed != nil && *ev.Passed != *w.Passed {
			t.Errorf("%s\nread as %+v", c.v1, ev)
		}
		back, err := json.Marshal(ev.V1())
		if err != nil {
			t.Fatal(err)
		}
		if string(back) != c.v1 {
			t.Errorf("published form:\n got %s\nwant %s", back, c.v1)
		}
		// The journal's own form reads back to the same event.
		own, _ := json.Marshal(ev)
		var again Event
		if err := json.Unmarshal(own, &again); err != nil {
			t.Fatal(err)
		}
		if b2, _ := json.Marshal(again); string(b2) != string(own) {
			t.Errorf("version 2 does not read back the same:\n%s\n%s", own, b2)
		}
	}
}

// A version 2 record keeps its fields, and a newer version is left for the journal to refuse.
func TestVersion2AndNewerEventsAreReadAsWritten(t *testing.T) {
	var ev Event
	if err := json.Unmarshal([]byte(`{"v":2,"run":"r","at":"2026-01-01T00:00:00Z","type":"run.finished","phase":"succeeded"}`), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Phase != PhaseSucceeded || ev.V != 2 {
		t.Fatalf("%+v", ev)
	}
	if err := json.Unmarshal([]byte(`{"v":9,"run":"r","at":"2026-01-01T00:00:00Z","type":"x.y"}`), &ev); err != nil || ev.V != 9 {
		t.Fatalf("a newer version must come back as it is, for the journal to refuse: %+v %v", ev, err)
	}
}
