//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testsupport/jaegertest"
	"github.com/rollout-dev/rollout/internal/testsupport/ststest"
)

// TestTracesRespectSovereignBoundaries runs two rings over a commercial boundary and AWS GovCloud,
// which names its own collector, with real Jaeger collectors: the fleet's receives the run's
// trace (run, rings, each commercial target's apply and gate measurements, parented in that
// shape, with their attributes) and nothing of the GovCloud target; GovCloud's receives its
// target's spans and nothing of the others.
func TestTracesRespectSovereignBoundaries(t *testing.T) {
	t.Parallel()
	fleetCol, govCol := jaegertest.Start(t), jaegertest.Start(t)
	sts := ststest.New(t)
	sts.Set("AKIAGOVCLOUD000001", "arn:aws-us-gov:iam::222222222222:user/deployer")
	f := newFleet(t, fleetSpec{
		boundaries: fmt.Sprintf(`
  local-a: {cloud: local}
  aws-us-gov:
    cloud: aws
    partition: aws-us-gov
    identity: {accessKeyIdEnv: GOV_KEY, secretAccessKeyEnv: GOV_SECRET, accountId: "222222222222"}
    endpoints: {sts: %q}
    telemetry: {endpoint: %q}`, sts.URL, govCol.OTLP),
		rings: "  - name: canary\n    targets: {names: [c-1]}\n    gates: [healthz]\n  - name: main\n    targets: {names: [gov-1, c-2]}\n    maxParallel: 2\n    gates: [healthz]\n",
		targets: `targets:
  - {name: c-1, boundary: local-a, region: r1}
  - {name: c-2, boundary: local-a, region: r1}
  - {name: gov-1, boundary: aws-us-gov, region: us-gov-west-1, backend: {type: local}}
`,
	})
	f.write("rollout.yaml", readFile(t, filepath.Join(f.dir, "rollout.yaml"))+"telemetry: {endpoint: "+fleetCol.OTLP+"}\n")
	f.env = []string{"GOV_KEY=AKIAGOVCLOUD000001", "GOV_SECRET=gov-secret-for-traces"}
	f.state = func(target string) ([]byte, bool) { // gov-1's local backend keeps it in its working directory
		p := filepath.Join(f.dir, ".rollout", "tfstate", target+".tfstate")
		if target == "gov-1" {
			p = filepath.Join(f.dir, ".rollout", "work", target, "terraform.tfstate")
		}
		b, err := os.ReadFile(p)
		return b, err == nil
	}
	f.must(0, "start", "--release", "v1")
	run := f.status().Run

	byName := func(spans []jaegertest.Span) map[string]jaegertest.Span {
		m := map[string]jaegertest.Span{}
		for _, s := range spans {
			m[s.OperationName] = s
		}
		return m
	}
	var fleet, gov map[string]jaegertest.Span
	deadline := time.Now().Add(30 * time.Second)
	for {
		fleet, gov = byName(fleetCol.Spans(t, "rollout")), byName(govCol.Spans(t, "rollout"))
		if _, ok := fleet["run "+run]; ok && len(gov) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no trace of run %s: the fleet's collector holds %d span names, GovCloud's %d", run, len(fleet), len(gov))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, name := range []string{"run " + run, "ring canary", "ring main", "apply c-1", "apply c-2", "terraform init", "terraform apply", "gate healthz"} {
		if _, ok := fleet[name]; !ok {
			t.Errorf("the fleet's collector has no span %q (it has %v)", name, keysOf(fleet))
		}
	}
	parent := func(s jaegertest.Span) string {
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" {
				return r.SpanID
			}
		}
		return ""
	}
	if apply, ring, root := fleet["apply c-1"], fleet["ring canary"], fleet["run "+run]; parent(apply) != ring.SpanID || parent(ring) != root.SpanID ||
		parent(fleet["terraform apply"]) == "" || parent(fleet["terraform apply"]) == ring.SpanID || fleet["terraform apply"].Tag("rollout.terraform.command") != "apply" {
		t.Errorf("span tree: apply c-1's parent %s, ring canary %s (parent %s), run %s", parent(apply), ring.SpanID, parent(ring), root.SpanID)
	}
	if a := fleet["apply c-1"]; a.Tag("rollout.run") != run || a.Tag("rollout.release") != "v1" || a.Tag("rollout.boundary") != "local-a" ||
		a.Tag("rollout.ring") != "canary" || a.Tag("rollout.phase") != "target.applied" {
		t.Errorf("apply c-1's attributes: %+v", a.Tags)
	}
	for name, s := range fleet {
		if strings.Contains(name, "gov-1") || s.Tag("rollout.target") == "gov-1" || s.Tag("rollout.boundary") == "aws-us-gov" {
			t.Errorf("the commercial collector holds a span of the GovCloud target: %s %+v", name, s.Tags)
		}
	}
	if _, ok := gov["terraform apply"]; !ok {
		t.Errorf("GovCloud's collector has no span of gov-1's terraform apply (it has %v)", keysOf(gov))
	}
	g, ok := gov["apply gov-1"]
	if !ok || g.Tag("rollout.region") != "us-gov-west-1" || g.Tag("rollout.run") != run {
		t.Errorf("GovCloud's collector: apply gov-1 %v %+v (it has %v)", ok, g.Tags, keysOf(gov))
	}
	for name := range gov {
		if strings.Contains(name, "c-1") || strings.Contains(name, "c-2") || strings.HasPrefix(name, "run ") || strings.HasPrefix(name, "ring ") {
			t.Errorf("GovCloud's collector holds a span that is not its target's: %s", name)
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
