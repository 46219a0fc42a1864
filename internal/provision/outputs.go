package provision

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/terraform-exec/tfexec"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Reading what Terraform says: outputs, and the JSON stream of a plan or an apply.

// Outputs implements rings.Provisioner.
func (p *Terraform) Outputs(ctx context.Context, target string) (map[string]any, error) {
	if recs := p.Deployed(target); len(recs) > 0 { // a stack: its components' together
		return stackOutputs(recs, func(r *ComponentRecord) map[string]any { return r.Outputs }), nil
	}
	rc, err := p.targetCLIConfig()
	if err != nil {
		return nil, err
	}
	env, _, err := p.targetEnv(ctx, target)
	if err != nil {
		return nil, err
	}
	dir := p.WorkDir(target)
	p.reapOnce(ctx, dir, target)
	defer clearRecords(ctx, dir)
	tf, err := p.newTF(ctx, dir, nil, env, p.targetExtraEnv(dir, rc))
	if err != nil {
		return nil, err
	}
	all, _, err := p.outputs(ctx, tf)
	return all, err
}

// PublicOutputs reads the target's outputs from its Terraform state as they may be journaled
// (sensitive values redacted): what `state doctor --targets` compares with the journal. ok is false
// when the target's working directory was never set up on this machine.
func (p *Terraform) PublicOutputs(ctx context.Context, target string) (map[string]any, bool, error) {
	dir := p.WorkDir(target)
	if _, err := os.Stat(filepath.Join(dir, ".terraform")); err != nil {
		return nil, false, nil
	}
	rc, err := p.targetCLIConfig()
	if err != nil {
		return nil, true, err
	}
	env, _, err := p.targetEnv(ctx, target)
	if err != nil {
		return nil, true, err
	}
	p.reapOnce(ctx, dir, target)
	defer clearRecords(ctx, dir)
	tf, err := p.newTF(ctx, dir, nil, env, p.targetExtraEnv(dir, rc))
	if err != nil {
		return nil, true, err
	}
	_, public, err := p.outputs(ctx, tf)
	return public, true, err
}

type output struct {
	Sensitive bool            `json:"sensitive"`
	Value     json.RawMessage `json:"value"`
}

func (p *Terraform) outputs(ctx context.Context, tf *tfexec.Terraform) (map[string]any, map[string]any, error) {
	octx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	outs, err := tf.Output(octx)
	if err != nil {
		return nil, nil, err
	}
	conv := map[string]output{}
	for k, o := range outs {
		conv[k] = output{Sensitive: o.Sensitive, Value: o.Value}
	}
	all, public := splitOutputs(conv)
	return all, public, nil
}

// splitOutputs decodes outputs, and redacts sensitive ones in the copy that may be journaled.
func splitOutputs(outs map[string]output) (map[string]any, map[string]any) {
	all, public := map[string]any{}, map[string]any{}
	for k, o := range outs {
		var v any
		if len(o.Value) > 0 {
			_ = json.Unmarshal(o.Value, &v)
		}
		all[k] = v
		if o.Sensitive {
			public[k] = "(sensitive)"
		} else {
			public[k] = v
		}
	}
	return all, public
}

type streamResult struct {
	summary rings.PlanSummary
	diags   string            // error diagnostics, "file:line: summary: detail; ..."
	outputs map[string]output // from apply's final outputs message (values present)
}

// readStream reads Terraform's machine-readable UI (`plan -json`, `apply -json`): the change
// summary, the addresses that would be replaced or deleted, error diagnostics, and outputs.
func readStream(stream []byte) streamResult {
	var r streamResult
	var diags, planned []string
	sc := bufio.NewScanner(bytes.NewReader(stream))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var msg struct {
			Level  string `json:"@level"`
			Type   string `json:"type"`
			Change struct {
				Resource struct {
					Addr string `json:"addr"`
				} `json:"resource"`
				Action string `json:"action"`
			} `json:"change"`
			Changes struct {
				Add, Change, Remove int
			} `json:"changes"`
			Outputs    map[string]output `json:"outputs"`
			Diagnostic struct {
				Summary, Detail string
				Range           *struct {
					Filename string `json:"filename"`
					Start    struct{ Line int }
				} `json:"range"`
			} `json:"diagnostic"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil {
			continue
		}
		switch msg.Type {
		case "planned_change":
			planned = append(planned, msg.Change.Action+" "+msg.Change.Resource.Addr)
			switch msg.Change.Action {
			case "replace":
				r.summary.Replaced = append(r.summary.Replaced, msg.Change.Resource.Addr)
			case "delete":
				r.summary.Deleted = append(r.summary.Deleted, msg.Change.Resource.Addr)
			}
		case "resource_drift":
			r.summary.Drifted = append(r.summary.Drifted, msg.Change.Resource.Addr)
		case "change_summary":
			r.summary.Add, r.summary.Change, r.summary.Destroy = msg.Changes.Add, msg.Changes.Change, msg.Changes.Remove
		case "outputs":
			hasValues := false
			for _, o := range msg.Outputs {
				if len(o.Value) > 0 || o.Sensitive {
					hasValues = true
				}
			}
			if hasValues || len(msg.Outputs) == 0 {
				r.outputs = msg.Outputs
			}
		case "diagnostic":
			if msg.Level == "error" {
				d := msg.Diagnostic.Summary
				if msg.Diagnostic.Range != nil {
					d = fmt.Sprintf("%s:%d: %s", msg.Diagnostic.Range.Filename, msg.Diagnostic.Range.Start.Line, d)
				}
				if msg.Diagnostic.Detail != "" {
					d += ": " + strings.Join(strings.Fields(msg.Diagnostic.Detail), " ")
				}
				diags = append(diags, d)
			}
		}
	}
	r.diags = strings.Join(diags, "; ")
	if len(planned) > 0 {
		sort.Strings(planned)
		sum := sha256.Sum256([]byte(strings.Join(planned, "\n") + "\n"))
		r.summary.Digest = hex.EncodeToString(sum[:])
	}
	return r
}
