package config

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// parseMain reads rollout.yaml's own keys: release, state, defaults, boundaries, gates, rings,
// environments, freeze, protect, notify.
func (c *Config) parseMain(data []byte, errs *Errors) {
	c.lines = map[string]int{}
	w := walker{file: c.rel(c.File), errs: errs, lines: c.lines}
	root := parseDoc(data, w)
	top := w.fields(root, "", "release", "defaults", "boundaries", "gates", "rings", "state", "environments", "freeze", "protect", "notify", "telemetry", "promotion", "engine", "temporal")
	c.Engine, c.Temporal = parseEngine(w, top["engine"], top["temporal"])
	c.Freeze = parseFreeze(w, "freeze", top["freeze"])
	c.Promotion = parsePromotion(w, c.Root, top["promotion"])
	c.Notify = parseNotify(w, top["notify"])
	c.Telemetry = parseTelemetry(w, "telemetry", top["telemetry"])
	c.Protect = w.strings(top["protect"], "protect")
	c.Environments = w.strings(top["environments"], "environments")
	if top["environments"] == nil {
		c.Environments = []string{"environments"}
	}
	for i, d := range c.Environments {
		if st, err := os.Stat(filepath.Join(c.Root, d)); err != nil || !st.IsDir() {
			w.fail(top["environments"], fmt.Sprintf("environments[%d]", i), "directory %s does not exist", d)
		}
	}
	c.parseRelease(w, root, top)
	c.parseState(w, top)
	c.parseDefaults(w, top)
	c.Boundaries = map[string]*Boundary{}
	for name, n := range w.fields(top["boundaries"], "boundaries") {
		c.Boundaries[name] = parseBoundary(w, c.Clouds, name, n)
	}
	c.Gates = map[string]*Gate{}
	for name, n := range w.fields(top["gates"], "gates") {
		if err := ValidName("gate", name); err != nil {
			w.fail(n, "gates."+name, "%v", err)
		}
		c.Gates[name] = parseGate(w, name, n)
	}

	if top["rings"] != nil && top["rings"].Kind != yaml.SequenceNode {
		w.fail(top["rings"], "rings", "must be a list of rings")
	} else if top["rings"] != nil {
		seen := map[string]bool{}
		for i, n := range top["rings"].Content {
			r := parseRing(w, fmt.Sprintf("rings[%d]", i), n, c.Defaults.MaxParallel)
			if r.Name != "" && seen[r.Name] {
				w.fail(n, fmt.Sprintf("rings[%d].name", i), "ring %q is declared twice", r.Name)
			}
			seen[r.Name] = true
			c.Rings = append(c.Rings, r)
		}
	}
	if len(c.Rings) == 0 {
		w.fail(root, "rings", "at least one ring is required")
	}
}

// parseRelease reads release: the module every release ships and its variables.
func (c *Config) parseRelease(w walker, root *yaml.Node, top map[string]*yaml.Node) {
	rel := w.fields(top["release"], "release", "module", "components", "vars", "moduleOutsideFleet")
	c.Release.Module = w.str(rel["module"], "release.module")
	c.Release.Vars = w.anyMap(rel["vars"], "release.vars")
	c.Release.ModuleOutsideFleet = w.boolean(rel["moduleOutsideFleet"], "release.moduleOutsideFleet")
	if rel["module"] != nil {
		c.Release.Line = rel["module"].Line
	}
	c.parseComponents(w, rel["components"])
	if rel["components"] != nil {
		if rel["module"] != nil {
			w.fail(rel["module"], "release.module", "give release.module (one root module) or release.components (a stack), not both")
		}
		if rel["components"].Line > 0 {
			c.Release.Line = rel["components"].Line
		}
	} else if top["release"] == nil || c.Release.Module == "" {
		w.fail(root, "release.module", "is required: the Terraform root module every release ships (or release.components, a stack)")
	} else if st, err := os.Stat(c.ModuleDir()); err != nil || !st.IsDir() {
		w.fail(rel["module"], "release.module", "module directory %s does not exist", c.Release.Module)
	} else if !c.Release.ModuleOutsideFleet && !inside(c.Root, c.ModuleDir()) {
		w.fail(rel["module"], "release.module", "%s is outside the fleet's folder %s: a release ships code from the fleet's own tree (set release.moduleOutsideFleet: true to allow it)", c.Release.Module, c.Root)
	}
	for k, v := range c.Release.Vars {
		checkTemplates(w, rel["vars"], "release.vars."+k, v)
	}

}

// parseState reads state: the journal's location (a password in it is refused).
func (c *Config) parseState(w walker, top map[string]*yaml.Node) {
	c.State = w.str(top["state"], "state")
	if st := c.State; st != "" {
		switch u, err := url.Parse(st); {
		case st == "sqlite" || strings.HasPrefix(st, "sqlite:"):
		case err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql"):
			w.fail(top["state"], "state", "want sqlite, sqlite:PATH or a postgres:// URL") // the value is not echoed: it may hold a secret
		default:
			if _, has := u.User.Password(); has {
				w.fail(top["state"], "state", "holds a password: remove it, and give it in PGPASSWORD or a password file (PGPASSFILE)")
			}
		}
	}
}

// parseDefaults reads defaults:, with the defaults of the defaults.
func (c *Config) parseDefaults(w walker, top map[string]*yaml.Node) {
	def := w.fields(top["defaults"], "defaults", "maxParallel", "terraformTimeout", "lockTimeout", "passEnv", "retry", "breaker", "shutdownGrace", "preflightMaxStaleness", "applyMode")
	rf := w.fields(def["retry"], "defaults.retry", "attempts", "initialInterval", "maxInterval", "maxElapsed")
	c.Defaults.Retry = Retry{Attempts: w.integer(rf["attempts"], "defaults.retry.attempts", 1), InitialInterval: w.duration(rf["initialInterval"], "defaults.retry.initialInterval"),
		MaxInterval: w.duration(rf["maxInterval"], "defaults.retry.maxInterval"), MaxElapsed: w.duration(rf["maxElapsed"], "defaults.retry.maxElapsed")}
	if rf["attempts"] == nil {
		c.Defaults.Retry.Attempts = 3
	}
	bf := w.fields(def["breaker"], "defaults.breaker", "consecutiveFailures", "openFor")
	c.Defaults.Breaker = Breaker{ConsecutiveFailures: w.integer(bf["consecutiveFailures"], "defaults.breaker.consecutiveFailures", 0), OpenFor: w.duration(bf["openFor"], "defaults.breaker.openFor")}
	if bf["consecutiveFailures"] == nil {
		c.Defaults.Breaker.ConsecutiveFailures = 5
	}
	c.Defaults.PreflightMaxStaleness = w.duration(def["preflightMaxStaleness"], "defaults.preflightMaxStaleness")
	if def["preflightMaxStaleness"] == nil {
		c.Defaults.PreflightMaxStaleness = Duration(15 * time.Minute)
	}
	c.Defaults.ShutdownGrace = w.duration(def["shutdownGrace"], "defaults.shutdownGrace")
	if def["shutdownGrace"] == nil {
		c.Defaults.ShutdownGrace = Duration(30 * time.Second)
	}
	c.Defaults.PassEnv = w.envNames(def["passEnv"], "defaults.passEnv")
	c.Defaults.MaxParallel = w.integer(def["maxParallel"], "defaults.maxParallel", 1)
	if c.Defaults.MaxParallel == 0 {
		c.Defaults.MaxParallel = 4
	}
	c.Defaults.TerraformTimeout = w.duration(def["terraformTimeout"], "defaults.terraformTimeout")
	if c.Defaults.TerraformTimeout == 0 {
		c.Defaults.TerraformTimeout = Duration(time.Hour)
	}
	c.Defaults.LockTimeout = w.duration(def["lockTimeout"], "defaults.lockTimeout")
	if def["lockTimeout"] == nil {
		c.Defaults.LockTimeout = Duration(5 * time.Minute)
	}
	c.Defaults.ApplyMode = w.str(def["applyMode"], "defaults.applyMode")
	switch {
	case c.Defaults.ApplyMode == "":
		c.Defaults.ApplyMode = ApplyAuto
	case CheckApplyMode(c.Defaults.ApplyMode) != nil:
		w.fail(def["applyMode"], "defaults.applyMode", "%v", CheckApplyMode(c.Defaults.ApplyMode))
	case c.Defaults.ApplyMode == ApplyDirect && len(c.Protect) > 0:
		w.fail(def["applyMode"], "defaults.applyMode", "direct applies without a plan first, and protect: needs each plan before its apply: use auto (direct where nothing needs the plan)")
	}

}

// parseBoundary reads one boundary: its cloud, the keys of that cloud (known from clouds, the
// catalog's description: config names no cloud) and the keys every boundary has.
func parseBoundary(w walker, clouds Clouds, name string, n *yaml.Node) *Boundary {
	path := "boundaries." + name
	b := &Boundary{Name: name, Line: n.Line, Lines: map[string]int{}, Settings: map[string]string{}}
	settings := clouds.settingKeys()
	f := w.fields(n, path, append([]string{"cloud", "endpoints", "identity", "maxParallel", "providerMirror", "regions",
		"passEnv", "rateLimit", "approvers", "backend", "freeze", "telemetry"}, settings...)...)
	for k, v := range f {
		b.Lines[k] = v.Line
	}
	b.Cloud = w.str(f["cloud"], path+".cloud")
	own, known := clouds[b.Cloud]
	switch {
	case b.Cloud == "":
		w.fail(n, path+".cloud", "is required: one of %s", clouds.names())
	case !known:
		w.fail(f["cloud"], path+".cloud", "unknown cloud %q: one of %s%s", b.Cloud, clouds.names(), suggest(b.Cloud, slices.Sorted(maps.Keys(clouds))))
	}
	b.MaxParallel = w.integer(f["maxParallel"], path+".maxParallel", 1)
	b.RateLimit = w.rate(f["rateLimit"], path+".rateLimit")
	b.ProviderMirror = w.str(f["providerMirror"], path+".providerMirror")
	for _, k := range settings {
		b.Settings[k] = cmp.Or(w.str(f[k], path+"."+k), own.Settings[k])
		// A key of another cloud is a mistake worth naming, not ignoring.
		if _, mine := own.Settings[k]; f[k] != nil && known && !mine {
			w.fail(f[k], path+"."+k, "is a %s key; this boundary's cloud is %s", clouds.owner(k), b.Cloud)
		}
	}
	b.Regions = w.strings(f["regions"], path+".regions")
	b.PassEnv = w.envNames(f["passEnv"], path+".passEnv")
	parseApprovers(w, path+".approvers", f["approvers"], b)
	b.Freeze = parseFreeze(w, path+".freeze", f["freeze"])
	b.Telemetry = parseTelemetry(w, path+".telemetry", f["telemetry"])
	if bn := f["backend"]; bn != nil {
		bf := w.fields(bn, path+".backend", "type", "config")
		b.Backend = &Backend{Type: w.str(bf["type"], path+".backend.type"), Config: w.anyMap(bf["config"], path+".backend.config")}
		if b.Backend.Type == "" {
			w.fail(bn, path+".backend.type", "is required (s3, azurerm, gcs, ...)")
		}
		for k, v := range b.Backend.Config {
			checkTemplates(w, bf["config"], path+".backend.config."+k, v)
		}
	}
	b.Endpoints = w.stringMap(f["endpoints"], path+".endpoints")
	for k, v := range w.fields(f["endpoints"], path+".endpoints") {
		b.Lines["endpoints."+k] = v.Line
	}
	if known {
		parseIdentity(w, path, f, b, own.Identity)
	}
	if !nameRE.MatchString(name) {
		w.fail(n, path, "boundary names use letters, digits, '.', '_' and '-'")
	}
	return b
}

// parseIdentity reads a boundary's identity: the keys its cloud allows (names of secret
// variables, never secrets), and a role chain (assumeRole) where the cloud has one.
func parseIdentity(w walker, path string, f map[string]*yaml.Node, b *Boundary, allowed []string) {
	if f["identity"] != nil {
		if len(allowed) == 0 {
			w.fail(f["identity"], path+".identity", "a %s boundary has no identity", b.Cloud)
			return
		}
		b.Identity = map[string]string{}
		for k, v := range w.fields(f["identity"], path+".identity", allowed...) {
			b.Lines["identity."+k] = v.Line
			if k == "assumeRole" {
				if v.Kind != yaml.SequenceNode {
					w.fail(v, path+".identity.assumeRole", "must be a list of {roleArn, externalId, sessionName}")
					continue
				}
				for i, rn := range v.Content {
					rp := fmt.Sprintf("%s.identity.assumeRole[%d]", path, i)
					rf := w.fields(rn, rp, "roleArn", "externalId", "sessionName")
					ar := AssumeRole{RoleArn: w.str(rf["roleArn"], rp+".roleArn"), ExternalID: w.str(rf["externalId"], rp+".externalId"),
						SessionName: w.str(rf["sessionName"], rp+".sessionName")}
					if ar.RoleArn == "" {
						w.fail(rn, rp+".roleArn", "is required")
					}
					b.Lines[fmt.Sprintf("identity.assumeRole[%d]", i)] = rn.Line
					b.AssumeRole = append(b.AssumeRole, ar)
				}
				continue
			}
			b.Identity[k] = w.str(v, path+".identity."+k)
		}
	}
}
