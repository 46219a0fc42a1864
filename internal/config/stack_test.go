package config

import (
	"strings"
	"testing"
)

const stackMain = `release:
  components:
    network: {module: mod}
    data:
      module: mod
      dependsOn: [network]
      inputs: {subnet_id: "{{ .Components.network.Outputs.subnet_id }}"}
    app:
      module: mod
      dependsOn: [data]
      inputs: {db: "{{ .Components.data.Outputs.endpoint }}", v: "{{ .Release.Name }}"}
boundaries:
  local-a: {cloud: local}
  local-b: {cloud: local}
rings:
  - name: all
    targets: {boundaries: [local-a, local-b]}
`

func TestAStackLoadsInDependencyOrder(t *testing.T) {
	c, err := Load(writeFleet(t, stackMain, baseTargets), testClouds)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Stack() || len(c.Release.Components) != 3 {
		t.Fatalf("components: %v", c.Release.Components)
	}
	levels := StackLevels(c.StackDeps())
	if len(levels) != 3 || levels[0][0] != "network" || levels[2][0] != "app" {
		t.Fatalf("levels %v", levels)
	}
	if got := ComponentReads(c.Release.Components["app"].Inputs); len(got) != 1 || got["data"][0] != "endpoint" {
		t.Fatalf("app reads %v", got)
	}
}

func TestBadStacksNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct{ name, old, new, want string }{
		{"cycle", "network: {module: mod}", "network: {module: mod, dependsOn: [app]}", "release.components.app.dependsOn: components depend on each other in a cycle: app -> data -> network -> app"},
		{"unknown component", "dependsOn: [data]", "dependsOn: [dta]", `release.components.app.dependsOn: "dta" is not a component of this release (did you mean "data"?)`},
		{"reads outside dependsOn", `v: "{{ .Release.Name }}"`, `v: "{{ .Components.network.Outputs.subnet_id }}"`, "release.components.app.inputs.v: reads component network, which is not in dependsOn (data)"},
		{"reads no output", `v: "{{ .Release.Name }}"`, `v: "{{ .Components.data }}"`, "release.components.app.inputs.v: reads .Components without a component and output"},
		{"missing module", "network: {module: mod}", "network: {module: nowhere}", "rollout.yaml:3: release.components.network.module: module directory nowhere does not exist"},
		{"module and components", "release:\n", "release:\n  module: mod\n", "release.module: give release.module (one root module) or release.components (a stack), not both"},
		{"bad template", `v: "{{ .Release.Name }}"`, `v: "{{ .Release.Name "`, "release.components.app.inputs.v: bad template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFleet(t, strings.Replace(stackMain, tc.old, tc.new, 1), baseTargets), testClouds)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}

// Each component keeps its own state: a backend's key gains the component, or the backend
// templates {{ .Component }}; a backend with neither is refused at validate.
func TestEachComponentHasItsOwnState(t *testing.T) {
	for _, tc := range []struct {
		b    *Backend
		key  string
		want string
	}{
		{&Backend{Type: "s3", Config: map[string]any{"bucket": "b", "key": "stamps/eu-1.tfstate"}}, "key", "stamps/eu-1/network.tfstate"},
		{&Backend{Type: "gcs", Config: map[string]any{"bucket": "b", "prefix": "stamps/eu-1"}}, "prefix", "stamps/eu-1/network"},
		{&Backend{Type: "local", Config: map[string]any{"path": "/s/eu-1.tfstate"}}, "path", "/s/eu-1/network.tfstate"},
		{&Backend{Type: "pg", Config: map[string]any{"schema_name": "eu1"}}, "schema_name", "eu1_network"},
		{&Backend{Type: "http", Config: map[string]any{"address": "https://s/eu-1/{{ .Component }}"}}, "address", "https://s/eu-1/network"},
	} {
		got, err := ComponentBackend(tc.b, "network")
		if err != nil || got.Config[tc.key] != tc.want {
			t.Errorf("%s: %v %v, want %s", tc.b.Type, got, err, tc.want)
		}
		if tc.b.Config[tc.key] == tc.want {
			t.Errorf("%s: the target's own backend was changed", tc.b.Type)
		}
	}
	if _, err := ComponentBackend(&Backend{Type: "http", Config: map[string]any{"address": "https://s/eu-1"}}, "network"); err == nil {
		t.Error("a backend that cannot tell components apart was accepted")
	}
	targets := "targets:\n  - {name: a-1, boundary: local-a, backend: {type: http, config: {address: \"https://s/a-1\"}}}\n  - {name: b-1, boundary: local-b}\n"
	_, err := Load(writeFleet(t, stackMain, targets), testClouds)
	if err == nil || !strings.Contains(err.Error(), "targets[a-1].backend: a http backend names no key, path or prefix") {
		t.Fatalf("validate: %v", err)
	}
	// A boundary's convention may template the component; it stays for each component to fill.
	conv := strings.Replace(stackMain, "local-a: {cloud: local}", "local-a: {cloud: local, backend: {type: s3, config: {key: \"{{ .Target.Name }}/{{ .Component }}.tfstate\"}}}", 1)
	c, err := Load(writeFleet(t, conv, baseTargets), testClouds)
	if err != nil {
		t.Fatal(err)
	}
	be, err := ComponentBackend(c.Target("a-1").Backend, "data")
	if err != nil || be.Config["key"] != "a-1/data.tfstate" {
		t.Fatalf("convention: %v %v", be, err)
	}
}

// A ring that selects no target yet (opened for a boundary still to be given targets) is a note,
// not an error: env add can then put its first target there.
func TestAnEmptyRingIsANote(t *testing.T) {
	main := strings.Replace(baseMain, "    rollback: run\n", "    rollback: run\n  - name: next\n    targets: {labels: {tier: none}}\n", 1)
	c, err := Load(writeFleet(t, main, baseTargets), testClouds)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notes) != 1 || !strings.Contains(c.Notes[0], `rings[2].targets: ring "next" selects no target yet`) {
		t.Fatalf("notes: %v", c.Notes)
	}
}
