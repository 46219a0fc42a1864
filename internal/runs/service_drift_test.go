package runs

import (
	"context"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/rings"
)

// driftingTerraform is memTerraform whose targets drift on demand.
type driftingTerraform struct {
	*memTerraform
	drifted map[string]bool
}

func (d *driftingTerraform) Drift(_ context.Context, target string, _ rings.ReleaseRef) (rings.DriftReport, error) {
	if d.drifted[target] {
		return rings.DriftReport{Drifted: true, Resources: []string{"terraform_data.stamp"}}, nil
	}
	return rings.DriftReport{}, nil
}

// A ring with driftCheck: block stops on drift before its first apply; an acknowledgement with a
// reason lets it go on, and one of a ring that is not stopped is refused.
func TestServiceDriftStopsARingUntilAcknowledged(t *testing.T) {
	s := newService(t, false)
	s.edit("    rollback: run\n", "    rollback: run\n    driftCheck: block\n")
	s.start("v1")
	drift := &driftingTerraform{memTerraform: s.tf, drifted: map[string]bool{"m-2": true}}
	id, err := s.doWith(drift, func(f *Fleet) (string, error) { return f.Start(context.Background(), StartRequest{Release: "v2"}) })
	if err != nil || s.phase(id) != rings.PhaseWaiting || s.tf.running("m-1") != "v1" {
		t.Fatalf("v2 over a drifted ring: %s %v, m-1 runs %s", s.phase(id), err, s.tf.running("m-1"))
	}
	if rep := s.report(id); rep.WaitingFor != "driftAck" || !strings.Contains(rep.Next, "rollout drift ack") || rep.Rings[1].Drift == nil || rep.Rings[1].Drift.Targets[0] != "m-2" {
		t.Fatalf("report: next %q, drift %+v", rep.Next, rep.Rings[1].Drift)
	}
	view, err := s.fleetView() // the fleet says which target drifted since it got its release
	if err != nil || len(view) != 3 || view[0].Drift != "" || view[1].Drift != "clean" || view[2].Drift != "drift" {
		t.Fatalf("fleet after the drift check: %+v %v", view, err)
	}
	ctx := context.Background()
	ack := func(ring, reason string) error {
		_, err := s.do(func(f *Fleet) (string, error) { return "", f.AckDrift(ctx, id, ring, Act{As: "ana", Reason: reason}) })
		return err
	}
	if ack("main", "") == nil || ack("canary", "x") == nil {
		t.Fatal("an acknowledgement without a reason, or of a ring not stopped, was journaled")
	}
	if err := ack("main", "the drift is the hotfix, kept"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.doWith(drift, func(f *Fleet) (string, error) { return f.Resume(ctx, id, false, Act{As: "ana"}) }); err != nil || s.phase(id) != rings.PhaseSucceeded {
		t.Fatalf("resume after the acknowledgement: %s %v", s.phase(id), err)
	}
	s.runs(map[string]string{"m-1": "v2", "m-2": "v2"})
}

// Doctor reads the journal's health: its schema, the runs, unfinished ones, releases and their
// bundles.
func TestServiceDoctor(t *testing.T) {
	s := newService(t, true)
	s.start("v1")
	rep, err := s.doctor()
	if err != nil || rep.Runs != 1 || len(rep.Unfinished) != 1 || rep.Releases != 1 || rep.Bundles != 1 || rep.Schema != rep.Known || len(rep.Problems) != 0 {
		t.Fatalf("doctor: %+v %v", rep, err)
	}
}

func (s *service) doctor() (DoctorReport, error) {
	f := s.open()
	defer f.Close()
	return f.Doctor(context.Background(), false)
}

// doWith runs a use case with another provisioner for the targets.
func (s *service) doWith(p rings.Provisioner, use func(f *Fleet) (string, error)) (string, error) {
	s.t.Helper()
	s.t.Setenv("TF_CLI_CONFIG_FILE", "")
	f, err := Open(context.Background(), Options{Config: s.dir, TFBin: fakeBinary(s.t), Provisioner: func(rings.Provisioner) rings.Provisioner { return p }})
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	return use(f)
}

// Plan plans the release on every target, ring by ring, and binds nothing: the name may then
// mean other content.
func TestServicePlanBindsNothing(t *testing.T) {
	s := newService(t, false)
	plans, err := s.doPlan("v1", nil)
	if err != nil || len(plans) != 3 || plans[0].Ring != "canary" || plans[0].Plan == nil || plans[0].Plan.Add != 1 || !plans[0].Changes {
		t.Fatalf("plan: %+v %v", plans, err)
	}
	if _, err := s.doPlan("v1", map[string]any{"extra": "x"}); err != nil {
		t.Fatalf("a plan bound the name: %v", err)
	}
	if len(s.tf.applies) != 0 {
		t.Fatalf("a plan applied: %v", s.tf.applies)
	}
}

func (s *service) doPlan(release string, vars map[string]any) ([]TargetPlan, error) {
	f := s.open()
	defer f.Close()
	return f.Plan(context.Background(), PlanRequest{Release: release, Vars: vars})
}
