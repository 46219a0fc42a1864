package provision

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-exec/tfexec"
	tfjson "github.com/hashicorp/terraform-json"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Terraform provisions a fleet's targets with one Terraform-compatible binary.
type Terraform struct {
	Bin      string         // terraform or tofu
	Config   *config.Config // targets, release variables, defaults
	StateDir string         // the fleet's .rollout directory
	// Vars returns a recorded release's variables (release-wide, before target variables).
	Vars func(ctx context.Context, release string) (map[string]any, error)
	// Bundle returns a release's snapshot bundle kept in the journal, for a machine that does not
	// have the snapshot (a resume, a rollback or an expansion on another agent). May be nil.
	Bundle func(ctx context.Context, digest string) ([]byte, error)
	// Clouds gives each target's Terraform run its boundary's environment and nothing else. Nil:
	// the base allow-list of clouds.BaseEnv only (tests of local targets).
	Clouds *clouds.Manager
	// InterruptWait is how long an interrupted Terraform command may take to stop after SIGINT
	// before it is killed (0: 10s).
	InterruptWait time.Duration
	// Fence is the fencing token of the fleet lease this process holds (nil: none), and
	// TargetEvents a target's journaled events across runs, oldest first: what proves that a
	// state lock in a remote backend is a dead holder's of this fleet (see statelock.go).
	Fence func() int64
	// OnCommand is told of each Terraform command run for a target, when it ran and how it ended
	// (nil: nobody listens). It is called from the targets' workers, concurrently.
	OnCommand    func(target, command string, start, end time.Time, err error)
	TargetEvents func(ctx context.Context, target string) ([]rings.Event, error)

	mu       sync.Mutex
	reaped   map[string]bool           // targets whose leftovers of a dead process were reaped by this one
	resolved map[string]*resolution    // by snapshot digest and provider mirror
	secrets  map[string][]string       // by target: the secret values its last plan ran with
	unitVars map[string]map[string]any // by unit key: a stack component's rendered variables
	stacks   sync.Map                  // snapshot digest -> *Stack (nil: one root module)
	modules  sync.Map                  // snapshot digest -> *ModuleInfo
	shimOnce sync.Once
	shimPath string
	cliOnce  sync.Once
	cliPath  string
	cliErr   error

	versionOnce sync.Once
	versionOut  []byte
	versionErr  error
}

var (
	_ rings.Provisioner  = (*Terraform)(nil)
	_ rings.DriftChecker = (*Terraform)(nil)
)

// Review is the plan review a run's applies are held to.
type Review struct {
	Release      string            // the reviewed release: digests hold for its applies only
	Digests      map[string]string // by target
	Protect      []string          // resource types
	AllowDestroy bool
}

type resolution struct {
	once sync.Once
	dir  string // holds .terraform/providers, .terraform/modules and .terraform.lock.hcl
	err  error
}

// FindBinary picks the Terraform-compatible binary: explicit, else TF_BIN, else tofu or terraform on PATH.
func FindBinary(explicit string) (string, error) {
	for _, c := range []string{explicit, os.Getenv("TF_BIN")} {
		if c != "" {
			p, err := exec.LookPath(c)
			if err != nil {
				return "", fmt.Errorf("terraform binary %q: %w", c, err)
			}
			return p, nil
		}
	}
	for _, name := range []string{"tofu", "terraform"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no terraform or tofu binary found (hint: `make tools` builds OpenTofu into .tools/; point TF_BIN or --tf-bin at a binary)")
}

// baseEnv is the environment of Terraform work that belongs to no boundary (resolving a release's
// providers): an allow-list of rollout's own, never its cloud credentials.
func (p *Terraform) baseEnv() map[string]string {
	cfg := p.Config
	if cfg == nil {
		cfg = &config.Config{}
	}
	return clouds.BaseEnv(cfg, os.LookupEnv)
}

// targetEnv is the environment of one target's Terraform run: its boundary's variables and none
// of another's (see package clouds), with the secrets in it for redaction.
func (p *Terraform) targetEnv(ctx context.Context, target string) (map[string]string, []string, error) {
	if p.Clouds == nil {
		return p.baseEnv(), nil, nil
	}
	e, err := p.Clouds.Env(ctx, baseTarget(target))
	if err != nil {
		return nil, nil, err
	}
	return e.Vars, e.Secrets, nil
}

func (p *Terraform) newTF(ctx context.Context, dir string, log io.Writer, base map[string]string, extra map[string]string) (*tfexec.Terraform, error) {
	tf, err := tfexec.NewTerraform(dir, p.execPath())
	if err != nil {
		return nil, err
	}
	// An interrupted command gets SIGINT; Terraform then waits for running provisioners, which
	// may take as long as they like: after this, it is killed (what it leaves is reaped next time).
	tf.SetWaitDelay(p.interruptWait())
	env := maps.Clone(base)
	maps.Copy(env, extra)
	if err := tf.SetEnv(env); err != nil {
		return nil, err
	}
	if log != nil {
		tf.SetStdout(log)
		tf.SetStderr(log)
	}
	return tf, nil
}

func (p *Terraform) timeout() time.Duration {
	if p.Config != nil && p.Config.Defaults.TerraformTimeout > 0 {
		return p.Config.Defaults.TerraformTimeout.D()
	}
	return time.Hour
}

func (p *Terraform) interruptWait() time.Duration {
	if p.InterruptWait > 0 {
		return p.InterruptWait
	}
	return 10 * time.Second
}

// lockTimeout is how long plan and apply wait for a state lock held by someone else (a person
// running terraform by hand, a slow backend releasing a lock) before the target fails.
func (p *Terraform) lockTimeout() string {
	if p.Config != nil {
		return p.Config.Defaults.LockTimeout.D().String()
	}
	return "5m0s"
}

// lockWait is lockTimeout as a duration.
func (p *Terraform) lockWait() time.Duration {
	if p.Config != nil {
		return p.Config.Defaults.LockTimeout.D()
	}
	return 5 * time.Minute
}

// WorkDir is a target's working directory.
func (p *Terraform) WorkDir(target string) string { return filepath.Join(p.StateDir, "work", target) }

// targetCLIConfig is the CLI configuration every per-target command runs with: the user's own
// (credentials for registries and remote backends stay), less plugin_cache_dir, because targets
// install providers with -plugin-dir from the snapshot's resolution and must never write to a
// shared cache.
func (p *Terraform) targetCLIConfig() (string, error) {
	p.cliOnce.Do(func() {
		src := os.Getenv("TF_CLI_CONFIG_FILE")
		if src == "" {
			home, _ := os.UserHomeDir()
			for _, name := range []string{".tofurc", ".terraformrc"} {
				if _, err := os.Stat(filepath.Join(home, name)); err == nil && home != "" {
					src = filepath.Join(home, name)
					break
				}
			}
		}
		var kept []string
		if src != "" {
			b, err := os.ReadFile(src)
			if errors.Is(err, fs.ErrNotExist) {
				// Terraform and OpenTofu take a CLI configuration that does not exist as none.
				src, b, err = "", nil, nil
			}
			if err != nil {
				p.cliErr = fmt.Errorf("read CLI configuration %s: %w", src, err)
				return
			}
			for _, line := range strings.Split(string(b), "\n") {
				if k, _, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.HasPrefix(strings.TrimSpace(k), "plugin_cache") {
					continue
				}
				kept = append(kept, line)
			}
		}
		p.cliPath = filepath.Join(p.StateDir, "target.tfrc")
		from := src
		if from == "" {
			from = "no CLI configuration"
		}
		text := "# Written by rollout: " + from + ", less plugin_cache_dir.\n" + strings.Join(kept, "\n")
		if err := os.MkdirAll(p.StateDir, 0o700); err != nil {
			p.cliErr = err
			return
		}
		p.cliErr = os.WriteFile(p.cliPath, []byte(text), 0o600)
	})
	return p.cliPath, p.cliErr
}

// prepare points the target's working directory at the release snapshot and initialises it,
// unless it was initialised for the same snapshot, backend and binary already. It returns the one
// terraform-exec handle that the target's commands of this operation share (so that its version
// check runs once).
func (p *Terraform) prepare(ctx context.Context, t *config.Target, rel rings.ReleaseRef, env map[string]string) (*tfexec.Terraform, string, error) {
	res, err := p.resolve(ctx, rel.ModuleDigest(), p.Mirror(t.Boundary))
	if err != nil {
		return nil, "", err
	}
	rc, err := p.targetCLIConfig()
	if err != nil {
		return nil, "", err
	}
	dir := p.WorkDir(t.Name)
	if err := os.MkdirAll(procDir(dir), 0o700); err != nil {
		return nil, "", err
	}
	p.reapOnce(ctx, dir, t.Name)
	tf, err := p.newTF(ctx, dir, nil, env, p.targetExtraEnv(dir, rc))
	if err != nil {
		return nil, "", err
	}
	backendType, backendArgs := p.backend(t)
	stampText := strings.Join(append([]string{rel.ModuleDigest(), p.Bin, res, backendType}, backendArgs...), "\n")
	stampFile := filepath.Join(dir, ".rollout-init")
	if old, err := os.ReadFile(stampFile); err == nil && string(old) == stampText {
		return tf, dir, nil
	}
	_ = os.Remove(stampFile)
	if err := linkTree(dir, SnapshotDir(p.StateDir, rel.ModuleDigest())); err != nil {
		return nil, "", fmt.Errorf("prepare %s: %w", dir, err)
	}
	lock, err := os.ReadFile(filepath.Join(res, ".terraform.lock.hcl"))
	if err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ".terraform.lock.hcl"), lock, 0o600); err != nil {
		return nil, "", err
	}
	backendTF := fmt.Sprintf("# Written by rollout: this target's state backend.\nterraform {\n  backend %q {}\n}\n", backendType)
	if err := os.WriteFile(filepath.Join(dir, "zz_rollout_backend_override.tf"), []byte(backendTF), 0o600); err != nil {
		return nil, "", err
	}
	// Modules were installed once for the snapshot; copy their manifest and trees.
	_ = os.RemoveAll(filepath.Join(dir, ".terraform", "modules"))
	if _, err := os.Stat(filepath.Join(res, ".terraform", "modules")); err == nil {
		if err := os.CopyFS(filepath.Join(dir, ".terraform", "modules"), os.DirFS(filepath.Join(res, ".terraform", "modules"))); err != nil {
			return nil, "", fmt.Errorf("prepare %s: copy modules: %w", dir, err)
		}
	}
	opts := []tfexec.InitOption{tfexec.PluginDir(filepath.Join(res, ".terraform", "providers")), tfexec.Get(false), tfexec.Reconfigure(true)}
	for _, a := range backendArgs {
		opts = append(opts, tfexec.BackendConfig(a))
	}
	ictx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	if err := p.command(t.Name, "init", func() error { return tf.Init(ictx, opts...) }); err != nil {
		return nil, "", fmt.Errorf("init target %s: %w", t.Name, err)
	}
	return tf, dir, os.WriteFile(stampFile, []byte(stampText), 0o600)
}

// CheckEnvironment checks, before anything is journaled, what every Terraform command of this
// process needs from the machine: the state directory can be written, the binary answers
// `version -json`, and the CLI configuration can be read (one that does not exist is none, as
// Terraform and OpenTofu take it). A failure here is an error of the environment, never of a
// release.
func (p *Terraform) CheckEnvironment(ctx context.Context) error {
	if err := os.MkdirAll(p.StateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	probe, err := os.CreateTemp(p.StateDir, ".probe-*")
	if err != nil {
		return fmt.Errorf("state directory %s cannot be written: %w", p.StateDir, err)
	}
	probe.Close()
	_ = os.Remove(probe.Name())
	if _, err := p.version(); err != nil {
		return fmt.Errorf("terraform binary: %w (hint: --tf-bin, ROLLOUT_TF_BIN or TF_BIN names it; make tools builds OpenTofu)", err)
	}
	if _, err := p.targetCLIConfig(); err != nil {
		return err
	}
	return ctx.Err()
}

// reapOnce kills, before this process first runs Terraform for a target, what a dead process of
// this tool left running of its recorded commands there (see reap.go), and journals it.
func (p *Terraform) reapOnce(ctx context.Context, dir, target string) {
	p.mu.Lock()
	done := p.reaped[target]
	if p.reaped == nil {
		p.reaped = map[string]bool{}
	}
	p.reaped[target] = true
	p.mu.Unlock()
	if done {
		return
	}
	if pids := reapOrphans(dir); len(pids) > 0 {
		rings.Note(ctx, rings.Event{Type: rings.TargetOrphansKilled, Message: fmt.Sprintf("killed %d process(es) that a dead run's Terraform command left in %s: %v", len(pids), dir, pids)})
	}
}

// targetExtraEnv is what every per-target Terraform command gets beyond its boundary's
// environment: the CLI configuration, and where the shim records the command.
func (p *Terraform) targetExtraEnv(dir, rc string) map[string]string {
	return map[string]string{"TF_CLI_CONFIG_FILE": rc, "ROLLOUT_PROC_DIR": procDir(dir)}
}

// backend is the target's state backend: its own, or local state under .rollout/tfstate/.
func (p *Terraform) backend(t *config.Target) (string, []string) {
	if t.Backend == nil {
		return "local", []string{"path=" + filepath.Join(p.StateDir, "tfstate", t.Name+".tfstate")}
	}
	keys := make([]string, 0, len(t.Backend.Config))
	for k := range t.Backend.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]string, 0, len(keys))
	for _, k := range keys {
		args = append(args, fmt.Sprintf("%s=%v", k, t.Backend.Config[k]))
	}
	return t.Backend.Type, args
}

// target is the named target; for a unit key (TARGET@COMPONENT), the target as the component's
// working directory sees it: named by the key, with the component's own state backend.
func (p *Terraform) target(name string) (*config.Target, error) {
	base, component, unit := strings.Cut(name, "@")
	t := p.Config.Target(base)
	if t == nil {
		return nil, fmt.Errorf("target %s is not in the configuration any more (hint: restore it to resume or roll back)", base)
	}
	if !unit {
		return t, nil
	}
	be, err := config.ComponentBackend(t.Backend, component)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", base, err)
	}
	d := *t
	d.Name, d.Backend = name, be
	return &d, nil
}

// Plan plans rel on target into the target's plan file and summarises it.
func (p *Terraform) Plan(ctx context.Context, target string, rel rings.ReleaseRef) (rings.PlanSummary, bool, error) {
	defer clearRecords(ctx, p.WorkDir(target))
	_, _, sum, changes, err := p.plan(ctx, target, rel, false)
	return sum, changes, err
}

// Reviewed is a target's plan as a person reviews it: the summary, each resource change with its
// attributes before and after (secrets masked), and the digest a later run is held to.
type Reviewed struct {
	Summary rings.PlanSummary
	Changes bool
	Digest  string
	Detail  []ResourceChange
}

// PlanReview plans rel on target as Plan does and reads the plan back (`show -json`) for review.
func (p *Terraform) PlanReview(ctx context.Context, target string, rel rings.ReleaseRef) (Reviewed, error) {
	defer clearRecords(ctx, p.WorkDir(target))
	tf, dir, sum, changes, err := p.plan(ctx, target, rel, false)
	r := Reviewed{Summary: sum, Changes: changes}
	if err != nil {
		return r, err
	}
	var plan *tfjson.Plan
	err = p.command(target, "show", func() (err error) {
		plan, err = tf.ShowPlanFile(ctx, filepath.Join(dir, "release.tfplan"))
		return err
	})
	if err != nil {
		return r, fmt.Errorf("plan target %s: read the plan: %w", target, err)
	}
	r.Digest, err = digestOf(plan)
	r.Detail = PlanChanges(plan)
	return r, err
}

// Drift implements rings.DriftChecker: a refresh-only plan of rel (the release the target runs)
// that says whether the real infrastructure differs from the target's state, and where.
func (p *Terraform) Drift(ctx context.Context, target string, rel rings.ReleaseRef) (rings.DriftReport, error) {
	// Not the detailed exit code: Terraform 1.11 says "changes" (2) for every refresh-only plan
	// that is applyable, which is every one; the resources it reports drifted are what counts.
	if st, err := p.StackOf(ctx, rel.ModuleDigest()); err != nil || st != nil {
		if err != nil {
			return rings.DriftReport{}, err
		}
		return p.stackDrift(ctx, target, rel)
	}
	return p.unitDrift(ctx, target, rel)
}

// unitDrift is one working directory's refresh-only plan.
func (p *Terraform) unitDrift(ctx context.Context, target string, rel rings.ReleaseRef) (rings.DriftReport, error) {
	defer clearRecords(ctx, p.WorkDir(target))
	sum, err := unlocking(ctx, p, target, "drift check", func() (rings.PlanSummary, error) {
		_, _, sum, _, err := p.plan(ctx, target, rel, true)
		return sum, err
	})
	if err != nil {
		return rings.DriftReport{}, classified(err)
	}
	return rings.DriftReport{Drifted: len(sum.Drifted) > 0, Resources: sum.Drifted}, nil
}

// workspace is a target's working directory made ready for a release: initialised, with the
// release's variables written, and the secret values its environment holds.
type workspace struct {
	tf      *tfexec.Terraform
	dir     string
	varFile string
	secrets []string
}

// setUp prepares target's working directory for rel (what plan and direct apply share); what
// says what is being done, for errors.
func (p *Terraform) setUp(ctx context.Context, target string, rel rings.ReleaseRef, what string) (workspace, error) {
	t, err := p.target(target)
	if err != nil {
		return workspace{}, err
	}
	env, secrets, err := p.targetEnv(ctx, target)
	if err != nil {
		return workspace{}, fmt.Errorf("%s target %s: %w", what, target, err)
	}
	tf, dir, err := p.prepare(ctx, t, rel, env)
	if err != nil {
		return workspace{}, redactErr(err, secrets)
	}
	vars, err := p.varsOf(ctx, t, rel)
	if err != nil {
		return workspace{}, fmt.Errorf("%s target %s: %w", what, target, err)
	}
	varJSON, _ := json.MarshalIndent(vars, "", "  ")
	varFile := filepath.Join(dir, "rollout.tfvars.json")
	if err := os.WriteFile(varFile, varJSON, 0o600); err != nil {
		return workspace{}, err
	}
	p.mu.Lock()
	if p.secrets == nil {
		p.secrets = map[string][]string{}
	}
	p.secrets[target] = secrets
	p.mu.Unlock()
	return workspace{tf: tf, dir: dir, varFile: varFile, secrets: secrets}, nil
}

// varsOf are the variables of a target's working directory: a stack component's rendered ones,
// else the release's rendered for the target.
func (p *Terraform) varsOf(ctx context.Context, t *config.Target, rel rings.ReleaseRef) (map[string]any, error) {
	if v, ok := p.unitVarsOf(t.Name); ok {
		return v, nil
	}
	relVars, err := p.Vars(ctx, rel.Name)
	if err != nil {
		return nil, err
	}
	return VarsFor(rel, relVars, t, p.Config.Boundaries[t.Boundary])
}

func (p *Terraform) plan(ctx context.Context, target string, rel rings.ReleaseRef, refreshOnly bool) (*tfexec.Terraform, string, rings.PlanSummary, bool, error) {
	var none rings.PlanSummary
	w, err := p.setUp(ctx, target, rel, "plan")
	if err != nil {
		return nil, "", none, false, err
	}
	var stream bytes.Buffer
	pctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	out := "release.tfplan"
	if refreshOnly {
		out = "drift.tfplan"
	}
	op := "plan"
	if refreshOnly {
		op = "drift check"
	}
	p.noteLockHolder(ctx, target, op)
	var changes bool
	err = p.command(target, "plan", func() (err error) {
		changes, err = w.tf.PlanJSON(pctx, &stream, tfexec.Out(filepath.Join(w.dir, out)), tfexec.VarFile(w.varFile), tfexec.LockTimeout(p.lockTimeout()), tfexec.RefreshOnly(refreshOnly))
		return err
	})
	r := readStream(stream.Bytes())
	if err != nil {
		if r.diags != "" {
			return nil, "", r.summary, false, redactErr(fmt.Errorf("plan target %s: %s", target, r.diags), w.secrets)
		}
		return nil, "", r.summary, false, redactErr(fmt.Errorf("plan target %s: %w", target, err), w.secrets)
	}
	return w.tf, w.dir, r.summary, changes, nil
}

// Apply implements rings.Provisioner with no run's policy: plan first, nothing reviewed (see
// ForRun for a run's own).
func (p *Terraform) Apply(ctx context.Context, target string, rel rings.ReleaseRef, planned func(rings.PlanSummary)) (rings.ApplyResult, error) {
	return p.applyWith(ctx, RunPolicy{}, target, rel, planned)
}

// RunPolicy is how one run applies its targets, fixed in its plan: its apply mode
// (config.ApplyAuto, ApplyPlanFirst or ApplyDirect; "": plan-first, as runs of earlier versions
// did; see planFirst) and what its applies must match (nil: nothing): per target, the digest of
// the plan a person reviewed for Review.Release; and Protect, resource types no plan may destroy
// or replace unless AllowDestroy.
type RunPolicy struct {
	ApplyMode string
	Review    *Review
}

// RunProvisioner is the fleet's Terraform as one run uses it: its own policy, the fleet's
// caches. Runs of one process (a worker's cached runs) each have theirs; none writes another's.
type RunProvisioner struct {
	*Terraform
	Policy RunPolicy
}

var _ rings.DriftChecker = (*RunProvisioner)(nil)

// ForRun is the provisioner of a run with policy pol.
func (p *Terraform) ForRun(pol RunPolicy) *RunProvisioner {
	return &RunProvisioner{Terraform: p, Policy: pol}
}

// Apply implements rings.Provisioner: plan, then apply that plan file (skipped when it changes
// nothing), or one direct apply, as the run's policy says. The outputs come from the apply's own
// JSON stream; only a skipped apply reads them with a separate `output`.
func (r *RunProvisioner) Apply(ctx context.Context, target string, rel rings.ReleaseRef, planned func(rings.PlanSummary)) (rings.ApplyResult, error) {
	return r.applyWith(ctx, r.Policy, target, rel, planned)
}

func (p *Terraform) applyWith(ctx context.Context, pol RunPolicy, target string, rel rings.ReleaseRef, planned func(rings.PlanSummary)) (rings.ApplyResult, error) {
	st, err := p.StackOf(ctx, rel.ModuleDigest())
	if err != nil {
		return rings.ApplyResult{}, untouched(err)
	}
	if st != nil {
		return p.applyStack(ctx, pol, target, rel, st, planned)
	}
	return p.applyUnit(ctx, pol, target, rel, planned)
}

// applyUnit applies one working directory: a target's, or a stack component's on a target.
func (p *Terraform) applyUnit(ctx context.Context, pol RunPolicy, target string, rel rings.ReleaseRef, planned func(rings.PlanSummary)) (rings.ApplyResult, error) {
	defer clearRecords(ctx, p.WorkDir(target))
	res, err := unlocking(ctx, p, target, "apply", func() (rings.ApplyResult, error) { return p.apply(ctx, pol, target, rel, planned) })
	if err != nil && ctx.Err() == nil {
		err = classified(err)
	}
	return res, err
}

func (p *Terraform) apply(ctx context.Context, pol RunPolicy, target string, rel rings.ReleaseRef, planned func(rings.PlanSummary)) (rings.ApplyResult, error) {
	if pol.planFirst(target, rel) {
		res, err := p.applyPlanFirst(ctx, pol.Review, target, rel, planned)
		res.Mode = ModePlanFirst
		return res, err
	}
	res, err := p.applyDirect(ctx, target, rel, planned)
	res.Mode = ModeDirect
	return res, err
}

// applyPlanFirst plans into the target's plan file, holds the plan to the run's review, and
// applies that plan file (skipped when it changes nothing).
func (p *Terraform) applyPlanFirst(ctx context.Context, rv *Review, target string, rel rings.ReleaseRef, planned func(rings.PlanSummary)) (rings.ApplyResult, error) {
	tf, dir, sum, changes, err := p.plan(ctx, target, rel, false)
	if err != nil {
		return rings.ApplyResult{}, err
	}
	if planned != nil {
		planned(sum)
	}
	if err := rv.check(ctx, tf, dir, target, rel, sum); err != nil {
		return rings.ApplyResult{Summary: sum}, err
	}
	if !changes {
		all, public, err := p.outputs(ctx, tf)
		if err != nil {
			return rings.ApplyResult{Summary: sum}, fmt.Errorf("outputs of target %s: %w", target, err)
		}
		return rings.ApplyResult{Summary: sum, Outputs: all, Public: public}, nil
	}
	var stream bytes.Buffer
	actx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	p.noteLockHolder(ctx, target, "apply")
	err = p.command(target, "apply", func() error {
		return tf.ApplyJSON(actx, &stream, tfexec.DirOrPlan(filepath.Join(dir, "release.tfplan")), tfexec.LockTimeout(p.lockTimeout()))
	})
	r := readStream(stream.Bytes())
	if err != nil {
		p.mu.Lock()
		secrets := p.secrets[target]
		p.mu.Unlock()
		if r.diags != "" {
			return rings.ApplyResult{Summary: sum}, redactErr(fmt.Errorf("apply target %s: %s", target, r.diags), secrets)
		}
		return rings.ApplyResult{Summary: sum}, redactErr(fmt.Errorf("apply target %s: %w", target, err), secrets)
	}
	if r.outputs == nil {
		all, public, err := p.outputs(ctx, tf)
		if err != nil {
			return rings.ApplyResult{Summary: sum}, fmt.Errorf("outputs of target %s: %w", target, err)
		}
		return rings.ApplyResult{Summary: sum, Outputs: all, Public: public}, nil
	}
	all, public := splitOutputs(r.outputs)
	return rings.ApplyResult{Summary: sum, Outputs: all, Public: public}, nil
}

// redact keeps the secret values a run's environment held out of an error's text.
func redactErr(err error, secrets []string) error { return clouds.RedactError(err, secrets) }

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

// command runs one Terraform command of a target and tells OnCommand about it.
func (p *Terraform) command(target, name string, run func() error) error {
	start := time.Now()
	err := run()
	if p.OnCommand != nil {
		p.OnCommand(target, name, start, time.Now(), err)
	}
	return err
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
