package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const baseMain = `release:
  module: mod
  vars: {app_version: "{{ .Release.Name }}"}
boundaries:
  local-a: {cloud: local}
  local-b: {cloud: local, maxParallel: 2}
gates:
  healthz:
    http: {url: "{{ .Outputs.endpoint }}/healthz"}
    interval: 1s
rings:
  - name: canary
    targets: {names: [a-1]}
    gates: [healthz]
  - name: rest
    targets: {boundaries: [local-b]}
    bake: 10m
    rollback: run
`

const baseTargets = `targets:
  - name: a-1
    boundary: local-a
  - name: b-1
    boundary: local-b
    vars: {instanceCount: 3}
    labels: {Tier: prod}
`

func writeFleet(t *testing.T, main, targets string) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "mod"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "environments", "eu"), 0o755))
	must(os.WriteFile(filepath.Join(dir, FileName), []byte(main), 0o644))
	must(os.WriteFile(filepath.Join(dir, "environments", "eu", "targets.yaml"), []byte(targets), 0o644))
	return dir
}

func TestValidFleet(t *testing.T) {
	c, err := Load(writeFleet(t, baseMain, baseTargets), testClouds)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Rings[1]; got.Bake.D() != 10*time.Minute || got.Rollback != RollbackRun || got.MaxParallel != 4 || strings.Join(got.Targets, ",") != "b-1" {
		t.Fatalf("ring rest = %+v", got)
	}
	if c.Rings[0].Rollback != RollbackRing {
		t.Fatalf("default rollback scope = %q, want ring", c.Rings[0].Rollback)
	}
	g := c.Gates["healthz"]
	if g.HTTP.ExpectStatus != 200 || g.Timeout.D() != 5*time.Minute || g.FailureLimit != 1 || g.Consecutive != 1 {
		t.Fatalf("gate defaults = %+v", g)
	}
	b := c.Target("b-1")
	// Keys keep their case: they are Terraform variable names and labels.
	if b.Vars["instanceCount"] != 3 || b.Labels["Tier"] != "prod" || b.File != filepath.Join("environments", "eu", "targets.yaml") {
		t.Fatalf("target b-1 = %+v", b)
	}
}

func TestBadConfigurationsNameFileLineAndKey(t *testing.T) {
	repl := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				panic("test setup: " + old)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	keep := func(s string) string { return s }
	for _, tc := range []struct {
		name    string
		main    func(string) string
		targets func(string) string
		want    string
	}{
		{"unknown top-level key", repl("boundaries:", "boundary:\n  x: 1\nboundaries:"), keep, `rollout.yaml:4: boundary: unknown key (did you mean "boundaries"?)`},
		{"unknown ring key", repl("    bake: 10m", "    bkae: 10m"), keep, `rollout.yaml:17: rings[1].bkae: unknown key (did you mean "bake"?)`},
		{"unknown target key", keep, repl("    boundary: local-a", "    boundary: local-a\n    regoin: x"), `environments/eu/targets.yaml:4: targets[0].regoin: unknown key (did you mean "region"?)`},
		{"unknown gate", repl("gates: [healthz]", "gates: [helthz]"), keep, `rollout.yaml:14: rings[0].gates: unknown gate "helthz" (declared: healthz)`},
		{"unknown boundary", keep, repl("boundary: local-a", "boundary: local-c"), `environments/eu/targets.yaml:3: targets[a-1].boundary: unknown boundary "local-c"`},
		{"target in no ring", keep, repl("targets:\n", "targets:\n  - name: lost\n    boundary: local-a\n"), `environments/eu/targets.yaml:2: targets[lost]: target "lost" is in no ring`},
		{"target in two rings", repl("targets: {boundaries: [local-b]}", "targets: {boundaries: [local-b, local-a]}"), keep, `rings[1].targets: target "a-1" (environments/eu/targets.yaml:2) is selected by ring "canary" and ring "rest"`},
		{"duplicate target", keep, repl("  - name: b-1", "  - name: a-1\n    boundary: local-a\n  - name: b-1"), `environments/eu/targets.yaml:4: targets.name: target "a-1" is declared twice (first at environments/eu/targets.yaml:2)`},
		{"bad duration", repl("bake: 10m", "bake: ten minutes"), keep, `rollout.yaml:17: rings[1].bake: must be a Go duration such as 90s, 10m or 2h, got "ten minutes"`},
		{"module dir missing", repl("module: mod", "module: nope"), keep, `rollout.yaml:2: release.module: module directory nope does not exist`},
		{"bad rollback scope", repl("rollback: run", "rollback: all"), keep, `rollout.yaml:18: rings[1].rollback: must be target, ring or run, got "all"`},
		{"bad template", repl(`{{ .Outputs.endpoint }}/healthz`, `{{ .Outputs.endpoint /healthz`), keep, `gates.healthz.http.url: bad template`},
		{"gate without provider", repl("    http: {url: \"{{ .Outputs.endpoint }}/healthz\"}\n", ""), keep, `gates.healthz: names no provider`},
		{"condition with a typo", repl("    http: {url: \"{{ .Outputs.endpoint }}/healthz\"}\n", "    prometheus: {address: \"http://p:9090\", query: up}\n    successCondition: resutl < 0.01\n"), keep,
			`gates.healthz.successCondition: with result a number: unknown name resutl (1:1)`},
		{"condition that is not a boolean", repl("    http: {url: \"{{ .Outputs.endpoint }}/healthz\"}\n", "    prometheus: {address: \"http://p:9090\", query: up}\n    successCondition: result + 1\n"), keep,
			`gates.healthz.successCondition: with result a number: expected bool, but got float64`},
		{"prometheus without condition", repl("    http: {url: \"{{ .Outputs.endpoint }}/healthz\"}\n", "    prometheus: {address: \"http://p:9090\", query: up}\n"), keep,
			`gates.healthz.successCondition: is required for a metric or terraform-output gate`},
		{"condition on an http gate", repl("    http: {url: \"{{ .Outputs.endpoint }}/healthz\"}\n", "    http: {url: \"{{ .Outputs.endpoint }}/healthz\"}\n    successCondition: result\n"), keep,
			`gates.healthz.successCondition: conditions are for metric (prometheus, cloudwatch, azure-monitor, gcp-monitoring) and terraform-output gates`},
		{"compare without ratio", repl("    http: {url: \"{{ .Outputs.endpoint }}/healthz\"}\n", "    compare: {prometheus: {address: \"http://p:9090\", query: up}}\n"), keep,
			`gates.healthz.compare.maxRatio: is required and must be more than 0`},
		{"compare of an unknown ring", repl("    http: {url: \"{{ .Outputs.endpoint }}/healthz\"}\n", "    compare: {prometheus: {address: \"http://p:9090\", query: up}, maxRatio: 1.2, baselineRings: [nope]}\n"), keep,
			`gates.healthz.compare.baselineRings: unknown ring "nope"`},
		{"cloudwatch with two modes", repl("    http: {url: \"{{ .Outputs.endpoint }}/healthz\"}\n", "    cloudwatch: {alarms: [a], alarmPrefix: b}\n"), keep,
			`gates.healthz.cloudwatch: give exactly one of alarms, alarmPrefix or metric`},
		{"gcp filter and policies", repl("    http: {url: \"{{ .Outputs.endpoint }}/healthz\"}\n", "    gcp-monitoring: {filter: x, alertPolicies: [p]}\n"), keep,
			`gates.healthz.gcp-monitoring: give filter`},
		{"bad noData", repl("    http: {url: \"{{ .Outputs.endpoint }}/healthz\"}\n", "    http: {url: \"{{ .Outputs.endpoint }}/healthz\"}\n    noData: ignore\n"), keep,
			`gates.healthz.noData: must be fail, inconclusive or pass, got "ignore"`},
		{"unknown cloud", repl("local-a: {cloud: local}", "local-a: {cloud: ibm}"), keep, `rollout.yaml:5: boundaries.local-a.cloud: unknown cloud "ibm"`},
		{"not yaml", repl("rings:", "rings: [\n"), keep, `rollout.yaml: not valid YAML`},
		{"number expected", repl("bake: 10m", "maxParallel: many"), keep, `rings[1].maxParallel: must be a whole number, got "many"`},
		{"cloud identity through passEnv", repl("local-a: {cloud: local}", "local-a: {cloud: local, passEnv: [AWS_SECRET_ACCESS_KEY]}"), keep,
			`boundaries.local-a.passEnv[0]: AWS_SECRET_ACCESS_KEY carries cloud identity and never passes through`},
		{"another cloud's key", repl("local-a: {cloud: local}", "local-a: {cloud: aws, universeDomain: s3nsapis.fr}"), keep,
			`boundaries.local-a.universeDomain: is a gcp key; this boundary's cloud is aws`},
		{"misspelt identity key", repl("local-a: {cloud: local}", "local-a: {cloud: aws, identity: {rolArn: x}}"), keep,
			`boundaries.local-a.identity.rolArn: unknown key (did you mean "roleArn"?)`},
		{"bad rate", repl("local-a: {cloud: local}", "local-a: {cloud: local, rateLimit: fast}"), keep,
			`boundaries.local-a.rateLimit: want a rate such as 2/s, 30/m or 100/h, got "fast"`},
		{"environments directory missing", repl("boundaries:", "environments: [environments/eu, environments/us]\nboundaries:"), keep,
			`environments[1]: directory environments/us does not exist`},
		{"bad apply mode", repl("boundaries:", "defaults: {applyMode: fast}\nboundaries:"), keep,
			`rollout.yaml:4: defaults.applyMode: apply mode "fast": want auto, plan-first or direct`},
		{"direct with protect", repl("boundaries:", "protect: [aws_db_instance]\ndefaults: {applyMode: direct}\nboundaries:"), keep,
			`rollout.yaml:5: defaults.applyMode: direct applies without a plan first, and protect: needs each plan before its apply`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFleet(t, tc.main(baseMain), tc.targets(baseTargets)), testClouds)
			if err == nil {
				t.Fatal("loaded a bad configuration")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("want config.Errors, got %T: %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
			for _, e := range errs { // every problem names its line, but in a file that is not YAML at all
				if e.Line == 0 && !strings.Contains(err.Error(), "not valid YAML") && e.Key != "" {
					t.Errorf("no line: %v", e)
				}
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	main := strings.Replace(strings.Replace(baseMain, "bake: 10m", "bake: 10", 1), "interval: 1s", "interval: soon", 1)
	_, err := Load(writeFleet(t, main, baseTargets), testClouds)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
}

func TestMissingConfigurationHints(t *testing.T) {
	_, err := Load(t.TempDir(), testClouds)
	if err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("want a hint about --config, got %v", err)
	}
}

func TestStateSetting(t *testing.T) {
	for st, want := range map[string]string{
		"state: sqlite\n":                             "",
		"state: sqlite:shared/state.db\n":             "",
		"state: postgres://rollout@db:5432/fleet\n":   "",
		"state: postgres://rollout:s3cr3t@db/fleet\n": "rollout.yaml:1: state: holds a password",
		"state: mysql://rollout:s3cr3t@db/fleet\n":    "rollout.yaml:1: state: want sqlite, sqlite:PATH or a postgres:// URL",
	} {
		_, err := Load(writeFleet(t, st+baseMain, baseTargets), testClouds)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", st, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", st, err, want)
		case err != nil && strings.Contains(err.Error(), "s3cr3t"):
			t.Errorf("%q: the error shows the password: %v", st, err)
		}
	}
}

func TestRateLimit(t *testing.T) {
	c, err := Load(writeFleet(t, strings.Replace(baseMain, "local-a: {cloud: local}", "local-a: {cloud: local, rateLimit: 30/m}", 1), baseTargets), testClouds)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Boundaries["local-a"].RateLimit; got != 0.5 {
		t.Fatalf("30/m = %v per second, want 0.5", got)
	}
}

// Options that admit approvals are kept: a namespace pattern that matches, and the validity window.
func TestAllowedSignersOptionsAreKept(t *testing.T) {
	main := strings.Replace(baseMain, "local-b: {cloud: local, maxParallel: 2}", `local-b:
    cloud: local
    approvers:
      - 'sov-lead namespaces="git,rollout-*",valid-after="20200101",valid-before="203001021504Z" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMKW+cILZK2ujdPIHzwH5pDOPVf5GJbSEGgEixhzuEuo'`, 1)
	c, err := Load(writeFleet(t, main, baseTargets), testClouds)
	if err != nil {
		t.Fatal(err)
	}
	v := c.Boundaries["local-b"].Verifiers[0]
	if v.ValidAfter == nil || v.ValidAfter.Year() != 2020 || v.ValidBefore == nil || !v.ValidBefore.Equal(time.Date(2030, 1, 2, 15, 4, 0, 0, time.UTC)) {
		t.Fatalf("verifier %+v", v)
	}
}

func TestBoundaryApproversTightenRings(t *testing.T) {
	main := strings.Replace(baseMain, "local-b: {cloud: local, maxParallel: 2}", `local-b:
    cloud: local
    maxParallel: 2
    approvers:
      - sov-lead ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMKW+cILZK2ujdPIHzwH5pDOPVf5GJbSEGgEixhzuEuo lead@laptop
      - {name: sov-deputy, oidc: {issuer: "https://token.actions.githubusercontent.com", audience: rollout, subject: "repo:org/svc:environment:sov"}}`, 1)
	c, err := Load(writeFleet(t, main, baseTargets), testClouds)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Rings[1] // selects local-b
	if !r.Approval.Required || strings.Join(r.Approval.Approvers, ",") != "sov-lead,sov-deputy" || len(r.Approval.Verifiers) != 2 ||
		r.Approval.Verifiers[0].SSH != "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMKW+cILZK2ujdPIHzwH5pDOPVf5GJbSEGgEixhzuEuo" || r.Approval.Verifiers[1].OIDC.Audience != "rollout" {
		t.Fatalf("ring entering local-b: %+v", r.Approval)
	}
	if c.Rings[0].Approval.Required {
		t.Fatal("a ring that does not enter local-b was tightened")
	}
	bad := strings.Replace(main, "    bake: 10m", "    bake: 10m\n    approval: {required: true, approvers: [someone-else]}", 1)
	if _, err := Load(writeFleet(t, bad, baseTargets), testClouds); err == nil || !strings.Contains(err.Error(), `nobody may approve ring "rest": none of its approvers is among boundary local-b's (sov-lead, sov-deputy)`) {
		t.Fatalf("got %v", err)
	}
}

// TestBoundaryApproversMustBeProvable: a boundary's approver without a key or an OIDC identity
// would let anyone approve under that name; each such entry is refused, naming its line.
func TestBoundaryApproversMustBeProvable(t *testing.T) {
	for entry, want := range map[string]string{
		"sov-lead":                         `approvers[0]: must be an allowed-signers line`,
		"sov-lead ssh-ed25519 AAAAnotakey": `approvers[0]: must be an allowed-signers line`,
		"{name: ci, oidc: {issuer: 'http://example.com', audience: rollout, subject: x}}": `approvers[0].oidc.issuer: must be the issuer's https URL`,
		"{name: ci, oidc: {issuer: 'https://example.com', subject: x}}":                   `approvers[0].oidc.audience: is required`,
		"{name: ci, oidc: {issuer: 'https://example.com', audience: rollout}}":            `approvers[0].oidc.subject: or claims is required`,
		// Allowed-signers options are honoured as ssh-keygen honours them, or refused: never dropped.
		`'sov-lead namespaces="git" KEY'`:          `option namespaces="git" does not admit rollout-approval`,
		`'sov-lead cert-authority KEY'`:            `option cert-authority is not supported`,
		`'sov-lead valid-before="2020-01-01" KEY'`: `option valid-before="2020-01-01": not a time`,
		`'sov-lead no-touch-required KEY'`:         `option "no-touch-required" is not an allowed-signers option`,
	} {
		entry = strings.Replace(entry, "KEY", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMKW+cILZK2ujdPIHzwH5pDOPVf5GJbSEGgEixhzuEuo", 1)
		main := strings.Replace(baseMain, "local-b: {cloud: local, maxParallel: 2}", "local-b:\n    cloud: local\n    approvers:\n      - "+entry, 1)
		_, err := Load(writeFleet(t, main, baseTargets), testClouds)
		if err == nil || !strings.Contains(err.Error(), "rollout.yaml:") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want %q, got %v", entry, want, err)
		}
	}
}

func TestFreezeCalendarsCombine(t *testing.T) {
	main := strings.Replace(baseMain, "boundaries:\n  local-a: {cloud: local}\n", `freeze:
  timezone: Europe/Berlin
  deny:
    - {name: year-end, from: 2026-12-20, to: 2027-01-04}
boundaries:
  local-a:
    cloud: local
    freeze:
      whenFrozen: wait
      allow:
        - {days: [tue, wed], start: "09:00", end: "16:00"}
`, 1)
	main = strings.Replace(main, "    rollback: run\n", "    rollback: run\n    driftCheck: block\n    freeze:\n      deny:\n        - {name: fri, days: [fri], start: \"12:00\", end: \"24:00\"}\n", 1)
	c, err := Load(writeFleet(t, main, baseTargets), testClouds)
	if err != nil {
		t.Fatal(err)
	}
	canary := c.RingFreeze(c.Rings[0])
	ber, _ := time.LoadLocation("Europe/Berlin")
	if canary == nil || len(canary.Deny) != 1 || !canary.Deny[0].From.Equal(time.Date(2026, 12, 20, 0, 0, 0, 0, ber)) || len(canary.Allow) != 1 || !canary.Wait {
		t.Fatalf("canary (global + local-a): %+v", canary)
	}
	rest := c.RingFreeze(c.Rings[1])
	if rest == nil || len(rest.Deny) != 2 || len(rest.Allow) != 0 || rest.Wait || c.Rings[1].DriftCheck != "block" || c.Rings[0].DriftCheck != "off" {
		t.Fatalf("rest (global + its own): %+v, drift %s", rest, c.Rings[1].DriftCheck)
	}
	for _, tc := range []struct{ bad, want string }{
		{"{name: x, days: [fri], start: \"12:00\", end: \"25:00\"}", `rings[1].freeze.deny[0].end: "25:00" is not a time of day`},
		{"{name: x, days: [fry], start: \"12:00\", end: \"13:00\"}", `rings[1].freeze.deny[0].days: unknown day "fry"`},
		{"{name: x, from: 2026-12-24}", `rings[1].freeze.deny[0].to: is required`},
		{"{name: x, from: 2026-12-24, to: 2026-12-01}", `rings[1].freeze.deny[0].to: must be after from`},
		{"{name: x, from: tomorrow, to: 2026-12-01}", `rings[1].freeze.deny[0].from: want a date`},
		{"{name: x}", `rings[1].freeze.deny[0]: give from and to (dated), or days, start and end (weekly)`},
	} {
		bad := strings.Replace(main, `{name: fri, days: [fri], start: "12:00", end: "24:00"}`, tc.bad, 1)
		_, err := Load(writeFleet(t, bad, baseTargets), testClouds)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.bad, err, tc.want)
		}
	}
}

// LoadMain reads rollout.yaml alone (for commands that only read the journal): a broken
// environment file does not stop it, while rollout.yaml's own mistakes still do.
func TestLoadMainReadsOnlyRolloutYAML(t *testing.T) {
	dir := writeFleet(t, "state: sqlite:shared/state.db\n"+baseMain, "targets:\n  - name: a-1\n    boundary: nowhere\n  - {name: [broken\n")
	if _, err := Load(dir, testClouds); err == nil {
		t.Fatal("Load accepted a broken environment file")
	}
	c, err := LoadMain(dir, testClouds)
	if err != nil {
		t.Fatalf("LoadMain: %v", err)
	}
	if c.State != "sqlite:shared/state.db" || c.Root != dir || len(c.Targets) != 0 {
		t.Fatalf("LoadMain = state %q root %q, %d targets", c.State, c.Root, len(c.Targets))
	}
	_, err = LoadMain(writeFleet(t, "state: mysql://db/x\n"+baseMain, baseTargets), testClouds)
	if err == nil || !strings.Contains(err.Error(), "rollout.yaml:1: state:") {
		t.Fatalf("LoadMain of a bad state: %v", err)
	}
}

// Target is an index lookup after Load (start asks it for each of 10,000 targets), and still
// finds a target on a Config built by hand.
func TestTargetLookup(t *testing.T) {
	c, err := Load(writeFleet(t, baseMain, baseTargets), testClouds)
	if err != nil {
		t.Fatal(err)
	}
	if c.Target("b-1") != c.Targets[1] || c.Target("nope") != nil {
		t.Fatal("Target after Load")
	}
	byHand := &Config{Targets: []*Target{{Name: "x"}}}
	if byHand.Target("x") != byHand.Targets[0] {
		t.Fatal("Target on a Config built by hand")
	}
}

func TestEngineSetting(t *testing.T) {
	for head, want := range map[string]string{
		"":                    "",
		"engine: inprocess\n": "",
		"engine: temporal\ntemporal: {address: \"t.example:7233\"}\n":                                                 "",
		"engine: temporal\ntemporal: {address: \"t:7233\", tls: {caFile: ca.pem, certFile: c.pem, keyFile: k.pem}}\n": "",
		"engine: temporal\n":                                        "rollout.yaml:1: engine: engine temporal needs a temporal section",
		"engine: durable\n":                                         `rollout.yaml:1: engine: want inprocess or temporal, not "durable"`,
		"temporal: {address: temporal}\n":                           "rollout.yaml:1: temporal.address: want the frontend's host:port",
		"temporal: {adress: \"t:7233\"}\n":                          `rollout.yaml:1: temporal.adress: unknown key (did you mean "address"?)`,
		"temporal: {address: \"t:7233\", tls: {certFile: c.pem}}\n": "temporal.tls: certFile and keyFile go together",
	} {
		c, err := Load(writeFleet(t, head+baseMain, baseTargets), testClouds)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", head, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", head, err, want)
		case want == "" && strings.Contains(head, "temporal:"):
			if c.Engine != "temporal" || c.Temporal.Namespace != "default" || c.Temporal.TaskQueuePrefix != "rollout" {
				t.Errorf("%q: engine %q, temporal %+v", head, c.Engine, c.Temporal)
			}
		case want == "" && c.Engine != "inprocess":
			t.Errorf("%q: engine %q, want inprocess", head, c.Engine)
		}
	}
}

// testClouds stands in for the clouds catalog (which imports this package): the keys of two
// clouds, so that parsing of cloud keys is tested here and the catalog's own in clouds/catalog.
var testClouds = Clouds{
	"local": {},
	"aws":   {Settings: map[string]string{"partition": ""}, Identity: []string{"profile", "roleArn", "webIdentityTokenFile", "assumeRole"}},
	"gcp":   {Settings: map[string]string{"universeDomain": "googleapis.com"}, Identity: []string{"credentialsFile"}},
}

func TestEveryCloudsSettingsReachTemplatesWithDefaults(t *testing.T) {
	main := strings.Replace(baseMain, "local-a: {cloud: local}", "local-a: {cloud: gcp}\n  gov: {cloud: aws, partition: aws-us-gov}", 1)
	c, err := Load(writeFleet(t, main, baseTargets), testClouds)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := "{{ .Boundary.Cloud }}|{{ .Boundary.Partition }}|{{ .Boundary.UniverseDomain }}"
	for _, tc := range []struct{ boundary, want string }{
		{"local-a", "gcp||googleapis.com"}, // a cloud's default when the boundary names none
		{"gov", "aws|aws-us-gov|"},         // "" for another cloud's keys: one template serves every cloud
		{"local-b", "local||"},
	} {
		got, err := Render("x", tmpl, TemplateData(&Target{Name: "t", Boundary: tc.boundary}, c.Boundaries[tc.boundary]))
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.boundary, got, err, tc.want)
		}
	}
}
