package local_test

import (
	"testing"

	"github.com/rollout-dev/rollout/internal/clouds/conformance"
	"github.com/rollout-dev/rollout/internal/clouds/local"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Fixture{
		Cloud:      local.Cloud{},
		Boundaries: "  local-a: {cloud: local}\n  local-b: {cloud: local, maxParallel: 2}\n",
		Targets:    "- {name: a-1, boundary: local-a}\n- {name: b-1, boundary: local-b, backend: {type: local}}\n",
		Refused: []conformance.Refusal{
			{Name: "an identity", Old: "local-b: {cloud: local, maxParallel: 2}", New: "local-b: {cloud: local, identity: {x: y}}",
				Key: "boundaries.local-b.identity", Msg: "a local boundary has no identity"},
			{Name: "regions", Old: "local-b: {cloud: local, maxParallel: 2}", New: "local-b: {cloud: local, regions: [r1]}",
				Key: "boundaries.local-b.regions", Msg: "a local boundary has no regions"},
		},
	})
}
