package provision

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rollout-dev/rollout/internal/rings"
)

// A stack's drift check is each component's own refresh-only plan, in its own working directory
// with what it was applied with (the target's own directory holds no state of a stack).
func TestAStacksDriftIsEachComponents(t *testing.T) {
	p, _, dir := fake(t)
	comp := func(name string) string {
		m := t.TempDir()
		if err := os.WriteFile(filepath.Join(m, "main.tf"), []byte("# "+name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := Snapshot(m, p.StateDir)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	st := Stack{Components: []StackComponent{{Name: "net", Module: comp("net")},
		{Name: "app", Module: comp("app"), DependsOn: []string{"net"}, Inputs: map[string]any{"e": "{{ .Components.net.Outputs.endpoint }}"}}}}
	b, _ := json.Marshal(st)
	sd := t.TempDir()
	if err := os.WriteFile(filepath.Join(sd, StackFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	digest, err := Snapshot(sd, p.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	rel := rings.ReleaseRef{Name: "v1", Digest: digest, Module: digest}
	if _, err := p.Apply(context.Background(), "t1", rel, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "scenario"), []byte("plan=drift"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := p.Drift(context.Background(), "t1", rel)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Drifted || !slices.Equal(rep.Resources, []string{"app/null_resource.a", "net/null_resource.a"}) {
		t.Fatalf("drift: %+v", rep)
	}
}
