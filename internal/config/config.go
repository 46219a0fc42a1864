// Package config loads and validates a fleet: rollout.yaml (release, boundaries, gates, rings) and
// the targets under environments/**.yaml. Every error names the file, the line and the key.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rollout-dev/rollout/internal/rings"
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
	// Clouds are the clouds boundaries may name, as Load was given them.
	Clouds Clouds
	// Notes are what validate says of a configuration that is valid: not problems, worth knowing.
	Notes []string
	// Environments are the directories (relative to Root) whose **/*.yaml files declare targets.
	Environments []string
	// Freeze is the fleet-wide freeze calendar (nil: none).
	Freeze *Freeze
	// Protect lists resource types (aws_db_instance, ...) that no plan may destroy or replace
	// unless the run was started with --allow-destroy.
	Protect []string
	// Notify are the webhooks told what runs need from people and how they end.
	Notify []*Notify
	// Telemetry is where the fleet's traces go (nil: OTEL_EXPORTER_OTLP_* when set, else nowhere).
	Telemetry *Telemetry
	// Promotion is the evidence a release needs from other fleets before this one starts it.
	Promotion *Promotion
	// Engine is what drives runs: "inprocess" (the default: this process) or "temporal" (a
	// durable workflow on a Temporal cluster, Terraform run by workers inside each boundary).
	Engine string
	// Temporal is the cluster the temporal engine uses (nil unless engine: temporal).
	Temporal *Temporal

	byName map[string]*Target // Targets by name (the first of a name), built by Load
	lines  map[string]int     // rollout.yaml's key paths and their lines
}

// Release is the release section: the module and the variables every target gets.
type Release struct {
	Module string // relative to Root; "" for a stack
	// Components are a stack's root modules (release.components); nil for one module.
	Components map[string]*Component
	Vars       map[string]any // string values are templates over .Release, .Target and .Boundary
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

// TemplateData is what templates over a target see (release variables, a boundary's backend
// convention): {{ .Target.Name }}, {{ .Target.Region }}, {{ index .Target.Labels "k" }}, and its
// boundary's name, cloud and settings, each cloud's keys title-cased ({{ .Boundary.Partition }},
// {{ .Boundary.Environment }}, {{ .Boundary.UniverseDomain }}: "" in a boundary of another cloud,
// the cloud's default when not set), so that a module gets them without every target repeating
// them. Release variables add .Release. b may be nil (a target whose boundary is not declared).
func TemplateData(t *Target, b *Boundary) map[string]any {
	bd := map[string]any{"Name": t.Boundary, "Cloud": ""}
	if b != nil {
		bd["Cloud"] = b.Cloud
		for k, v := range b.Settings {
			bd[strings.ToUpper(k[:1])+k[1:]] = v
		}
	}
	return map[string]any{
		"Target":   map[string]any{"Name": t.Name, "Boundary": t.Boundary, "Region": t.Region, "Labels": t.Labels},
		"Boundary": bd,
	}
}

// Render executes one value's template text over data: plain text, never escaped for HTML or a
// shell (a value reaches Terraform byte for byte), and an unknown key is an error.
func Render(name, text string, data any) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	tmpl, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	if err := tmpl.Execute(&out, data); err != nil {
		return "", err
	}
	return out.String(), nil
}

// ConventionBackend renders boundary b's state backend convention (boundaries.B.backend, whose
// string values are templates over .Target and .Boundary) for target t; nil when b has none.
func ConventionBackend(b *Boundary, t *Target) (*Backend, error) {
	if b == nil || b.Backend == nil {
		return nil, nil
	}
	data := TemplateData(t, b)
	data["Component"] = "{{ .Component }}" // a stack's component, rendered per component (ComponentBackend)
	out := &Backend{Type: b.Backend.Type, Config: map[string]any{}}
	for k, v := range b.Backend.Config {
		s, ok := v.(string)
		if !ok {
			out.Config[k] = v
			continue
		}
		text, err := Render(k, s, data)
		if err != nil {
			return nil, fmt.Errorf("boundaries.%s.backend.config.%s: %w", b.Name, k, err)
		}
		out.Config[k] = text
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

// Defaults are the fleet-wide settings of runs: timeouts, retries, the breaker, lease and limits.
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
	// ApplyMode is how targets are applied: ApplyAuto (one `apply` per target unless a policy
	// needs the plan first), ApplyPlanFirst (always `plan -out`, then `apply` of that plan) or
	// ApplyDirect (one `apply`; a policy that needs the plan first is a configuration error).
	ApplyMode string
}

// Apply modes (defaults.applyMode, start --apply-mode).
const (
	ApplyAuto      = "auto"
	ApplyPlanFirst = "plan-first"
	ApplyDirect    = "direct"
)

// CheckApplyMode says what is wrong with an apply mode, or nil.
func CheckApplyMode(mode string) error {
	switch mode {
	case ApplyAuto, ApplyPlanFirst, ApplyDirect:
		return nil
	}
	return fmt.Errorf("apply mode %q: want auto, plan-first or direct", mode)
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
	Cloud          string // a cloud of the catalog: azure | aws | gcp | local
	MaxParallel    int
	ProviderMirror string // a directory (filesystem mirror) or an https URL (network mirror)
	// Settings holds every cloud's own keys (azure's environment, aws's partition, gcp's
	// universeDomain): this boundary's value or its cloud's default, "" for another cloud's keys.
	Settings   map[string]string
	Endpoints  map[string]string // azure custom cloud endpoints; aws/gcp endpoint overrides
	Regions    []string          // the regions targets may use (custom clouds; narrows the known list otherwise)
	Identity   map[string]string // cloud-specific identity keys; names of secret variables, never secrets
	AssumeRole []AssumeRole      // aws: a role chain, assumed in order
	PassEnv    []string          // extra variables of rollout's environment this boundary's runs see
	Approvers  []string          // a ring with targets here needs approval, by one of these (the Verifiers' names)
	Verifiers  []rings.Verifier  // how each approver's approval is proven
	Freeze     *Freeze           // the boundary's freeze calendar
	Backend    *Backend          // the state backend convention for new targets (rollout env add); values are templates over .Target
	Telemetry  *Telemetry        // the boundary's own trace collector (nil: the fleet's, unless sovereign)
	RateLimit  float64           // Terraform runs started per second in this boundary; 0: no limit
	Line       int               // where it is declared in rollout.yaml
	Lines      map[string]int    // line of each key, e.g. "identity.roleArn"
}

// AssumeRole is one step of an AWS role chain.
type AssumeRole struct {
	RoleArn     string
	ExternalID  string
	SessionName string
}

// Clouds describes each cloud a boundary may name: the keys only it has and its identity keys.
// The clouds catalog gives it to Load; config names no cloud.
type Clouds map[string]CloudKeys

// CloudKeys are one cloud's configuration keys.
type CloudKeys struct {
	Settings map[string]string // boundary keys of this cloud, with their defaults ("": none)
	Identity []string          // identity keys ("assumeRole": a role chain); none: the cloud has no identity
}

// settingKeys are every cloud's own boundary keys, sorted.
func (cs Clouds) settingKeys() []string {
	var out []string
	for _, c := range cs {
		for k := range c.Settings {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// owner is the cloud a setting key belongs to.
func (cs Clouds) owner(key string) string {
	for _, name := range slices.Sorted(maps.Keys(cs)) {
		if _, ok := cs[name].Settings[key]; ok {
			return name
		}
	}
	return ""
}

func (cs Clouds) names() string { return strings.Join(slices.Sorted(maps.Keys(cs)), ", ") }

// Gate is a named health check: one provider plus the policy that turns measurements into a verdict.
// Rollback scopes.
const (
	RollbackTarget = "target"
	RollbackRing   = "ring"
	RollbackRun    = "run"
)

// Ring is one ring of the promotion order: which targets, how many at once, its gates and policies.
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

// Selector picks a ring's targets by name, boundary or labels.
type Selector struct {
	Names      []string
	Labels     map[string]string
	Boundaries []string
}

// Approval is who must approve a ring before it starts, and how many of them.
type Approval struct {
	Required bool
	// UnlessPlans waives the approval when every target's plan keeps within these limits.
	UnlessPlans *rings.PlanLimits
	Approvers   []string
	Quorum      int
	Verifiers   []rings.Verifier // from the boundaries the ring enters: an approval must be proven
}

// Target is one place a release is applied: a Terraform state in a boundary and region.
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

// Backend is a target's Terraform state backend: its type and configuration.
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

// Load reads the fleet whose rollout.yaml is at path (a file, or a directory holding rollout.yaml);
// clouds are the clouds its boundaries may name (the clouds catalog's Keys).
func Load(path string, clouds Clouds) (*Config, error) {
	c, errs, err := LoadAll(path, clouds)
	switch {
	case err != nil:
		return nil, err
	case len(errs) > 0:
		return nil, errs
	}
	return c, nil
}

// LoadAll is Load that goes on past problems: the fleet as far as it could be read, with every
// problem of its files found in one pass (validate reports them all at once). err is for a
// configuration that could not be read at all.
func LoadAll(path string, clouds Clouds) (*Config, Errors, error) {
	c, err := load(path, clouds, true)
	var errs Errors
	if errors.As(err, &errs) {
		return c, errs, nil
	}
	return c, nil, err
}

// LoadMain reads rollout.yaml alone: its own keys, checked as Load checks them, but no
// environment files and no checks across files, so Targets is empty. Commands that only read the
// journal (status, history) use it: they need the fleet's root and state, should not parse
// 10,000 targets to print a kept report, and must work while a target file is half edited.
func LoadMain(path string, clouds Clouds) (*Config, error) {
	c, err := load(path, clouds, false)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func load(path string, clouds Clouds, whole bool) (*Config, error) {
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
	c := &Config{Root: filepath.Dir(abs), File: abs, Clouds: clouds}
	var errs Errors
	c.parseMain(data, &errs)
	if !whole {
		if len(errs) > 0 {
			return c, errs
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
	c.validate(&errs) // also past problems: every one is reported at once
	if len(errs) > 0 {
		return c, errs
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

// Gate providers that later versions add; naming them gives a clear error rather than "unknown key".

func parsePrometheus(w walker, path string, n *yaml.Node) *PrometheusCheck {
	pf := w.fields(n, path+".prometheus", "address", "query", "range", "step", "bearerTokenEnv", "usernameEnv", "passwordEnv", "allowHosts")
	c := &PrometheusCheck{AllowHosts: w.strings(pf["allowHosts"], path+".prometheus.allowHosts"), Address: w.str(pf["address"], path+".prometheus.address"), Query: w.str(pf["query"], path+".prometheus.query"),
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
	ap := w.fields(f["approval"], path+".approval", "required", "approvers", "quorum", "unlessPlans")
	r.Approval = Approval{
		Required:  w.boolean(ap["required"], path+".approval.required"),
		Approvers: w.strings(ap["approvers"], path+".approval.approvers"),
		Quorum:    w.integer(ap["quorum"], path+".approval.quorum", 1),
	}
	if r.Approval.Quorum == 0 {
		r.Approval.Quorum = 1
	}
	if n := ap["unlessPlans"]; n != nil {
		up := w.fields(n, path+".approval.unlessPlans", "destroys", "replaces", "changes")
		limit := func(k string) *int {
			if up[k] == nil {
				return nil
			}
			v := w.integer(up[k], path+".approval.unlessPlans."+k, 0)
			return &v
		}
		r.Approval.UnlessPlans = &rings.PlanLimits{Destroys: limit("destroys"), Replaces: limit("replaces"), Changes: limit("changes")}
		if len(up) == 0 {
			w.fail(n, path+".approval.unlessPlans", "names no limit: give destroys, replaces and/or changes (e.g. {destroys: 0, replaces: 0})")
		}
		if !r.Approval.Required {
			w.fail(n, path+".approval.unlessPlans", "waives a required approval: it needs approval.required: true")
		}
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
	byName, unique := c.validateTargets(errs, main)
	owner := c.selectRings(main, byName, unique)
	for _, t := range unique {
		if _, ok := owner[t.Name]; !ok {
			*errs = append(*errs, &FieldError{File: t.File, Line: t.Line, Key: "targets[" + t.Name + "]",
				Msg: fmt.Sprintf("target %q is in no ring: add it to a ring's targets in %s", t.Name, main.file)})
		}
	}
	c.validateGates(main)
	c.validateStack(errs)
	if len(c.Targets) == 0 {
		main.fail(nil, "", "the fleet has no targets: declare them in %s", strings.Join(c.Environments, ", ")+"/**/*.yaml")
	}
}

// validateTargets refuses targets declared twice or of unknown boundaries, and gives a target
// without a backend of its own its boundary's convention.
func (c *Config) validateTargets(errs *Errors, main walker) (map[string]*Target, []*Target) {
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
	return byName, unique
}

// selectRings resolves each ring's targets (every target in exactly one ring) and checks what a
// ring names: gates, boundaries, targets.
func (c *Config) selectRings(main walker, byName map[string]*Target, unique []*Target) map[string]string {
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
		if len(r.Targets) == 0 { // opened for targets still to come (rollout env add): runs pass it by
			c.Notes = append(c.Notes, fmt.Sprintf("%s:%d: %s.targets: ring %q selects no target yet; runs pass it by until rollout env add puts one there",
				main.file, main.lineOf(path+".targets"), path, r.Name))
		}
		c.tightenApproval(r, path, main)
	}
	return owner
}

// validateGates checks what gates name across the configuration.
func (c *Config) validateGates(main walker) {
	for _, name := range slices.Sorted(maps.Keys(c.Release.Components)) {
		for _, g := range c.Release.Components[name].Gates {
			if c.Gates[g] == nil {
				main.fail(nil, "release.components."+name+".gates", "unknown gate %q (declared: %s)", g, keys(c.Gates))
			}
		}
	}
	for name, g := range c.Gates {
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
}

func (s Selector) matches(t *Target) bool {
	if len(s.Names) > 0 && !slices.Contains(s.Names, t.Name) {
		return false
	}
	if len(s.Boundaries) > 0 && !slices.Contains(s.Boundaries, t.Boundary) {
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
			if slices.Contains(b.Approvers, a) {
				both = append(both, a)
			}
		}
		if len(both) == 0 {
			main.fail(nil, path+".approval.approvers", "nobody may approve ring %q: none of its approvers is among boundary %s's (%s)", r.Name, b.Name, strings.Join(b.Approvers, ", "))
		}
		r.Approval.Approvers = both
	}
	for name := range seen {
		for _, v := range c.Boundaries[name].Verifiers {
			if slices.Contains(r.Approval.Approvers, v.Name) {
				r.Approval.Verifiers = append(r.Approval.Verifiers, v)
			}
		}
	}
	if r.Approval.Quorum > len(r.Approval.Approvers) && len(r.Approval.Approvers) > 0 {
		main.fail(nil, path+".approval.quorum", "(%d) is more than the %d approvers allowed for ring %q", r.Approval.Quorum, len(r.Approval.Approvers), r.Name)
	}
}

// Problem is an error at key of rollout.yaml, on the line of key or of its nearest enclosing key
// (for checks made outside this package: clouds, gates).
func (c *Config) Problem(key, format string, args ...any) *FieldError {
	w := walker{file: c.rel(c.File), lines: c.lines}
	return &FieldError{File: w.file, Line: w.lineOf(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}
