package tfoutput

import (
	"context"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/healthgate/measure"
	"github.com/rollout-dev/rollout/internal/rings"
)

func TestTerraformOutputProvider(t *testing.T) {
	c, err := config.CompileCondition(`result.status == "ok" && result.replicas >= 3`, false)
	if err != nil {
		t.Fatal(err)
	}
	p := &TerraformOutput{Outputs: map[string]any{"health": map[string]any{"status": "ok", "replicas": 3.0}}, Output: "health", Judge: measure.Conditions{Success: c}}
	if m := p.Measure(context.Background()); m.Outcome != rings.OK || !strings.Contains(m.Message, `output health = {"replicas":3,"status":"ok"}`) {
		t.Fatalf("%+v", m)
	}
	p.Outputs["health"] = map[string]any{"status": "degraded", "replicas": 3.0}
	if m := p.Measure(context.Background()); m.Outcome != rings.Failed {
		t.Fatalf("%+v", m)
	}
	p.Output = "missing"
	if m := p.Measure(context.Background()); m.Outcome != rings.NoData {
		t.Fatalf("%+v", m)
	}
}
