// Package tfoutput is the terraformOutput gate provider: a target's Terraform output, judged.
package tfoutput

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rollout-dev/rollout/internal/healthgate/measure"
	"github.com/rollout-dev/rollout/internal/rings"
)

// TerraformOutput asserts over the target's recorded outputs.
type TerraformOutput struct {
	Outputs map[string]any
	Output  string
	Judge   measure.Conditions
}

func (o *TerraformOutput) Measure(context.Context) rings.Measurement {
	m := rings.Measurement{At: time.Now()}
	var v any = o.Outputs
	name := "outputs"
	if o.Output != "" {
		x, ok := o.Outputs[o.Output]
		if !ok {
			m.Outcome, m.Message = rings.NoData, fmt.Sprintf("no output %q", o.Output)
			return m
		}
		v, name = x, "output "+o.Output
	}
	b, _ := json.Marshal(v)
	shown := string(b)
	if len(shown) > 120 {
		shown = shown[:120] + "..."
	}
	m.Outcome, m.Message = o.Judge.Value(v)
	m.Message = fmt.Sprintf("%s = %s: %s", name, shown, m.Message)
	return m
}

var (
	_ measure.Provider = (*TerraformOutput)(nil)
)
