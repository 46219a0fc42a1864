// Package conformance is the suite every cloud family passes: validation of its boundaries,
// regions and hosts, the backend rules, the environment Terraform sees, preflight against a
// stand-in of its identity endpoint, and the values its boundaries give templates. A family's
// test calls Run with a Fixture written in the fleet's own YAML.
package conformance

import (
	"context"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/config"
)

// Fixture is one cloud's valid boundaries and targets and the cases it must refuse.
type Fixture struct {
	Cloud clouds.Cloud
	// Boundaries is YAML under `boundaries:` (indented two spaces), one entry per kind of boundary
	// the cloud has (commercial, sovereign, custom); Targets is YAML under `targets:`, a target
	// in each, with a backend of the cloud's own type where it has one. All are valid.
	Boundaries, Targets string
	// Sovereign names the boundaries outside the cloud's commercial boundary.
	Sovereign []string
	// Env is rollout's environment: the variables the boundaries' identities name.
	Env map[string]string
	// WantEnv are variables each target's Terraform run must see (a subset of what it sees).
	WantEnv map[string]map[string]string
	// Prefixes: every variable the cloud sets begins with one of them (ARM_, AWS_, GOOGLE_).
	Prefixes []string
	// Refused are single changes to the YAML that Validate must refuse at Key.
	Refused []Refusal
	// Preflight starts a stand-in of the cloud's identity endpoint (nil for a cloud that proves
	// nothing).
	Preflight func(t *testing.T) StandIn
}

// Refusal is one broken configuration: Old replaced by New in the boundaries or targets.
type Refusal struct {
	Name, Old, New string
	Key            string // the key the error names, e.g. "targets[gov-va].region"
	Msg            string // a part of the message
}

// StandIn is a boundary whose identity endpoint is a loopback stand-in.
type StandIn struct {
	Boundaries, Targets string
	Boundary            string
	Env                 map[string]string
	Client              *http.Client // nil: the default
	Principal           string       // what preflight must report
	// Refuse changes the stand-in's answer so that preflight must fail (the credential is of
	// another partition, tenant or universe), not transiently.
	Refuse func()
}

// Run runs the suite.
func Run(t *testing.T, f Fixture) {
	cat := clouds.Catalog{f.Cloud}
	load := func(t *testing.T, boundaries, targets string) *config.Config {
		c, err := config.Load(write(t, boundaries, targets), cat.Keys())
		if err != nil {
			t.Fatalf("the fixture does not load:\n%v", err)
		}
		return c
	}
	t.Run("keys", func(t *testing.T) { keys(t, f) })
	t.Run("valid", func(t *testing.T) {
		if errs := cat.Validate(load(t, f.Boundaries, f.Targets)); len(errs) > 0 {
			t.Fatalf("a valid fleet is refused:\n%v", errs)
		}
	})
	t.Run("refused", func(t *testing.T) { refused(t, f, cat) })
	t.Run("backend", func(t *testing.T) { backend(t, f, cat, load(t, f.Boundaries, f.Targets)) })
	t.Run("sovereign", func(t *testing.T) {
		for name, b := range load(t, f.Boundaries, f.Targets).Boundaries {
			if got, want := cat.Sovereign(b), slices.Contains(f.Sovereign, name); got != want {
				t.Errorf("boundary %s: sovereign %v, want %v", name, got, want)
			}
		}
	})
	t.Run("templates", func(t *testing.T) { templates(t, f, load(t, f.Boundaries, f.Targets)) })
	t.Run("env", func(t *testing.T) { env(t, f, cat, load(t, f.Boundaries, f.Targets)) })
	t.Run("preflight", func(t *testing.T) { preflight(t, f, cat, load) })
}

func keys(t *testing.T, f Fixture) {
	name := f.Cloud.Name()
	if name == "" || strings.ToLower(name) != name || strings.ContainsAny(name, " .") {
		t.Errorf("name %q: want a short lower-case word", name)
	}
	for k := range f.Cloud.Keys().Settings {
		if k == "" || strings.ToLower(k[:1]) != k[:1] {
			t.Errorf("setting %q: want a camelCase YAML key", k)
		}
	}
	tr := f.Cloud.Traits()
	if tr.Proven != (f.Preflight != nil) {
		t.Errorf("Traits().Proven is %v, but the fixture's Preflight stand-in is given: %v", tr.Proven, f.Preflight != nil)
	}
	if tr.Proven && len(f.Cloud.Keys().Identity) == 0 {
		t.Error("a cloud whose identity is proven has no identity keys")
	}
}

// refused checks each broken configuration is refused, naming its key; a regional cloud must
// refuse a region of another boundary, and a cloud with sovereign boundaries a host outside one.
func refused(t *testing.T, f Fixture, cat clouds.Catalog) {
	var region, host bool
	for _, r := range f.Refused {
		t.Run(r.Name, func(t *testing.T) {
			bs, ts := f.Boundaries, f.Targets
			if strings.Contains(bs, r.Old) {
				bs = strings.Replace(bs, r.Old, r.New, 1)
			} else if strings.Contains(ts, r.Old) {
				ts = strings.Replace(ts, r.Old, r.New, 1)
			} else {
				t.Fatalf("%q is in neither the boundaries nor the targets", r.Old)
			}
			var got []string
			c, err := config.Load(write(t, bs, ts), cat.Keys())
			if err != nil {
				got = []string{err.Error()}
			} else {
				for _, e := range cat.Validate(c) {
					got = append(got, e.Error())
				}
			}
			for _, g := range got {
				if strings.Contains(g, r.Key+": ") && strings.Contains(g, r.Msg) {
					return
				}
			}
			t.Errorf("want an error at %s containing %q; got %q", r.Key, r.Msg, got)
		})
		region = region || strings.HasSuffix(r.Key, ".region")
		host = host || strings.Contains(r.Key, "endpoints.") || strings.Contains(r.Key, "backend.config.")
	}
	if f.Cloud.Traits().Regional && !region {
		t.Error("a regional cloud's fixture must show a region of another boundary refused")
	}
	if len(f.Sovereign) > 0 && !host {
		t.Error("a cloud with sovereign boundaries must show an endpoint or backend host outside one refused")
	}
}

// backend checks a target's state: in its own boundary (a backend of a cloud no catalog serves is
// refused), and required where local state would be lost.
func backend(t *testing.T, f Fixture, cat clouds.Catalog, c *config.Config) {
	own := f.Cloud.Backends()
	for _, tg := range c.Targets {
		if len(own) > 0 && (tg.Backend == nil || !slices.Contains(own, tg.Backend.Type)) {
			t.Errorf("target %s: the fixture gives each target a backend of the cloud's own type (%s)", tg.Name, strings.Join(own, ", "))
		}
		saved := tg.Backend
		tg.Backend = &config.Backend{Type: "oss", Config: map[string]any{}}
		if !names(cat.Validate(c), "targets["+tg.Name+"].backend.type") {
			t.Errorf("target %s: a backend in another cloud's storage was accepted", tg.Name)
		}
		tg.Backend = nil
		if got := names(cat.Validate(c), "targets["+tg.Name+"].backend"); got != f.Cloud.Traits().RemoteState {
			t.Errorf("target %s without a backend: refused %v, want %v (Traits().RemoteState)", tg.Name, got, f.Cloud.Traits().RemoteState)
		}
		tg.Backend = saved
	}
}

func names(errs config.Errors, key string) bool {
	for _, e := range errs {
		if strings.Contains(e.Error(), key+": ") {
			return true
		}
	}
	return false
}

// templates checks every setting of the cloud reaches templates as .Boundary.<Key>, set or
// defaulted.
func templates(t *testing.T, f Fixture, c *config.Config) {
	for _, b := range c.Boundaries {
		for k, def := range f.Cloud.Keys().Settings {
			field := strings.ToUpper(k[:1]) + k[1:]
			got, err := config.Render("x", "{{ .Boundary."+field+" }}", config.TemplateData(&config.Target{Name: "t", Boundary: b.Name}, b))
			if err != nil {
				t.Errorf("boundary %s: .Boundary.%s: %v", b.Name, field, err)
			}
			if _, set := b.Lines[k]; !set && got != def {
				t.Errorf("boundary %s: .Boundary.%s is %q, want the default %q", b.Name, field, got, def)
			}
		}
	}
}

// ambient are credentials of every cloud on the runner; none may reach a Terraform run.
var ambient = map[string]string{"AWS_ACCESS_KEY_ID": "AKIAAMBIENT", "AWS_SECRET_ACCESS_KEY": "ambient-aws", "AWS_PROFILE": "ambient-profile",
	"ARM_CLIENT_SECRET": "ambient-azure", "ARM_CLIENT_ID": "ambient-client", "GOOGLE_APPLICATION_CREDENTIALS": "/ambient/google.json",
	"PATH": "/usr/bin"}

func env(t *testing.T, f Fixture, cat clouds.Catalog, c *config.Config) {
	lookup := map[string]string{}
	for k, v := range ambient {
		lookup[k] = v
	}
	for k, v := range f.Env {
		lookup[k] = v
	}
	m := &clouds.Manager{Config: c, Catalog: cat, Lookup: func(k string) (string, bool) { v, ok := lookup[k]; return v, ok }}
	base := clouds.BaseEnv(c, m.LookupEnv)
	for _, tg := range c.Targets {
		e, err := m.Env(context.Background(), tg.Name)
		if err != nil {
			t.Fatalf("target %s: %v", tg.Name, err)
		}
		for k, v := range e.Vars {
			if _, ok := base[k]; ok {
				continue
			}
			if !slices.ContainsFunc(f.Prefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
				t.Errorf("target %s: %s is not a variable of this cloud (%s)", tg.Name, k, strings.Join(f.Prefixes, ", "))
			}
			if strings.HasPrefix(v, "ambient") || strings.HasPrefix(v, "AKIAAMBIENT") || strings.HasPrefix(v, "/ambient") {
				t.Errorf("target %s: %s=%s is the runner's ambient credential", tg.Name, k, v)
			}
		}
		for k, want := range f.WantEnv[tg.Name] {
			if e.Vars[k] != want {
				t.Errorf("target %s: %s=%q, want %q", tg.Name, k, e.Vars[k], want)
			}
		}
		for _, s := range e.Secrets {
			if !slices.Contains(slices.Collect(maps.Values(f.Env)), s) {
				t.Errorf("target %s: secret %q is not a value of the variables the identity names", tg.Name, s)
			}
		}
	}
	if len(f.Env) > 0 {
		bare := &clouds.Manager{Config: c, Catalog: cat, Lookup: func(string) (string, bool) { return "", false }}
		err := bare.CheckEnvironment(slices.Collect(maps.Keys(c.Boundaries)))
		if err == nil || !slices.ContainsFunc(slices.Collect(maps.Keys(f.Env)), func(k string) bool { return strings.Contains(err.Error(), k) }) {
			t.Errorf("without the variables the identities name, CheckEnvironment says %v; want one of them named", err)
		}
	}
}

func preflight(t *testing.T, f Fixture, cat clouds.Catalog, load func(*testing.T, string, string) *config.Config) {
	if f.Preflight == nil {
		c := load(t, f.Boundaries, f.Targets)
		m := &clouds.Manager{Config: c, Catalog: cat}
		for name := range c.Boundaries {
			if m.NeedsProof(name) {
				t.Errorf("boundary %s needs proof, but its cloud proves nothing", name)
			}
			if id, err := m.Preflight(context.Background(), name, ""); err != nil || id.Principal == "" {
				t.Errorf("boundary %s: %+v, %v", name, id, err)
			}
		}
		return
	}
	s := f.Preflight(t)
	c := load(t, s.Boundaries, s.Targets)
	lookup := func(k string) (string, bool) { v, ok := s.Env[k]; return v, ok }
	retry := clouds.RetryPolicy{Attempts: 2, Initial: time.Millisecond, MaxElapsed: time.Second}
	m := &clouds.Manager{Config: c, Catalog: cat, Lookup: lookup, Client: s.Client, Retry: retry}
	if !m.NeedsProof(s.Boundary) {
		t.Errorf("boundary %s does not need proof", s.Boundary)
	}
	id, err := m.Preflight(context.Background(), s.Boundary, "")
	if err != nil {
		t.Fatalf("preflight against the stand-in: %v", err)
	}
	if id.Cloud != f.Cloud.Name() || !strings.Contains(id.Principal, s.Principal) || id.ProvenAt.IsZero() {
		t.Errorf("identity %+v: want cloud %s, principal %s, a proof time", id, f.Cloud.Name(), s.Principal)
	}
	s.Refuse()
	m = &clouds.Manager{Config: c, Catalog: cat, Lookup: lookup, Client: s.Client, Retry: retry}
	if _, err := m.Preflight(context.Background(), s.Boundary, ""); err == nil || clouds.Transient(err) {
		t.Errorf("a credential of another boundary: preflight says %v; want a lasting refusal", err)
	}
}

// write writes a fleet of the fixture's boundaries and targets, every target in one ring.
func write(t *testing.T, boundaries, targets string) string {
	t.Helper()
	dir := t.TempDir()
	var list []struct{ Name string }
	if err := yaml.Unmarshal([]byte(targets), &list); err != nil {
		t.Fatalf("the fixture's targets: %v", err)
	}
	var names []string
	for _, tg := range list {
		names = append(names, tg.Name)
	}
	main := "release: {module: mod}\nboundaries:\n" + boundaries + "\nrings:\n  - name: all\n    targets: {names: [" + strings.Join(names, ", ") + "]}\n"
	for _, p := range []string{"mod", "environments"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "environments", "fleet.yaml"), []byte("targets:\n"+targets), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
