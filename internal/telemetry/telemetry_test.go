package telemetry

import (
	"testing"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// A target's spans go to its boundary's own collector; a sovereign boundary without one exports
// none of them; any other boundary uses the fleet's.
func TestTargetSpansGoToTheirBoundarysCollectorOnly(t *testing.T) {
	fleet, gov := noop.NewTracerProvider().Tracer("fleet"), noop.NewTracerProvider().Tracer("gov")
	tr := &Tracer{fleet: fleet, bound: map[string]trace.Tracer{"aws-us-gov": gov}, cfg: Config{
		Boundaries:     map[string]Boundary{"aws-us-gov": {Sovereign: true}, "china": {Sovereign: true}, "aws": {}},
		TargetBoundary: map[string]string{"gov-1": "aws-us-gov", "cn-1": "china", "use1": "aws"},
	}}
	if tr.forTarget("gov-1") != gov || tr.forTarget("cn-1") != nil || tr.forTarget("use1") != fleet {
		t.Fatalf("gov-1 %v, cn-1 %v, use1 %v", tr.forTarget("gov-1"), tr.forTarget("cn-1"), tr.forTarget("use1"))
	}
}
