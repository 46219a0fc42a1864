package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-exec/tfexec"
	tfjson "github.com/hashicorp/terraform-json"

	"github.com/rollout-dev/rollout/internal/rings"
)

// check holds an apply to the run's plan review: no destroy or replacement of a protected
// resource type unless allowed, and, for the reviewed release, exactly the reviewed plan. A
// refusal is permanent: trying again would plan the same.
func (r *Review) check(ctx context.Context, tf *tfexec.Terraform, dir, target string, rel rings.ReleaseRef, sum rings.PlanSummary) error {
	if r == nil {
		return nil
	}
	if !r.AllowDestroy && len(r.Protect) > 0 {
		var hit []string
		for _, addr := range append(append([]string{}, sum.Deleted...), sum.Replaced...) {
			if slices.Contains(r.Protect, ResourceType(addr)) {
				hit = append(hit, addr)
			}
		}
		if len(hit) > 0 {
			return &Failure{Class: Permanent, Reason: "protected resource", Refused: true,
				Err: fmt.Errorf("apply target %s refused: the plan destroys or replaces %s, of a protected type (protect: in rollout.yaml); start the run with --allow-destroy --reason TEXT to permit it", target, strings.Join(hit, ", "))}
		}
	}
	want, ok := r.Digests[target]
	if rel.Name != r.Release || !ok {
		return nil
	}
	got, err := planDigest(ctx, tf, filepath.Join(dir, "release.tfplan"))
	if err != nil {
		return fmt.Errorf("apply target %s: digest of the plan: %w", target, err)
	}
	if got != want {
		return &Failure{Class: Permanent, Reason: "plan differs from the reviewed one", Refused: true,
			Err: fmt.Errorf("apply target %s refused: its plan (digest %s) is not the reviewed one (%s): something changed since the review; plan and review again", target, short12(got), short12(want))}
	}
	return nil
}

func short12(s string) string { return s[:min(12, len(s))] }

// planDigest is the SHA-256 of what a saved plan would change: every resource change (address,
// actions, values before and after, what is unknown until applied) and output change, as
// `show -json` gives them. Timestamps and Terraform's version are left out, so the same change
// planned again has the same digest.
func planDigest(ctx context.Context, tf *tfexec.Terraform, planFile string) (string, error) {
	plan, err := tf.ShowPlanFile(ctx, planFile)
	if err != nil {
		return "", err
	}
	return digestOf(plan)
}

func digestOf(plan *tfjson.Plan) (string, error) {
	type change struct {
		Address      string `json:"address"`
		Actions      any    `json:"actions"`
		Before       any    `json:"before"`
		After        any    `json:"after"`
		AfterUnknown any    `json:"after_unknown"`
	}
	var changes []change
	for _, rc := range plan.ResourceChanges {
		if rc == nil || rc.Change == nil {
			continue
		}
		changes = append(changes, change{rc.Address, rc.Change.Actions, rc.Change.Before, rc.Change.After, rc.Change.AfterUnknown})
	}
	slices.SortFunc(changes, func(a, b change) int { return strings.Compare(a.Address, b.Address) })
	outputs := map[string]change{}
	for name, oc := range plan.OutputChanges {
		if oc != nil {
			outputs[name] = change{name, oc.Actions, oc.Before, oc.After, oc.AfterUnknown}
		}
	}
	data, err := json.Marshal(struct { // encoding/json sorts map keys: the encoding is canonical
		Resources []change          `json:"resources"`
		Outputs   map[string]change `json:"outputs"`
	}{changes, outputs})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// ResourceType is the type of a resource address: module.net.aws_vpc.main[0] is aws_vpc.
func ResourceType(addr string) string {
	parts := strings.Split(addr, ".")
	for i := 0; i < len(parts); i++ {
		switch parts[i] {
		case "module":
			i++ // the module's name
		case "data":
		default:
			return strings.SplitN(parts[i], "[", 2)[0]
		}
	}
	return ""
}
