//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// A ring's approval is waived when every plan of the ring keeps within approval.unlessPlans (no
// destroy, no replacement): a first deployment, which only adds, goes through; a release that
// replaces a resource waits for its approval, and says which plan broke which check.
func TestApprovalWaivedByPlans(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := &fleet{t: t, dir: dir}
	f.write("terraform/app/main.tf", `
variable "app_version" { type = string }
variable "generation" {
  type    = string
  default = "1"
}
resource "terraform_data" "app" {
  input            = var.app_version
  triggers_replace = [var.generation]
}
output "version" { value = var.app_version }
`)
	f.write("rollout.yaml", `release:
  module: terraform/app
  vars: {app_version: "{{ .Release.Name }}"}
boundaries:
  local-a: {cloud: local}
rings:
  - name: canary
    targets: {names: [c-1]}
  - name: prod
    targets: {names: [p-1, p-2]}
    approval: {required: true, unlessPlans: {destroys: 0, replaces: 0}}
`)
	f.write("environments/all.yaml", "targets:\n  - {name: c-1, boundary: local-a}\n  - {name: p-1, boundary: local-a}\n  - {name: p-2, boundary: local-a}\n")
	type ring struct {
		Name           string `json:"name"`
		Phase          string `json:"phase"`
		ApprovalWaived *struct {
			Actor  string `json:"actor"`
			Reason string `json:"reason"`
		} `json:"approvalWaived"`
	}
	rings := func(out string) map[string]ring {
		var rep struct {
			Rings []ring `json:"rings"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		m := map[string]ring{}
		for _, r := range rep.Rings {
			m[r.Name] = r
		}
		return m
	}

	// v1 only adds: every plan keeps within the limits, the approval is waived.
	r := f.must(0, "start", "--release", "v1", "--output", "json")
	prod := rings(r.stdout)["prod"]
	if prod.Phase != "passed" || prod.ApprovalWaived == nil || !strings.Contains(prod.ApprovalWaived.Reason, "destroys <= 0, replaces <= 0") {
		t.Fatalf("v1's prod ring: %+v", prod)
	}

	// v2 replaces the resource: the waiver does not hold; the ring waits for its approval.
	r = f.must(3, "start", "--release", "v2", "--var", "generation=2", "--output", "json")
	prod = rings(r.stdout)["prod"]
	if prod.Phase != "awaiting_approval" || prod.ApprovalWaived != nil {
		t.Fatalf("v2's prod ring: %+v", prod)
	}
	if !strings.Contains(r.stderr, "replaces 1 > 0") {
		t.Fatalf("the log does not say which check broke:\n%s", r.stderr)
	}
	if f.deployedRelease("p-1") != "v1" {
		t.Fatal("prod was applied without its approval")
	}
	id := f.status().Run
	f.must(0, "approve", id, "--ring", "prod", "--as", "ops", "--reason", "replacement reviewed")
	f.must(0, "resume", id)
	if f.deployedRelease("p-1") != "v2" {
		t.Fatal("prod did not get v2 after its approval")
	}
	f.checkTruth()
}

// deployedRelease is the release target's state says it runs.
func (f *fleet) deployedRelease(target string) string {
	rel, _ := f.stateRelease(target)
	return rel
}
