//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

// The stack's three components: a network, a data tier reading its subnet, an application reading
// the data tier's endpoint. Each records what it received in its own state. The data tier's
// creation can be held (a marker file, then a sleep read from a file) for a crash test.
var stackModules = map[string]string{
	"terraform/network/main.tf": `
variable "target" { type = string }
variable "cidr" {
  type    = string
  default = "10.0.0.0/16"
}
resource "terraform_data" "vnet" { input = "${var.target}/${var.cidr}" }
output "subnet_id" { value = "subnet-${terraform_data.vnet.output}" }
`,
	"terraform/data/main.tf": `
variable "target" { type = string }
variable "subnet_id" { type = string }
variable "marker_dir" { type = string }
resource "terraform_data" "db" {
  input            = "db@${var.subnet_id}"
  triggers_replace = [var.subnet_id]
  provisioner "local-exec" {
    command = "touch '${var.marker_dir}/${var.target}.data'; sleep $(cat '${var.marker_dir}/${var.target}.slow' 2>/dev/null || echo 0)"
  }
}
output "endpoint" { value = "pg://${terraform_data.db.output}" }
`,
	"terraform/app/main.tf": `
variable "target" { type = string }
variable "db_endpoint" { type = string }
variable "app_version" { type = string }
variable "bad_target" {
  type    = string
  default = ""
}
resource "terraform_data" "app" { input = "${var.app_version}|${var.db_endpoint}" }
output "version" { value = var.app_version }
output "db" { value = var.db_endpoint }
output "health" { value = var.target == var.bad_target ? "bad" : "ok" }
`,
}

// stackDataApp is the data tier and the application of the tests' stack, as rollout.yaml says them.
const stackDataApp = `    data:
      module: terraform/data
      dependsOn: [network]
      inputs: {subnet_id: "{{ .Components.network.Outputs.subnet_id }}"}
    app:
      module: terraform/app
      dependsOn: [data]
      inputs: {db_endpoint: "{{ .Components.data.Outputs.endpoint }}", app_version: "{{ .Release.Name }}"}
`

// TestAStampIsAStack applies a three-component stack over three rings and two boundaries: outputs
// flow from each component into the next (checked in each component's own state), components
// whose module and inputs did not change are not run, a gate failure rolls a ring back walking
// its components in reverse, a driver SIGKILLed between two components of a target resumes
// without applying the finished one again, and the journal ends agreeing with every state.
func TestAStampIsAStack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := &fleet{t: t, dir: dir}
	marks := filepath.Join(dir, "marks")
	if err := os.MkdirAll(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, m := range stackModules {
		f.write(p, m)
	}
	f.write("rollout.yaml", fmt.Sprintf(`release:
  components:
    network: {module: terraform/network}
`+stackDataApp+`  vars:
    target: "{{ .Target.Name }}"
    marker_dir: %q
boundaries:
  local-a: {cloud: local}
  local-b: {cloud: local, maxParallel: 2}
gates:
  health:
    terraform-output: {output: health}
    successCondition: result == "ok"
    interval: 50ms
    failureLimit: 1
    timeout: 20s
rings:
  - name: canary
    targets: {names: [c-1]}
    gates: [health]
  - name: mid
    targets: {names: [m-1]}
    gates: [health]
    rollback: run
  - name: main
    targets: {names: [p-1, p-2]}
    gates: [health]
`, marks))
	f.write("environments/all.yaml", `targets:
  - {name: c-1, boundary: local-a}
  - {name: m-1, boundary: local-b}
  - {name: p-1, boundary: local-a}
  - {name: p-2, boundary: local-b}
`)
	state := func(target, component string) map[string]any {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, ".rollout", "tfstate", target+"@"+component+".tfstate"))
		if err != nil {
			t.Fatalf("%s/%s: %v", target, component, err)
		}
		var s map[string]any
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	input := func(target, component string) string { // what the component's one resource received
		res := state(target, component)["resources"].([]any)[0].(map[string]any)
		in := res["instances"].([]any)[0].(map[string]any)["attributes"].(map[string]any)["input"]
		v, _ := in.(map[string]any)["value"].(string) // terraform_data keeps a dynamic value
		return v
	}
	serial := func(target, component string) float64 { return state(target, component)["serial"].(float64) }
	f.state = func(target string) ([]byte, bool) {
		b, err := os.ReadFile(filepath.Join(dir, ".rollout", "tfstate", target+"@app.tfstate"))
		return b, err == nil
	}
	all := []string{"c-1", "m-1", "p-1", "p-2"}

	// v1: outputs flow network -> data -> app, each component in its own state.
	f.must(0, "start", "--release", "v1")
	for _, tg := range all {
		subnet := "subnet-" + tg + "/10.0.0.0/16"
		if got := input(tg, "data"); got != "db@"+subnet {
			t.Fatalf("%s/data received %q", tg, got)
		}
		if got := input(tg, "app"); got != "v1|pg://db@"+subnet {
			t.Fatalf("%s/app received %q", tg, got)
		}
	}
	rep := f.status()
	if cs := rep.Rings[0].Targets[0].Components; len(cs) != 3 || cs[0].Name != "app" || cs[0].State != "applied" {
		t.Fatalf("status shows c-1's components as %+v", cs)
	}

	// v2 changes the application only: network and data are not run at all.
	before := map[string]float64{}
	for _, tg := range all {
		before[tg] = serial(tg, "network") + serial(tg, "data")
	}
	f.must(0, "start", "--release", "v2")
	for _, tg := range all {
		if serial(tg, "network")+serial(tg, "data") != before[tg] {
			t.Errorf("%s: an unchanged component's state was written", tg)
		}
		if got := input(tg, "app"); !strings.HasPrefix(got, "v2|") {
			t.Errorf("%s/app received %q", tg, got)
		}
	}
	evs := f.journalEvents()
	if n := count(evs, rings.ComponentUnchanged, "", ""); n != 8 {
		t.Errorf("v2: %d component.unchanged events, want 8 (network and data on 4 targets)", n)
	}

	// v3 changes every component and fails m-1's gate: the run rolls back, each target walking
	// its components in reverse (app, data, network: data is unchanged then, its inputs still
	// v3's network's), then forward again for what the network's return left stale.
	r := f.must(2, "start", "--release", "v3", "--var", "cidr=10.1.0.0/16", "--var", "bad_target=m-1")
	_ = r
	evs = f.journalEvents()
	for _, tg := range []string{"c-1", "m-1"} {
		var order []string
		rolling := false
		for _, ev := range evs {
			if ev.Target != tg || ev.RunID == "" || !strings.HasPrefix(ev.RunID, "v3") {
				continue
			}
			if ev.Type == rings.TargetRollingBack {
				rolling = true
			}
			if rolling && (ev.Type == rings.ComponentApplied || ev.Type == rings.ComponentUnchanged) {
				order = append(order, ev.Component)
			}
		}
		if len(order) < 3 || !slices.Equal(order[:3], []string{"app", "data", "network"}) {
			t.Errorf("%s rolled back its components in the order %v, want app, data, network first", tg, order)
		}
		if got := input(tg, "data"); got != "db@subnet-"+tg+"/10.0.0.0/16" {
			t.Errorf("%s/data after the rollback received %q", tg, got)
		}
		if got := input(tg, "app"); got != "v2|pg://db@subnet-"+tg+"/10.0.0.0/16" {
			t.Errorf("%s/app after the rollback received %q", tg, got)
		}
	}

	// v4: the driver is SIGKILLed while c-1's data tier is being created, network done; the
	// resumed run does not apply c-1's network again.
	if err := os.WriteFile(filepath.Join(marks, "c-1.slow"), []byte("3"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The earlier releases' data applies left their marker: only v4's may say its data tier began
	// (else the driver could be killed while network still applies, and network rightly re-runs).
	_ = os.Remove(filepath.Join(marks, "c-1.data"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := f.command(ctx, "start", "--release", "v4", "--var", "cidr=10.2.0.0/16")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, ".rollout", "tfstate", "c-1@network.tfstate")) // may be mid-write
		if _, err := os.Stat(filepath.Join(marks, "c-1.data")); err == nil && strings.Contains(string(b), "10.2.0.0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("c-1's data tier never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = os.Remove(filepath.Join(marks, "c-1.data"))
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	os.Remove(filepath.Join(marks, "c-1.slow"))
	networkSerial := serial("c-1", "network")
	f.must(0, "start", "--release", "v4", "--var", "cidr=10.2.0.0/16")
	if serial("c-1", "network") != networkSerial {
		t.Error("the resumed run applied c-1's network again")
	}
	evs = f.journalEvents()
	if n := count(evs, rings.ComponentApplied, "c-1", "network", "v4"); n > 1 {
		t.Errorf("c-1's network was applied %d times by v4", n)
	}
	for _, tg := range all {
		if got := input(tg, "app"); got != "v4|pg://db@subnet-"+tg+"/10.2.0.0/16" {
			t.Errorf("%s/app after v4 received %q", tg, got)
		}
	}

	// A plan of a change to the network: the network's plan, then what reads its outputs deferred;
	// a change to the application alone plans it and leaves the rest unchanged, not run.
	var plans []struct {
		Target     string `json:"target"`
		Components []struct {
			Name      string `json:"name"`
			Changes   bool   `json:"changes"`
			Unchanged bool   `json:"unchanged"`
			Deferred  string `json:"deferred"`
		} `json:"components"`
	}
	r = f.must(0, "plan", "--release", "v5", "--var", "cidr=10.3.0.0/16", "--output", "json")
	if err := json.Unmarshal(field(r.stdout, "targets"), &plans); err != nil || len(plans) != 4 {
		t.Fatalf("plan --output json: %v\n%s", err, r.stdout)
	}
	got := map[string]string{}
	for _, c := range plans[0].Components {
		got[c.Name] = fmt.Sprintf("changes=%v unchanged=%v deferred=%q", c.Changes, c.Unchanged, c.Deferred)
	}
	// data is planned with today's subnet (no change then), app not at all (data never gave the
	// outputs it would read): both deferred.
	if got["network"] != `changes=true unchanged=false deferred=""` || got["data"] != `changes=false unchanged=false deferred="known after network applies"` ||
		got["app"] != `changes=true unchanged=false deferred="known after data applies"` {
		t.Errorf("plan of a network change: %v", got)
	}
	r = f.must(0, "plan", "--release", "v6", "--var", "cidr=10.2.0.0/16", "--output", "json")
	plans = nil
	if err := json.Unmarshal(field(r.stdout, "targets"), &plans); err != nil {
		t.Fatal(err)
	}
	for _, c := range plans[0].Components {
		if (c.Name == "app") != c.Changes || (c.Name != "app") != c.Unchanged || c.Deferred != "" {
			t.Errorf("plan of an application change: %+v", c)
		}
	}
	f.checkTruth()
}

// count counts events of typ (on target and component, when given; and of release, when given).
func count(evs []rings.Event, typ rings.EventType, target, component string, release ...string) int {
	n := 0
	for _, ev := range evs {
		if ev.Type != typ || target != "" && ev.Target != target || component != "" && ev.Component != component {
			continue
		}
		if len(release) > 0 && (ev.Release == nil || ev.Release.Name != release[0]) {
			continue
		}
		n++
	}
	return n
}

// A component's own gates run right after it is applied, over its outputs: one that fails stops
// the target's stack there (nothing that depends on it is applied) and the target is rolled back.
func TestAComponentsGatesStopItsStack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := &fleet{t: t, dir: dir}
	for p, m := range stackModules {
		f.write(p, m)
	}
	f.write("rollout.yaml", fmt.Sprintf(`release:
  components:
    network:
      module: terraform/network
      gates: [subnet]
`+stackDataApp+`  vars: {target: "{{ .Target.Name }}", marker_dir: %q}
boundaries:
  local-a: {cloud: local}
gates:
  subnet:
    terraform-output: {output: subnet_id}
    successCondition: 'not (result contains "10.9.")'
    interval: 50ms
    failureLimit: 1
    timeout: 20s
rings:
  - name: all
    targets: {names: [t-1]}
`, dir))
	f.write("environments/all.yaml", "targets:\n  - {name: t-1, boundary: local-a}\n")
	f.state = func(target string) ([]byte, bool) {
		b, err := os.ReadFile(filepath.Join(dir, ".rollout", "tfstate", target+"@app.tfstate"))
		return b, err == nil
	}
	f.must(0, "start", "--release", "v1")
	evs := f.journalEvents()
	if n := count(evs, rings.GateMeasured, "t-1", ""); n == 0 {
		t.Fatal("the network's gate was not measured")
	}
	f.must(2, "start", "--release", "v2", "--var", "cidr=10.9.0.0/16")
	evs = f.journalEvents()
	failed := false
	for _, ev := range evs {
		if ev.Type == rings.ComponentFailed && ev.Component == "network" && ev.Gate == "subnet" {
			failed = true
		}
		if ev.Type == rings.ComponentApplied && strings.HasPrefix(ev.RunID, "v2") && ev.Component != "network" && !strings.Contains(ev.Release.Name, "v1") {
			t.Errorf("%s was applied with v2 after the network's gate failed", ev.Component)
		}
	}
	if !failed {
		t.Fatal("no component.failed of the network's gate")
	}
	if rel, _ := f.stateRelease("t-1"); rel != "v1" {
		t.Fatalf("t-1's app runs %q after the rollback", rel)
	}
	f.checkTruth()
}

// A stack's release crosses an air gap: the archive carries each component's snapshot and
// providers; the disconnected fleet imports them into its boundary's mirror and applies the stack
// from there; a component's provider swapped inside the archive is refused before anything
// reaches the mirror.
func TestAStacksReleaseCrossesTheAirGap(t *testing.T) {
	t.Parallel()
	marks := t.TempDir() // one for both fleets: the release's variables must be the same there
	config := func(dir, mirror string) string {
		b := "  local-a: {cloud: local}\n"
		if mirror != "" {
			b = fmt.Sprintf("  local-a: {cloud: local, providerMirror: %q}\n", mirror)
		}
		return fmt.Sprintf(`release:
  components:
    network: {module: terraform/network}
`+stackDataApp+`  vars: {target: "{{ .Target.Name }}", marker_dir: %q}
boundaries:
%srings:
  - name: all
    targets: {names: [t-1]}
`, marks, b)
	}
	fleetAt := func(mirror string) *fleet {
		dir := t.TempDir()
		f := &fleet{t: t, dir: dir}
		for p, m := range stackModules {
			f.write(p, m)
		}
		// The network holds a real provider (hashicorp/time), so that there are providers to carry.
		f.write("terraform/network/time.tf", "terraform {\n  required_providers {\n    time = { source = \"hashicorp/time\" }\n  }\n}\nresource \"time_static\" \"made\" {}\n")
		f.write("rollout.yaml", config(dir, mirror))
		f.write("environments/all.yaml", "targets:\n  - {name: t-1, boundary: local-a}\n")
		f.state = func(target string) ([]byte, bool) {
			b, err := os.ReadFile(filepath.Join(dir, ".rollout", "tfstate", target+"@app.tfstate"))
			return b, err == nil
		}
		return f
	}
	com := fleetAt("")
	com.must(0, "start", "--release", "v1")
	archive := filepath.Join(t.TempDir(), "v1.tgz")
	com.must(0, "release", "export", "v1", "--out", archive, "--providers")

	mirror := filepath.Join(t.TempDir(), "mirror")
	sov := fleetAt(mirror)
	if r := sov.run("release", "import", swappedProvider(t, archive, "providers-network.tar.gz"), "--providers-to", mirror); r.code == 0 ||
		!strings.Contains(r.stderr, "component network") || !strings.Contains(r.stderr, "lock file") {
		t.Fatalf("a swapped provider of a component: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(mirror); err == nil {
		if n, _ := filepath.Glob(filepath.Join(mirror, "*", "*")); len(n) > 0 {
			t.Fatalf("the refused import reached the mirror: %v", n)
		}
	}
	sov.must(0, "release", "import", archive, "--providers-to", mirror)
	// The disconnected fleet's CLI configuration reaches no registry: only the mirror can serve.
	sov.env = []string{"TF_CLI_CONFIG_FILE=" + filepath.Join(sov.dir, "no-registry.tfrc")}
	sov.write("no-registry.tfrc", "provider_installation {\n  network_mirror { url = \"https://127.0.0.1:1/\" }\n}\n")
	sov.must(0, "start", "--release", "v1")
	if rel, _ := sov.stateRelease("t-1"); rel != "v1" {
		t.Fatalf("t-1 runs %q", rel)
	}
	com.checkTruth()
	sov.checkTruth()
}

// A release without a component the targets run destroys it only when the run allows destroying:
// without, the target fails before anything changed; with --allow-destroy, the component's
// resources are destroyed after the rest of the stack is applied.
func TestARemovedComponentIsDestroyedOnlyWhenAllowed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := &fleet{t: t, dir: dir}
	for p, m := range stackModules {
		f.write(p, m)
	}
	stack := func(withApp bool) string {
		app := ""
		if withApp {
			app = "    app:\n      module: terraform/app\n      dependsOn: [data]\n      inputs: {db_endpoint: \"{{ .Components.data.Outputs.endpoint }}\", app_version: \"{{ .Release.Name }}\"}\n"
		}
		return fmt.Sprintf(`release:
  components:
    network: {module: terraform/network}
    data:
      module: terraform/data
      dependsOn: [network]
      inputs: {subnet_id: "{{ .Components.network.Outputs.subnet_id }}"}
%s  vars: {target: "{{ .Target.Name }}", marker_dir: %q}
boundaries:
  local-a: {cloud: local}
rings:
  - name: all
    targets: {names: [t-1]}
`, app, dir)
	}
	f.write("rollout.yaml", stack(true))
	f.write("environments/all.yaml", "targets:\n  - {name: t-1, boundary: local-a}\n")
	f.state = func(target string) ([]byte, bool) { // the network's: it holds no version output
		b, err := os.ReadFile(filepath.Join(dir, ".rollout", "tfstate", target+"@network.tfstate"))
		return b, err == nil
	}
	appState := func() int {
		b, err := os.ReadFile(filepath.Join(dir, ".rollout", "tfstate", "t-1@app.tfstate"))
		if err != nil {
			t.Fatal(err)
		}
		var s struct{ Resources []any }
		json.Unmarshal(b, &s)
		return len(s.Resources)
	}
	f.must(0, "start", "--release", "v1")
	f.write("rollout.yaml", stack(false))
	r := f.run("start", "--release", "v2")
	if r.code == 0 || !strings.Contains(r.stderr, "has no component app") || !strings.Contains(r.stderr, "--allow-destroy") || appState() != 1 {
		t.Fatalf("v2 without the app, not allowed: exit %d, app resources %d\n%s", r.code, appState(), r.stderr)
	}
	f.must(0, "start", "--release", "v3", "--allow-destroy", "--reason", "the app moved to its own fleet")
	if appState() != 0 {
		t.Fatal("the removed component's resources are still in its state")
	}
	if n := count(f.journalEvents(), rings.ComponentDestroyed, "t-1", "app"); n != 1 {
		t.Fatalf("%d component.destroyed events of the app", n)
	}
	f.checkTruth()
}
