// Package config loads and validates a fleet: rollout.yaml (release, boundaries, gates, rings) and
// the targets under environments/**.yaml. Every error names the file, the line and the key.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"
)

// FileName is the fleet's main configuration file.
const FileName = "rollout.yaml"

// Duration is a time.Duration written as a Go duration string ("90s", "10m").
type Duration time.Duration

func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Config is one fleet, loaded and validated.
type Config struct {
	Root       string // the fleet's root directory (where rollout.yaml is)
	File       string // the path of rollout.yaml
	Release    Release
	Defaults   Defaults
	Boundaries map[string]*Boundary
	Gates      map[string]*Gate
	Rings      []*Ring
	Targets    []*Target // in file order, files sorted by path
	State      string    // the journal: "", "sqlite", "sqlite:PATH" or a postgres:// URL without a password
	// Environments are the directories (relative to Root) whose **/*.yaml files declare targets.
	Environments []string
	// Freeze is the fleet-wide freeze calendar (nil: none).
	Freeze *Freeze
	// Protect lists resource types (aws_db_instance, ...) that no plan may destroy or replace
	// unless the run was started with --allow-destroy.
	Protect []string

	byName map[string]*Target // Targets by name (the first of a name), built by Load
	lines  map[string]int     // rollout.yaml's key paths and their lines
}

type Release struct {
	Module string         // relative to Root
	Vars   map[string]any // string values are templates over .Release, .Target and .Boundary
	// ModuleOutsideFleet allows a module outside the fleet's folder (release.moduleOutsideFleet).
	ModuleOutsideFleet bool
	Line               int // of release.module in rollout.yaml
}

// MaxFileSize bounds each configuration file: a fleet's files are small, and a huge one is a
// mistake or an attack, refused before it costs minutes of parsing.
const MaxFileSize = 8 << 20

// readConfigFile reads a configuration file of at most MaxFileSize bytes.
func readConfigFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s is over %d MiB: a configuration file that large is refused (split the fleet's targets over several files)", p, MaxFileSize>>20)
	}
	return data, nil
}

// inside says whether path lies within root once links are followed.
func inside(root, path string) bool {
	r, err1 := filepath.EvalSymlinks(root)
	p, err2 := filepath.EvalSymlinks(path)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(r, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// ConventionBackend renders boundary b's state backend convention (boundaries.B.backend, whose
// string values are templates over .Target and .Boundary) for target t; nil when b has none.
func ConventionBackend(b *Boundary, t *Target) (*Backend, error) {
	if b == nil || b.Backend == nil {
		return nil, nil
	}
	data := map[string]any{
		"Target":   map[string]any{"Name": t.Name, "Boundary": t.Boundary, "Region": t.Region, "Labels": t.Labels},
		"Boundary": map[string]any{"Name": b.Name, "Cloud": b.Cloud, "Partition": b.Partition, "Environment": b.Environment, "UniverseDomain": b.UniverseDomain},
	}
	out := &Backend{Type: b.Backend.Type, Config: map[string]any{}}
	for k, v := range b.Backend.Config {
		s, ok := v.(string)
		if !ok {
			out.Config[k] = v
			continue
		}
		tmpl, err := template.New(k).Option("missingkey=error").Parse(s)
		if err != nil {
			return nil, fmt.Errorf("boundaries.%s.backend.config.%s: %w", b.Name, k, err)
		}
		var text strings.Builder
		if err := tmpl.Execute(&text, data); err != nil {
			return nil, fmt.Errorf("boundaries.%s.backend.config.%s: %w", b.Name, k, err)
		}
		out.Config[k] = text.String()
	}
	return out, nil
}

// lineOf is the line of one of the target's keys, else of the target itself.
func (t *Target) lineOf(key string) int {
	if l := t.Lines[key]; l > 0 {
		return l
	}
	return t.Line
}

// ModuleDir is the absolute path of the release's root module.
func (c *Config) ModuleDir() string { return filepath.Join(c.Root, c.Release.Module) }

// StateDir is the fleet's own local directory (the default journal, release snapshots, working
// directories, local Terraform state): .rollout/ beside rollout.yaml; a configuration file of
// another name is a fleet of its own, in .rollout/fleets/NAME/ (NAME: the file's name without
// .yaml), so that fleets in one folder never share a journal, a lease or a target's state.
func (c *Config) StateDir() string {
	base := filepath.Join(c.Root, ".rollout")
	name := filepath.Base(c.File)
	if name == FileName || name == "rollout.yml" || c.File == "" {
		return base
	}
	name = strings.TrimSuffix(strings.TrimSuffix(name, ".yaml"), ".yml")
	return filepath.Join(base, "fleets", name)
}

type Defaults struct {
	MaxParallel      int
	TerraformTimeout Duration // deadline for each terraform command
	LockTimeout      Duration // how long plan and apply wait for a held state lock
	PassEnv          []string // extra variables of rollout's environment that every Terraform run sees
	Retry            Retry    // transient Terraform failures
	Breaker          Breaker  // per boundary
	ShutdownGrace    Duration // after SIGINT/SIGTERM, how long running Terraform may finish before it is interrupted
	// PreflightMaxStaleness: when a boundary's identity endpoint fails transiently, an identity
	// proven within this long may stand in (marked stale). 0: never.
	PreflightMaxStaleness Duration
}

// Retry is how a target's Terraform run is tried again after a transient failure.
type Retry struct {
	Attempts                                 int // in all; 1: no retry
	InitialInterval, MaxInterval, MaxElapsed Duration
}

// Breaker opens a boundary's circuit after consecutive transient failures there.
type Breaker struct {
	ConsecutiveFailures int // 0: no breaker
	OpenFor             Duration
}

// Boundary is one cloud trust boundary. Its cloud-specific keys are checked for spelling here and
// for meaning (regions, endpoints, partitions) by package clouds.
type Boundary struct {
	Name           string
	Cloud          string // azure | aws | gcp | local
	MaxParallel    int
	ProviderMirror string            // a directory (filesystem mirror) or an https URL (network mirror)
	Environment    string            // azure: public | usgovernment | china | custom
	Partition      string            // aws: aws | aws-us-gov | aws-cn | aws-eusc | aws-iso | ...
	UniverseDomain string            // gcp: googleapis.com (default) or a sovereign universe
	Endpoints      map[string]string // azure custom cloud endpoints; aws/gcp endpoint overrides
	Regions        []string          // the regions targets may use (custom clouds; narrows the known list otherwise)
	Identity       map[string]string // cloud-specific identity keys; names of secret variables, never secrets
	AssumeRole     []AssumeRole      // aws: a role chain, assumed in order
	PassEnv        []string          // extra variables of rollout's environment this boundary's runs see
	Approvers      []string          // a ring with targets here needs approval, by one of these
	Freeze         *Freeze           // the boundary's freeze calendar
	Backend        *Backend          // the state backend convention for new targets (rollout env add); values are templates over .Target
	RateLimit      float64           // Terraform runs started per second in this boundary; 0: no limit
	Line           int               // where it is declared in rollout.yaml
	Lines          map[string]int    // line of each key, e.g. "identity.roleArn"
}

// AssumeRole is one step of an AWS role chain.
type AssumeRole struct {
	RoleArn     string
	ExternalID  string
	SessionName string
}

// Identity keys each cloud accepts.
var identityKeys = map[string][]string{
	"azure": {"tenantId", "clientId", "subscriptionId", "federatedTokenFile", "oidcRequestUrlEnv", "oidcRequestTokenEnv",
		"managedIdentity", "clientSecretEnv", "clientCertificateFile", "clientCertificatePasswordEnv"},
	"aws": {"profile", "configFile", "sharedCredentialsFile", "accessKeyIdEnv", "secretAccessKeyEnv", "sessionTokenEnv",
		"roleArn", "webIdentityTokenFile", "sessionName", "accountId", "assumeRole"},
	"gcp":   {"credentialsFile", "project", "impersonateServiceAccount"},
	"local": {},
}

// Gate is a named health check: one provider plus the policy that turns measurements into a verdict.
type Gate struct {
	Name            string
	HTTP            *HTTPCheck
	Command         *CommandCheck
	Prometheus      *PrometheusCheck
	TerraformOutput *OutputCheck
	Compare         *CompareCheck
	CloudWatch      *CloudWatchCheck
	AzureMonitor    *AzureMonitorCheck
	GCPMonitoring   *GCPMonitoringCheck
	// SuccessCondition and FailureCondition are expressions over the measurement's `result`
	// (github.com/expr-lang/expr), compiled when the configuration is loaded.
	SuccessCondition      string
	FailureCondition      string
	Success, Failure      *Condition
	Interval              Duration
	InitialDelay          Duration // wait this long after the apply (or the bake's start) before measuring
	Timeout               Duration
	HealthyFor            Duration
	Count                 int // take at least this many measurements before passing
	Consecutive           int
	FailureLimit          int
	InconclusiveLimit     int      // this many inconclusive measurements make the gate inconclusive
	ConsecutiveErrorLimit int      // this many provider errors in a row fail the gate
	NoData                string   // fail (default) | inconclusive | pass: what an empty result counts as
	DryRun                bool     // measure and record, never block
	MaxStaleness          Duration // a metric provider's last good measurement may stand in this long
	RateLimit             float64  // queries per second to the gate's monitoring endpoint (0: 10/s)
}

// NoData outcomes.
const (
	NoDataFail         = "fail"
	NoDataInconclusive = "inconclusive"
	NoDataPass         = "pass"
)

// PrometheusCheck is an instant or range PromQL query.
type PrometheusCheck struct {
	Address        string   // the Prometheus server's base URL (template)
	Query          string   // PromQL (template over the target, release, ring and outputs)
	Range          Duration // a range query over the last Range (0: an instant query)
	Step           Duration // the range query's resolution (default: Range/10)
	BearerTokenEnv string   // the variable of rollout's environment holding a bearer token
	UsernameEnv    string   // basic auth: the variables holding user name and password
	PasswordEnv    string
}

// CompareCheck judges the target that got the new release (the canary) against targets still on
// their last known good (the baseline), with one metric queried for each.
type CompareCheck struct {
	Prometheus    *PrometheusCheck // the query, templated per target (.Target.Name, ...)
	MaxRatio      float64          // the canary's mean may be at most baseline mean × MaxRatio...
	Floor         float64          // ...or at most Floor (so a near-zero baseline does not fail on noise)
	MinSamples    int              // each side needs at least this many values, or there is no data
	BaselineRings []string         // rings whose targets still on last known good form the baseline (default: the gate's own)
}

// CloudWatchCheck reads CloudWatch in the target's partition and region (or the given boundary
// and region, for ring gates), with that boundary's credentials: alarm states, or a metric.
type CloudWatchCheck struct {
	Boundary, Region string   // default: the target's
	Alarms           []string // alarm names (templates): ALARM fails
	AlarmPrefix      string   // or every alarm whose name starts with this (template)
	InsufficientData string   // fail (default, as AWS AppConfig treats it) | inconclusive | ok
	Metric           *CloudWatchMetric
}

// CloudWatchMetric is one metric statistic over the last Range, at Period.
type CloudWatchMetric struct {
	Namespace, Name, Stat string
	Dimensions            map[string]string // values are templates
	Period, Range         Duration
}

// AzureMonitorCheck reads Azure Monitor in the target's Azure cloud with its boundary's
// credential: a metric of a resource, or the alerts fired on a resource group.
type AzureMonitorCheck struct {
	Boundary       string   // default: the target's
	Resource       string   // metric: the resource ID (template)
	Metric         string   // metric name, e.g. Http5xx
	Namespace      string   // metric namespace (optional)
	Aggregation    string   // Average (default), Total, Maximum, Minimum, Count
	Interval       Duration // time grain (default 1m)
	Range          Duration // over the last Range (default 5m)
	ResourceGroup  string   // alerts: fired alerts on this resource group (template) fail
	SubscriptionID string   // alerts: default the boundary's identity.subscriptionId
}

// GCPMonitoringCheck reads Cloud Monitoring time series in the boundary's universe with its
// credential (ListTimeSeries with a filter, over the last Range, aligned and optionally reduced).
type GCPMonitoringCheck struct {
	Boundary        string   // default: the target's
	Project         string   // template; default: the boundary's identity.project
	Filter          string   // template, e.g. metric.type="..." AND resource.labels.x="{{ .Target.Name }}"
	Range           Duration // default 5m
	AlignmentPeriod Duration // default 60s
	Aligner         string   // ALIGN_MEAN (default), ALIGN_RATE, ALIGN_SUM, ALIGN_MAX, ...
	Reducer         string   // optional: REDUCE_SUM, REDUCE_MEAN, ... across series
	// AlertPolicies (resource names, templates) instead of Filter: each policy's threshold
	// conditions are evaluated on their own filter and aggregation; one met fails the gate.
	AlertPolicies []string
}

// OutputCheck asserts over the target's recorded Terraform outputs.
type OutputCheck struct {
	Output string // the output whose value is `result`; empty: result is the map of all outputs
}

type HTTPCheck struct {
	URL          string // template
	ExpectStatus int
	JSONPath     string // dotted path into the JSON body, e.g. status or checks.db
	Expect       string // the value at JSONPath, compared as a string
	MaxLatency   Duration
	// Headers are sent with every request; a value comes from the environment or a file, so that a
	// token is neither in the configuration nor in the URL (where it would be printed).
	Headers map[string]HeaderValue
	// Redirects: same-host (the default: a redirect to another host is not followed, and its
	// answer judged as it is), any, or none.
	Redirects string
}

// HeaderValue is where a header's value comes from: Env (a variable of rollout's environment) or
// File (its content, trimmed), after Prefix ("Bearer ").
type HeaderValue struct {
	Env, File, Prefix string
}

type CommandCheck struct {
	Run        []string // argv, each a template; a single string runs under sh -c
	ExpectExit int
}

// parseHeaders reads an http gate's headers: NAME: {env: VAR | file: PATH, prefix: TEXT}.
func parseHeaders(w walker, path string, n *yaml.Node) map[string]HeaderValue {
	if n == nil {
		return nil
	}
	out := map[string]HeaderValue{}
	for name, vn := range w.fields(n, path) {
		hp := path + "." + name
		f := w.fields(vn, hp, "env", "file", "prefix")
		hv := HeaderValue{Env: w.str(f["env"], hp+".env"), File: w.str(f["file"], hp+".file"), Prefix: w.str(f["prefix"], hp+".prefix")}
		if (hv.Env == "") == (hv.File == "") {
			w.fail(vn, hp, "give env: VARIABLE or file: PATH (exactly one): a header's value never sits in the configuration")
		}
		out[name] = hv
	}
	return out
}

// ShellScript is the script when the command runs one under a shell (sh -c SCRIPT, bash -c ...):
// its template values are then passed as arguments, never pasted into it (see ShellTemplate).
func (c *CommandCheck) ShellScript() (string, bool) {
	if len(c.Run) >= 3 && c.Run[1] == "-c" {
		switch c.Run[0] {
		case "sh", "bash", "dash", "zsh", "ksh", "/bin/sh", "/bin/bash", "/usr/bin/env":
			return c.Run[2], true
		}
	}
	return "", false
}

// Rollback scopes.
const (
	RollbackTarget = "target"
	RollbackRing   = "ring"
	RollbackRun    = "run"
)

type Ring struct {
	Name        string
	Select      Selector
	MaxParallel int
	MaxFailures int
	Gates       []string
	Bake        Duration
	RingGates   []string
	Rollback    string
	Approval    Approval
	Freeze      *Freeze
	DriftCheck  string   // off | warn | block
	Targets     []string // resolved target names, in declaration order
}

type Selector struct {
	Names      []string
	Labels     map[string]string
	Boundaries []string
}

type Approval struct {
	Required  bool
	Approvers []string
	Quorum    int
}

type Target struct {
	Name     string
	Boundary string
	Region   string
	Labels   map[string]string
	Vars     map[string]any
	Backend  *Backend
	File     string // where it was declared, relative to Root
	Line     int
	Lines    map[string]int // line of each key, e.g. "region", "backend.config.region"
}

type Backend struct {
	Type   string
	Config map[string]any
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// NamePattern is the one pattern every name rollout takes (target, ring, boundary, gate,
// release): it becomes part of file names, run ids, URLs and tables, so nothing else is allowed.
const NamePattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`

// ValidName says what is wrong with a name of the given kind ("release", ...), or nil.
func ValidName(kind, name string) error {
	if nameRE.MatchString(name) {
		return nil
	}
	return fmt.Errorf("%s name %q: names are 1 to 63 letters, digits, '.', '_' and '-', starting with a letter or digit", kind, name)
}

// Load reads the fleet whose rollout.yaml is at path (a file, or a directory holding rollout.yaml).
func Load(path string) (*Config, error) { return load(path, true) }

// LoadMain reads rollout.yaml alone: its own keys, checked as Load checks them, but no
// environment files and no checks across files, so Targets is empty. Commands that only read the
// journal (status, history) use it: they need the fleet's root and state, should not parse
// 10,000 targets to print a kept report, and must work while a target file is half edited.
func LoadMain(path string) (*Config, error) { return load(path, false) }

func load(path string, whole bool) (*Config, error) {
	if path == "" {
		path = "."
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, FileName)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	data, err := readConfigFile(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no fleet configuration at %s (hint: run in the fleet's directory, or pass --config / ROLLOUT_CONFIG)", path)
		}
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	c := &Config{Root: filepath.Dir(abs), File: abs}
	var errs Errors
	c.parseMain(data, &errs)
	if !whole {
		if len(errs) > 0 {
			return nil, errs
		}
		return c, nil
	}
	c.loadEnvironments(&errs)
	c.byName = make(map[string]*Target, len(c.Targets))
	for _, t := range c.Targets {
		if c.byName[t.Name] == nil {
			c.byName[t.Name] = t
		}
	}
	if len(errs) == 0 {
		c.validate(&errs)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func (c *Config) rel(p string) string {
	if r, err := filepath.Rel(c.Root, p); err == nil {
		return r
	}
	return p
}

func parseDoc(data []byte, w walker) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		w.fail(nil, "", "not valid YAML: %v", err)
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

func (c *Config) parseMain(data []byte, errs *Errors) {
	c.lines = map[string]int{}
	w := walker{file: c.rel(c.File), errs: errs, lines: c.lines}
	root := parseDoc(data, w)
	top := w.fields(root, "", "release", "defaults", "boundaries", "gates", "rings", "state", "environments", "freeze", "protect")
	c.Freeze = parseFreeze(w, "freeze", top["freeze"])
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

	rel := w.fields(top["release"], "release", "module", "vars", "moduleOutsideFleet")
	c.Release.Module = w.str(rel["module"], "release.module")
	c.Release.Vars = w.anyMap(rel["vars"], "release.vars")
	c.Release.ModuleOutsideFleet = w.boolean(rel["moduleOutsideFleet"], "release.moduleOutsideFleet")
	if rel["module"] != nil {
		c.Release.Line = rel["module"].Line
	}
	if top["release"] == nil || c.Release.Module == "" {
		w.fail(root, "release.module", "is required: the Terraform root module every release ships")
	} else if st, err := os.Stat(c.ModuleDir()); err != nil || !st.IsDir() {
		w.fail(rel["module"], "release.module", "module directory %s does not exist", c.Release.Module)
	} else if !c.Release.ModuleOutsideFleet && !inside(c.Root, c.ModuleDir()) {
		w.fail(rel["module"], "release.module", "%s is outside the fleet's folder %s: a release ships code from the fleet's own tree (set release.moduleOutsideFleet: true to allow it)", c.Release.Module, c.Root)
	}
	for k, v := range c.Release.Vars {
		checkTemplates(w, rel["vars"], "release.vars."+k, v)
	}

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
	def := w.fields(top["defaults"], "defaults", "maxParallel", "terraformTimeout", "lockTimeout", "passEnv", "retry", "breaker", "shutdownGrace", "preflightMaxStaleness")
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

	c.Boundaries = map[string]*Boundary{}
	for name, n := range w.fields(top["boundaries"], "boundaries") {
		path := "boundaries." + name
		b := &Boundary{Name: name, Line: n.Line, Lines: map[string]int{}}
		f := w.fields(n, path, "cloud", "environment", "endpoints", "identity", "partition", "universeDomain",
			"maxParallel", "providerMirror", "regions", "passEnv", "rateLimit", "approvers", "backend", "freeze")
		for k, v := range f {
			b.Lines[k] = v.Line
		}
		b.Cloud = w.str(f["cloud"], path+".cloud")
		switch b.Cloud {
		case "azure", "aws", "gcp", "local":
		case "":
			w.fail(n, path+".cloud", "is required: one of azure, aws, gcp, local")
		default:
			w.fail(f["cloud"], path+".cloud", "unknown cloud %q: one of azure, aws, gcp, local", b.Cloud)
		}
		b.MaxParallel = w.integer(f["maxParallel"], path+".maxParallel", 1)
		b.RateLimit = w.rate(f["rateLimit"], path+".rateLimit")
		b.ProviderMirror = w.str(f["providerMirror"], path+".providerMirror")
		b.Environment = w.str(f["environment"], path+".environment")
		b.Partition = w.str(f["partition"], path+".partition")
		b.UniverseDomain = w.str(f["universeDomain"], path+".universeDomain")
		b.Regions = w.strings(f["regions"], path+".regions")
		b.PassEnv = w.envNames(f["passEnv"], path+".passEnv")
		b.Approvers = w.strings(f["approvers"], path+".approvers")
		b.Freeze = parseFreeze(w, path+".freeze", f["freeze"])
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
		// Keys that belong to another cloud are a mistake worth naming, not ignoring.
		for key, cloud := range map[string]string{"environment": "azure", "partition": "aws", "universeDomain": "gcp"} {
			if f[key] != nil && b.Cloud != "" && b.Cloud != cloud {
				w.fail(f[key], path+"."+key, "is a %s key; this boundary's cloud is %s", cloud, b.Cloud)
			}
		}
		if allowed, ok := identityKeys[b.Cloud]; ok && f["identity"] != nil {
			if b.Cloud == "local" {
				w.fail(f["identity"], path+".identity", "a local boundary has no identity")
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
		if !nameRE.MatchString(name) {
			w.fail(n, path, "boundary names use letters, digits, '.', '_' and '-'")
		}
		c.Boundaries[name] = b
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

// Gate providers that later versions add; naming them gives a clear error rather than "unknown key".

func parseGate(w walker, name string, n *yaml.Node) *Gate {
	path := "gates." + name
	allowed := []string{"http", "command", "prometheus", "terraform-output", "compare", "cloudwatch", "azure-monitor", "gcp-monitoring", "successCondition", "failureCondition",
		"interval", "initialDelay", "timeout", "healthyFor", "count", "consecutive", "failureLimit", "inconclusiveLimit",
		"consecutiveErrorLimit", "noData", "dryRun", "maxStaleness", "rateLimit"}
	f := w.fields(n, path, allowed...)
	g := &Gate{Name: name}
	providers := 0
	if f["http"] != nil {
		providers++
		h := w.fields(f["http"], path+".http", "url", "expectStatus", "jsonPath", "expect", "maxLatency", "headers", "redirects")
		g.HTTP = &HTTPCheck{
			URL:          w.str(h["url"], path+".http.url"),
			ExpectStatus: w.integer(h["expectStatus"], path+".http.expectStatus", 100),
			JSONPath:     w.str(h["jsonPath"], path+".http.jsonPath"),
			Expect:       w.str(h["expect"], path+".http.expect"),
			MaxLatency:   w.duration(h["maxLatency"], path+".http.maxLatency"),
			Redirects:    w.str(h["redirects"], path+".http.redirects"),
			Headers:      parseHeaders(w, path+".http.headers", h["headers"]),
		}
		switch g.HTTP.Redirects {
		case "":
			g.HTTP.Redirects = "same-host"
		case "same-host", "any", "none":
		default:
			w.fail(h["redirects"], path+".http.redirects", "must be same-host, any or none, got %q", g.HTTP.Redirects)
		}
		if g.HTTP.ExpectStatus == 0 {
			g.HTTP.ExpectStatus = 200
		}
		if g.HTTP.URL == "" {
			w.fail(f["http"], path+".http.url", "is required")
		}
		checkTemplates(w, h["url"], path+".http.url", g.HTTP.URL)
		if (g.HTTP.JSONPath == "") != (h["expect"] == nil) {
			w.fail(f["http"], path+".http", "jsonPath and expect go together")
		}
	}
	if f["command"] != nil {
		providers++
		cf := w.fields(f["command"], path+".command", "run", "expectExit")
		g.Command = &CommandCheck{ExpectExit: w.integer(cf["expectExit"], path+".command.expectExit", 0)}
		switch rn := cf["run"]; {
		case rn == nil:
			w.fail(f["command"], path+".command.run", "is required: a command line (run under sh -c) or a list of arguments")
		case rn.Kind == yaml.ScalarNode:
			g.Command.Run = []string{"sh", "-c", rn.Value}
		default:
			g.Command.Run = w.strings(rn, path+".command.run")
		}
		for i, a := range g.Command.Run {
			checkTemplates(w, cf["run"], fmt.Sprintf("%s.command.run[%d]", path, i), a)
		}
		if script, ok := g.Command.ShellScript(); ok {
			if _, _, err := ShellTemplate(script); err != nil {
				w.fail(cf["run"], path+".command.run", "%v", err)
			}
		}
	}
	if f["prometheus"] != nil {
		providers++
		g.Prometheus = parsePrometheus(w, path, f["prometheus"])
	}
	if f["compare"] != nil {
		providers++
		cf := w.fields(f["compare"], path+".compare", "prometheus", "maxRatio", "floor", "minSamples", "baselineRings")
		g.Compare = &CompareCheck{MaxRatio: w.number(cf["maxRatio"], path+".compare.maxRatio"), Floor: w.number(cf["floor"], path+".compare.floor"),
			MinSamples: w.integer(cf["minSamples"], path+".compare.minSamples", 1), BaselineRings: w.strings(cf["baselineRings"], path+".compare.baselineRings")}
		if cf["prometheus"] == nil {
			w.fail(f["compare"], path+".compare.prometheus", "is required: the query run for the canary and for each baseline target")
		} else {
			g.Compare.Prometheus = parsePrometheus(w, path+".compare", cf["prometheus"])
		}
		if g.Compare.MaxRatio <= 0 {
			w.fail(f["compare"], path+".compare.maxRatio", "is required and must be more than 0, e.g. 1.2 (at most 20%% worse than the baseline)")
		}
		if g.Compare.MinSamples == 0 {
			g.Compare.MinSamples = 1
		}
	}
	if n := f["cloudwatch"]; n != nil {
		providers++
		cp := path + ".cloudwatch"
		cf := w.fields(n, cp, "boundary", "region", "alarms", "alarmPrefix", "insufficientData", "metric")
		c := &CloudWatchCheck{Boundary: w.str(cf["boundary"], cp+".boundary"), Region: w.str(cf["region"], cp+".region"),
			Alarms: w.strings(cf["alarms"], cp+".alarms"), AlarmPrefix: w.str(cf["alarmPrefix"], cp+".alarmPrefix"),
			InsufficientData: w.str(cf["insufficientData"], cp+".insufficientData")}
		switch c.InsufficientData {
		case "":
			c.InsufficientData = NoDataFail
		case NoDataFail, NoDataInconclusive, "ok":
		default:
			w.fail(cf["insufficientData"], cp+".insufficientData", "must be fail, inconclusive or ok, got %q", c.InsufficientData)
		}
		if mn := cf["metric"]; mn != nil {
			mf := w.fields(mn, cp+".metric", "namespace", "name", "stat", "dimensions", "period", "range")
			c.Metric = &CloudWatchMetric{Namespace: w.str(mf["namespace"], cp+".metric.namespace"), Name: w.str(mf["name"], cp+".metric.name"),
				Stat: w.str(mf["stat"], cp+".metric.stat"), Dimensions: w.stringMap(mf["dimensions"], cp+".metric.dimensions"),
				Period: w.duration(mf["period"], cp+".metric.period"), Range: w.duration(mf["range"], cp+".metric.range")}
			if c.Metric.Namespace == "" || c.Metric.Name == "" {
				w.fail(mn, cp+".metric", "namespace and name are required")
			}
			if c.Metric.Stat == "" {
				c.Metric.Stat = "Average"
			}
			if c.Metric.Period == 0 {
				c.Metric.Period = Duration(time.Minute)
			}
			if c.Metric.Range == 0 {
				c.Metric.Range = Duration(5 * time.Minute)
			}
			for k, v := range c.Metric.Dimensions {
				checkTemplates(w, mf["dimensions"], cp+".metric.dimensions."+k, v)
			}
		}
		modes := 0
		for _, set := range []bool{len(c.Alarms) > 0, c.AlarmPrefix != "", c.Metric != nil} {
			if set {
				modes++
			}
		}
		if modes != 1 {
			w.fail(n, cp, "give exactly one of alarms, alarmPrefix or metric")
		}
		for i, a := range c.Alarms {
			checkTemplates(w, cf["alarms"], fmt.Sprintf("%s.alarms[%d]", cp, i), a)
		}
		checkTemplates(w, cf["alarmPrefix"], cp+".alarmPrefix", c.AlarmPrefix)
		g.CloudWatch = c
	}
	if n := f["azure-monitor"]; n != nil {
		providers++
		ap := path + ".azure-monitor"
		af := w.fields(n, ap, "boundary", "resource", "metric", "namespace", "aggregation", "interval", "range", "resourceGroup", "subscriptionId")
		a := &AzureMonitorCheck{Boundary: w.str(af["boundary"], ap+".boundary"), Resource: w.str(af["resource"], ap+".resource"),
			Metric: w.str(af["metric"], ap+".metric"), Namespace: w.str(af["namespace"], ap+".namespace"), Aggregation: w.str(af["aggregation"], ap+".aggregation"),
			Interval: w.duration(af["interval"], ap+".interval"), Range: w.duration(af["range"], ap+".range"),
			ResourceGroup: w.str(af["resourceGroup"], ap+".resourceGroup"), SubscriptionID: w.str(af["subscriptionId"], ap+".subscriptionId")}
		switch {
		case a.Metric != "" && a.ResourceGroup == "":
			if a.Resource == "" {
				w.fail(n, ap+".resource", "is required with metric: the resource ID whose metric is read")
			}
		case a.Metric == "" && a.ResourceGroup != "":
		default:
			w.fail(n, ap, "give metric (with resource) or resourceGroup (its fired alerts), not both")
		}
		switch a.Aggregation {
		case "":
			a.Aggregation = "Average"
		case "Average", "Total", "Maximum", "Minimum", "Count":
		default:
			w.fail(af["aggregation"], ap+".aggregation", "must be Average, Total, Maximum, Minimum or Count, got %q", a.Aggregation)
		}
		if a.Interval == 0 {
			a.Interval = Duration(time.Minute)
		}
		if a.Range == 0 {
			a.Range = Duration(5 * time.Minute)
		}
		checkTemplates(w, af["resource"], ap+".resource", a.Resource)
		checkTemplates(w, af["resourceGroup"], ap+".resourceGroup", a.ResourceGroup)
		g.AzureMonitor = a
	}
	if n := f["gcp-monitoring"]; n != nil {
		providers++
		gp := path + ".gcp-monitoring"
		gf := w.fields(n, gp, "boundary", "project", "filter", "range", "alignmentPeriod", "aligner", "reducer", "alertPolicies")
		c := &GCPMonitoringCheck{Boundary: w.str(gf["boundary"], gp+".boundary"), Project: w.str(gf["project"], gp+".project"),
			Filter: w.str(gf["filter"], gp+".filter"), Range: w.duration(gf["range"], gp+".range"), AlignmentPeriod: w.duration(gf["alignmentPeriod"], gp+".alignmentPeriod"),
			Aligner: w.str(gf["aligner"], gp+".aligner"), Reducer: w.str(gf["reducer"], gp+".reducer"), AlertPolicies: w.strings(gf["alertPolicies"], gp+".alertPolicies")}
		if (c.Filter == "") == (len(c.AlertPolicies) == 0) {
			w.fail(n, gp, "give filter (a Cloud Monitoring filter, e.g. metric.type=\"run.googleapis.com/request_count\") or alertPolicies, not both")
		}
		for i, a := range c.AlertPolicies {
			checkTemplates(w, gf["alertPolicies"], fmt.Sprintf("%s.alertPolicies[%d]", gp, i), a)
		}
		if c.Range == 0 {
			c.Range = Duration(5 * time.Minute)
		}
		if c.AlignmentPeriod == 0 {
			c.AlignmentPeriod = Duration(time.Minute)
		}
		if c.Aligner == "" {
			c.Aligner = "ALIGN_MEAN"
		}
		if !strings.HasPrefix(c.Aligner, "ALIGN_") {
			w.fail(gf["aligner"], gp+".aligner", "want an aligner such as ALIGN_MEAN or ALIGN_RATE, got %q", c.Aligner)
		}
		if c.Reducer != "" && !strings.HasPrefix(c.Reducer, "REDUCE_") {
			w.fail(gf["reducer"], gp+".reducer", "want a reducer such as REDUCE_SUM, got %q", c.Reducer)
		}
		checkTemplates(w, gf["filter"], gp+".filter", c.Filter)
		checkTemplates(w, gf["project"], gp+".project", c.Project)
		g.GCPMonitoring = c
	}
	if f["terraform-output"] != nil {
		providers++
		of := w.fields(f["terraform-output"], path+".terraform-output", "output")
		g.TerraformOutput = &OutputCheck{Output: w.str(of["output"], path+".terraform-output.output")}
	}
	g.SuccessCondition = w.str(f["successCondition"], path+".successCondition")
	g.FailureCondition = w.str(f["failureCondition"], path+".failureCondition")
	numeric := g.Prometheus != nil || g.CloudWatch != nil && g.CloudWatch.Metric != nil || g.AzureMonitor != nil && g.AzureMonitor.Metric != "" || g.GCPMonitoring != nil && len(g.GCPMonitoring.AlertPolicies) == 0
	if numeric || g.TerraformOutput != nil {
		if g.SuccessCondition == "" {
			w.fail(n, path+".successCondition", "is required for a metric or terraform-output gate: an expression over result, e.g. result < 0.01")
		}
		g.Success = w.condition(f["successCondition"], path+".successCondition", g.SuccessCondition, numeric)
		g.Failure = w.condition(f["failureCondition"], path+".failureCondition", g.FailureCondition, numeric)
	} else {
		for _, k := range []string{"successCondition", "failureCondition"} {
			if f[k] != nil {
				w.fail(f[k], path+"."+k, "conditions are for metric (prometheus, cloudwatch, azure-monitor, gcp-monitoring) and terraform-output gates; http, command, compare and alarms judge their own answer")
			}
		}
	}
	if providers == 0 {
		w.fail(n, path, "names no provider: give one of http, command, prometheus, terraform-output, compare")
	} else if providers > 1 {
		w.fail(n, path, "names %d providers: a gate has exactly one", providers)
	}
	g.Interval = w.duration(f["interval"], path+".interval")
	g.Timeout = w.duration(f["timeout"], path+".timeout")
	g.HealthyFor = w.duration(f["healthyFor"], path+".healthyFor")
	g.Consecutive = w.integer(f["consecutive"], path+".consecutive", 1)
	g.FailureLimit = w.integer(f["failureLimit"], path+".failureLimit", 1)
	g.InitialDelay = w.duration(f["initialDelay"], path+".initialDelay")
	g.Count = w.integer(f["count"], path+".count", 1)
	g.InconclusiveLimit = w.integer(f["inconclusiveLimit"], path+".inconclusiveLimit", 1)
	g.ConsecutiveErrorLimit = w.integer(f["consecutiveErrorLimit"], path+".consecutiveErrorLimit", 1)
	g.DryRun = w.boolean(f["dryRun"], path+".dryRun")
	g.MaxStaleness = w.duration(f["maxStaleness"], path+".maxStaleness")
	g.RateLimit = w.rate(f["rateLimit"], path+".rateLimit")
	switch g.NoData = w.str(f["noData"], path+".noData"); g.NoData {
	case "":
		g.NoData = NoDataFail
	case NoDataFail, NoDataInconclusive, NoDataPass:
	default:
		w.fail(f["noData"], path+".noData", "must be fail, inconclusive or pass, got %q", g.NoData)
	}
	if g.InconclusiveLimit == 0 {
		g.InconclusiveLimit = 1
	}
	if g.ConsecutiveErrorLimit == 0 {
		g.ConsecutiveErrorLimit = 4
	}
	if g.Interval == 0 {
		g.Interval = Duration(5 * time.Second)
	}
	if g.Timeout == 0 {
		g.Timeout = Duration(5 * time.Minute)
	}
	if g.Consecutive == 0 {
		g.Consecutive = 1
	}
	if g.FailureLimit == 0 {
		g.FailureLimit = 1
	}
	if g.HealthyFor >= g.Timeout && f["timeout"] != nil {
		w.fail(f["healthyFor"], path+".healthyFor", "(%s) must be shorter than timeout (%s), or the gate can never pass", g.HealthyFor, g.Timeout)
	}
	return g
}

func parsePrometheus(w walker, path string, n *yaml.Node) *PrometheusCheck {
	pf := w.fields(n, path+".prometheus", "address", "query", "range", "step", "bearerTokenEnv", "usernameEnv", "passwordEnv")
	c := &PrometheusCheck{Address: w.str(pf["address"], path+".prometheus.address"), Query: w.str(pf["query"], path+".prometheus.query"),
		Range: w.duration(pf["range"], path+".prometheus.range"), Step: w.duration(pf["step"], path+".prometheus.step"),
		BearerTokenEnv: w.str(pf["bearerTokenEnv"], path+".prometheus.bearerTokenEnv"),
		UsernameEnv:    w.str(pf["usernameEnv"], path+".prometheus.usernameEnv"), PasswordEnv: w.str(pf["passwordEnv"], path+".prometheus.passwordEnv")}
	for k, v := range map[string]string{"address": c.Address, "query": c.Query} {
		if v == "" {
			w.fail(n, path+".prometheus."+k, "is required")
		}
		checkTemplates(w, pf[k], path+".prometheus."+k, v)
	}
	if (c.UsernameEnv == "") != (c.PasswordEnv == "") {
		w.fail(n, path+".prometheus", "usernameEnv and passwordEnv go together")
	}
	if c.BearerTokenEnv != "" && c.UsernameEnv != "" {
		w.fail(n, path+".prometheus", "give bearerTokenEnv or usernameEnv/passwordEnv, not both")
	}
	if c.Step > 0 && c.Range == 0 {
		w.fail(pf["step"], path+".prometheus.step", "is for range queries: set range too")
	}
	return c
}

func parseRing(w walker, path string, n *yaml.Node, defaultParallel int) *Ring {
	f := w.fields(n, path, "name", "targets", "maxParallel", "maxFailures", "gates", "bake", "ringGates", "rollback", "approval", "freeze", "driftCheck")
	r := &Ring{Name: w.str(f["name"], path+".name")}
	if r.Name == "" {
		w.fail(n, path+".name", "is required")
	} else if !nameRE.MatchString(r.Name) {
		w.fail(f["name"], path+".name", "ring names use letters, digits, '.', '_' and '-'")
	}
	sel := w.fields(f["targets"], path+".targets", "names", "labels", "boundaries")
	r.Select = Selector{
		Names:      w.strings(sel["names"], path+".targets.names"),
		Labels:     w.stringMap(sel["labels"], path+".targets.labels"),
		Boundaries: w.strings(sel["boundaries"], path+".targets.boundaries"),
	}
	if len(sel) == 0 {
		w.fail(n, path+".targets", "is required: select by names, labels or boundaries")
	}
	r.MaxParallel = w.integer(f["maxParallel"], path+".maxParallel", 1)
	if r.MaxParallel == 0 {
		r.MaxParallel = defaultParallel
	}
	r.MaxFailures = w.integer(f["maxFailures"], path+".maxFailures", 0)
	r.Gates = w.strings(f["gates"], path+".gates")
	r.Bake = w.duration(f["bake"], path+".bake")
	r.RingGates = w.strings(f["ringGates"], path+".ringGates")
	r.Rollback = w.str(f["rollback"], path+".rollback")
	switch r.Rollback {
	case "":
		r.Rollback = RollbackRing
	case RollbackTarget, RollbackRing, RollbackRun:
	default:
		w.fail(f["rollback"], path+".rollback", "must be target, ring or run, got %q", r.Rollback)
	}
	r.Freeze = parseFreeze(w, path+".freeze", f["freeze"])
	r.DriftCheck = w.str(f["driftCheck"], path+".driftCheck")
	switch r.DriftCheck {
	case "":
		r.DriftCheck = "off"
	case "off", "warn", "block":
	default:
		w.fail(f["driftCheck"], path+".driftCheck", "must be off, warn or block, got %q", r.DriftCheck)
	}
	ap := w.fields(f["approval"], path+".approval", "required", "approvers", "quorum")
	r.Approval = Approval{
		Required:  w.boolean(ap["required"], path+".approval.required"),
		Approvers: w.strings(ap["approvers"], path+".approval.approvers"),
		Quorum:    w.integer(ap["quorum"], path+".approval.quorum", 1),
	}
	if r.Approval.Quorum == 0 {
		r.Approval.Quorum = 1
	}
	if len(r.Approval.Approvers) > 0 && r.Approval.Quorum > len(r.Approval.Approvers) {
		w.fail(ap["quorum"], path+".approval.quorum", "(%d) is more than the %d approvers listed", r.Approval.Quorum, len(r.Approval.Approvers))
	}
	return r
}

func (c *Config) loadEnvironments(errs *Errors) {
	var files []string
	for _, d := range c.Environments {
		_ = filepath.WalkDir(filepath.Join(c.Root, d), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				files = append(files, p)
			}
			return nil
		})
	}
	sort.Strings(files)
	files = slices.Compact(files)
	for _, p := range files {
		data, err := readConfigFile(p)
		w := walker{file: c.rel(p), errs: errs}
		if err != nil {
			w.fail(nil, "", "%v", err)
			continue
		}
		root := parseDoc(data, w)
		top := w.fields(root, "", "targets")
		tn := top["targets"]
		if tn == nil {
			continue
		}
		if tn.Kind != yaml.SequenceNode {
			w.fail(tn, "targets", "must be a list of targets")
			continue
		}
		for i, n := range tn.Content {
			c.Targets = append(c.Targets, parseTarget(w, fmt.Sprintf("targets[%d]", i), n))
		}
	}
}

func parseTarget(w walker, path string, n *yaml.Node) *Target {
	f := w.fields(n, path, "name", "boundary", "region", "labels", "vars", "backend")
	t := &Target{File: w.file, Line: n.Line, Lines: map[string]int{}}
	for k, v := range f {
		t.Lines[k] = v.Line
	}
	t.Name = w.str(f["name"], path+".name")
	t.Boundary = w.str(f["boundary"], path+".boundary")
	t.Region = w.str(f["region"], path+".region")
	t.Labels = w.stringMap(f["labels"], path+".labels")
	t.Vars = w.anyMap(f["vars"], path+".vars")
	if t.Name == "" {
		w.fail(n, path+".name", "is required")
	} else if !nameRE.MatchString(t.Name) {
		w.fail(f["name"], path+".name", "target names use letters, digits, '.', '_' and '-' (at most 63)")
	}
	if t.Boundary == "" {
		w.fail(n, path+".boundary", "is required")
	}
	if f["backend"] != nil {
		b := w.fields(f["backend"], path+".backend", "type", "config")
		t.Backend = &Backend{Type: w.str(b["type"], path+".backend.type"), Config: w.anyMap(b["config"], path+".backend.config")}
		for k, v := range w.fields(b["config"], path+".backend.config") {
			t.Lines["backend.config."+k] = v.Line
		}
		if b["type"] != nil {
			t.Lines["backend.type"] = b["type"].Line
		}
		if t.Backend.Type == "" {
			w.fail(f["backend"], path+".backend.type", "is required (s3, azurerm, gcs, local, ...)")
		}
	}
	return t
}

// validate checks what spans files: references between gates, boundaries, rings and targets.
func (c *Config) validate(errs *Errors) {
	main := walker{file: c.rel(c.File), errs: errs, lines: c.lines}
	byName := map[string]*Target{}
	var unique []*Target
	for _, t := range c.Targets {
		if prev, dup := byName[t.Name]; dup {
			*errs = append(*errs, &FieldError{File: t.File, Line: t.Line, Key: "targets.name",
				Msg: fmt.Sprintf("target %q is declared twice (first at %s:%d)", t.Name, prev.File, prev.Line)})
			continue
		}
		byName[t.Name] = t
		unique = append(unique, t)
		if b := c.Boundaries[t.Boundary]; b != nil && t.Backend == nil {
			// A target without a backend of its own keeps its state where its boundary's convention says.
			be, err := ConventionBackend(b, t)
			if err != nil {
				*errs = append(*errs, &FieldError{File: t.File, Line: t.Line, Key: "targets[" + t.Name + "].backend", Msg: err.Error()})
			}
			t.Backend = be
		}
		if _, ok := c.Boundaries[t.Boundary]; !ok {
			*errs = append(*errs, &FieldError{File: t.File, Line: t.lineOf("boundary"), Key: "targets[" + t.Name + "].boundary",
				Msg: fmt.Sprintf("unknown boundary %q (declared in %s: %s)", t.Boundary, main.file, keys(c.Boundaries))})
		}
	}
	owner := map[string]string{}
	for i, r := range c.Rings {
		path := fmt.Sprintf("rings[%d]", i)
		for _, g := range r.Gates {
			if _, ok := c.Gates[g]; !ok {
				main.fail(nil, path+".gates", "unknown gate %q (declared: %s)", g, keys(c.Gates))
			}
		}
		for _, g := range r.RingGates {
			if gate, ok := c.Gates[g]; !ok {
				main.fail(nil, path+".ringGates", "unknown gate %q (declared: %s)", g, keys(c.Gates))
			} else if gate.Compare != nil {
				main.fail(nil, path+".ringGates", "gate %q compares one target with its baseline: use it in gates, not ringGates", g)
			} else if gm := gate.GCPMonitoring; gm != nil && gm.Boundary == "" {
				main.fail(nil, path+".ringGates", "gate %q reads Cloud Monitoring with no target to take a boundary from: set gates.%s.gcp-monitoring.boundary", g, g)
			} else if am := gate.AzureMonitor; am != nil && am.Boundary == "" {
				main.fail(nil, path+".ringGates", "gate %q reads Azure Monitor with no target to take a boundary from: set gates.%s.azure-monitor.boundary", g, g)
			} else if cw := gate.CloudWatch; cw != nil && (cw.Boundary == "" || cw.Region == "") {
				main.fail(nil, path+".ringGates", "gate %q reads CloudWatch with no target to take a boundary and region from: set gates.%s.cloudwatch.boundary and region", g, g)
			}
		}
		for _, b := range r.Select.Boundaries {
			if _, ok := c.Boundaries[b]; !ok {
				main.fail(nil, path+".targets.boundaries", "unknown boundary %q (declared: %s)", b, keys(c.Boundaries))
			}
		}
		for _, nm := range r.Select.Names {
			if _, ok := byName[nm]; !ok {
				main.fail(nil, path+".targets.names", "unknown target %q", nm)
			}
		}
		for _, t := range unique {
			if !r.Select.matches(t) {
				continue
			}
			if other, taken := owner[t.Name]; taken {
				main.fail(nil, path+".targets", "target %q (%s:%d) is selected by ring %q and ring %q: every target is in exactly one ring", t.Name, t.File, t.Line, other, r.Name)
				continue
			}
			owner[t.Name] = r.Name
			r.Targets = append(r.Targets, t.Name)
		}
		if len(r.Targets) == 0 {
			main.fail(nil, path+".targets", "ring %q selects no target", r.Name)
		}
		c.tightenApproval(r, path, main)
	}
	for _, t := range unique {
		if _, ok := owner[t.Name]; !ok {
			*errs = append(*errs, &FieldError{File: t.File, Line: t.Line, Key: "targets[" + t.Name + "]",
				Msg: fmt.Sprintf("target %q is in no ring: add it to a ring's targets in %s", t.Name, main.file)})
		}
	}
	for name, g := range c.Gates {
		if gm := g.GCPMonitoring; gm != nil && gm.Boundary != "" {
			if b := c.Boundaries[gm.Boundary]; b == nil || b.Cloud != "gcp" {
				main.fail(nil, "gates."+name+".gcp-monitoring.boundary", "%q is not a gcp boundary of this fleet", gm.Boundary)
			}
		}
		if am := g.AzureMonitor; am != nil && am.Boundary != "" {
			if b := c.Boundaries[am.Boundary]; b == nil || b.Cloud != "azure" {
				main.fail(nil, "gates."+name+".azure-monitor.boundary", "%q is not an azure boundary of this fleet", am.Boundary)
			}
		}
		if cw := g.CloudWatch; cw != nil && cw.Boundary != "" {
			if b := c.Boundaries[cw.Boundary]; b == nil || b.Cloud != "aws" {
				main.fail(nil, "gates."+name+".cloudwatch.boundary", "%q is not an aws boundary of this fleet", cw.Boundary)
			}
		}
		if g.Compare == nil {
			continue
		}
		for _, rn := range g.Compare.BaselineRings {
			found := false
			for _, r := range c.Rings {
				found = found || r.Name == rn
			}
			if !found {
				main.fail(nil, "gates."+name+".compare.baselineRings", "unknown ring %q", rn)
			}
		}
	}
	if len(c.Targets) == 0 {
		main.fail(nil, "", "the fleet has no targets: declare them in %s", strings.Join(c.Environments, ", ")+"/**/*.yaml")
	}
}

func (s Selector) matches(t *Target) bool {
	if len(s.Names) > 0 && !contains(s.Names, t.Name) {
		return false
	}
	if len(s.Boundaries) > 0 && !contains(s.Boundaries, t.Boundary) {
		return false
	}
	for k, v := range s.Labels {
		if t.Labels[k] != v {
			return false
		}
	}
	return len(s.Names)+len(s.Boundaries)+len(s.Labels) > 0
}

func keys[V any](m map[string]V) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func checkTemplates(w walker, n *yaml.Node, path string, v any) {
	switch x := v.(type) {
	case string:
		if _, err := template.New(path).Option("missingkey=error").Parse(x); err != nil {
			w.fail(n, path, "bad template: %v", err)
		}
	case map[string]any:
		for k, e := range x {
			checkTemplates(w, n, path+"."+k, e)
		}
	case []any:
		for i, e := range x {
			checkTemplates(w, n, fmt.Sprintf("%s[%d]", path, i), e)
		}
	}
}

// Target returns the named target, or nil.
func (c *Config) Target(name string) *Target {
	if t := c.byName[name]; t != nil && t.Name == name {
		return t // Load's index: a fleet of 10,000 targets asks this for each of them
	}
	for _, t := range c.Targets { // a Config built by hand, or a target added since Load
		if t.Name == name {
			return t
		}
	}
	return nil
}

// tightenApproval applies the approvers of the boundaries a ring enters: such a ring needs an
// approval, and only someone every one of those boundaries (and the ring, if it lists approvers)
// allows may give it.
func (c *Config) tightenApproval(r *Ring, path string, main walker) {
	seen := map[string]bool{}
	for _, name := range r.Targets {
		t := c.Target(name)
		b := c.Boundaries[t.Boundary]
		if b == nil || len(b.Approvers) == 0 || seen[b.Name] {
			continue
		}
		seen[b.Name] = true
		r.Approval.Required = true
		if len(r.Approval.Approvers) == 0 {
			r.Approval.Approvers = append([]string(nil), b.Approvers...)
			continue
		}
		var both []string
		for _, a := range r.Approval.Approvers {
			if contains(b.Approvers, a) {
				both = append(both, a)
			}
		}
		if len(both) == 0 {
			main.fail(nil, path+".approval.approvers", "nobody may approve ring %q: none of its approvers is among boundary %s's (%s)", r.Name, b.Name, strings.Join(b.Approvers, ", "))
		}
		r.Approval.Approvers = both
	}
	if r.Approval.Quorum > len(r.Approval.Approvers) && len(r.Approval.Approvers) > 0 {
		main.fail(nil, path+".approval.quorum", "(%d) is more than the %d approvers allowed for ring %q", r.Approval.Quorum, len(r.Approval.Approvers), r.Name)
	}
}
