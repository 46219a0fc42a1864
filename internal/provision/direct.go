package provision

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/terraform-exec/tfexec"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

// How a target was applied, as the report and the journal say it.
const (
	ModeDirect    = "direct"     // one `apply` that planned and applied
	ModePlanFirst = "plan-first" // `plan -out`, then `apply` of that plan file
)

// planFirst says whether target's apply of rel must be planned first: when the run asks so, when
// the run holds applies to a reviewed plan of rel, or when protected resource types must be
// checked in the plan before anything is changed. Everything else applies directly: one
// Terraform process instead of two, as a person runs `tofu apply` by hand.
func (pol RunPolicy) planFirst(target string, rel rings.ReleaseRef) bool {
	if pol.ApplyMode == "" || pol.ApplyMode == config.ApplyPlanFirst {
		return true
	}
	r := pol.Review
	switch {
	case r == nil:
		return false
	case len(r.Protect) > 0 && !r.AllowDestroy:
		return true
	default:
		_, reviewed := r.Digests[target]
		return reviewed && rel.Name == r.Release
	}
}

// applyDirect applies rel to target with one `apply -auto-approve -json`: the plan's summary is
// read from the stream as Terraform plans (planned is called then, before anything is applied,
// as after a separate plan), and the outputs from its end.
func (p *Terraform) applyDirect(ctx context.Context, target string, rel rings.ReleaseRef, planned func(rings.PlanSummary)) (rings.ApplyResult, error) {
	w, err := p.setUp(ctx, target, rel, "apply")
	if err != nil {
		return rings.ApplyResult{}, err
	}
	stream := &planWatcher{planned: planned}
	actx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	p.noteLockHolder(ctx, target, "apply")
	err = p.command(target, "apply", func() error {
		return w.tf.ApplyJSON(actx, stream, tfexec.VarFile(w.varFile), tfexec.LockTimeout(p.lockTimeout()))
	})
	r := readStream(stream.bytes())
	if !stream.saw() && planned != nil && err == nil {
		planned(r.summary) // a Terraform that does not say when its plan is done: after the fact
	}
	if err != nil {
		res := rings.ApplyResult{Summary: r.summary}
		if r.diags != "" {
			return res, redactErr(fmt.Errorf("apply target %s: %s", target, r.diags), w.secrets)
		}
		return res, redactErr(fmt.Errorf("apply target %s: %w", target, err), w.secrets)
	}
	if r.outputs == nil {
		all, public, err := p.outputs(ctx, w.tf)
		if err != nil {
			return rings.ApplyResult{Summary: r.summary}, fmt.Errorf("outputs of target %s: %w", target, err)
		}
		return rings.ApplyResult{Summary: r.summary, Outputs: all, Public: public}, nil
	}
	all, public := splitOutputs(r.outputs)
	return rings.ApplyResult{Summary: r.summary, Outputs: all, Public: public}, nil
}

// planWatcher keeps an apply's JSON stream and, when the plan's change summary goes by, calls
// planned with what the stream said so far (the resources replaced and deleted, the counts).
type planWatcher struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	line    int // where the line being written starts
	planned func(rings.PlanSummary)
	told    bool
}

func (w *planWatcher) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	for {
		rest := w.buf.Bytes()[w.line:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := rest[:i]
		w.line += i + 1
		if !w.told && bytes.Contains(line, []byte(`"change_summary"`)) && bytes.Contains(line, []byte(`"operation":"plan"`)) {
			w.told = true
			if w.planned != nil {
				w.planned(readStream(w.buf.Bytes()[:w.line]).summary)
			}
		}
	}
}

func (w *planWatcher) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.buf.Bytes()...)
}

func (w *planWatcher) saw() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.told
}
