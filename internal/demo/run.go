package demo

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	rollout "github.com/rollout-dev/rollout"
	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/runs"
)

// Scenario is what a front end gives the demo: where to write the fleet, where to tell the story,
// and how to start a release there (the front end's own start, with its progress and report:
// it returns the exit code).
type Scenario struct {
	Dir   string    // "" for a new temporary directory
	Notes io.Writer // the story, as it happens
	Start func(ctx context.Context, config, release string, vars []string) int
	// Temporal, when set, runs the demo on the engine on Temporal (nil: in-process).
	Temporal *Temporal
}

// Where is where a target ended, against what the demo expects.
type Where struct {
	Target   string `json:"target"`
	Ring     string `json:"ring"`
	Deployed string `json:"deployed"`
	Healthy  bool   `json:"healthy"`
	LKG      string `json:"lastKnownGood"`
	Expected string `json:"expected"`
}

// Outcome is the demo's end: the fleet's folder, where every target ended, and what did not go as
// designed (nothing, when the tool behaved as designed).
type Outcome struct {
	Dir        string   `json:"dir"`
	Targets    []Where  `json:"targets"`
	AsDesigned bool     `json:"asDesigned"`
	Problems   []string `json:"problems"`
}

func WriteFleet(dir string) error {
	return fs.WalkDir(rollout.DemoFleet, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		dst := filepath.Join(dir, p)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := rollout.DemoFleet.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

// Run writes the example fleet, starts the stand-in application, and runs the story: v1
// everywhere (approving the sovereign ring), v2 the same way, and a faulty v3 that the tool rolls
// back by itself in the commercial ring. An error means the demo could not run at all; Outcome
// says whether the tool behaved as designed.
func Run(ctx context.Context, sc Scenario) (*Outcome, error) {
	dir, err := prepare(sc.Dir)
	if err != nil {
		return nil, err
	}
	if sc.Temporal != nil {
		stop, err := sc.Temporal.onTemporal(ctx, sc, dir)
		defer stop()
		if err != nil {
			return nil, err
		}
	}
	deployed := filepath.Join(dir, "deployed")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: App{Dir: deployed}}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(sc.Notes, "demo fleet in %s; stand-in application at %s\n", dir, url)
	vars := []string{"service_url=" + url, "deploy_dir=" + deployed}
	start := func(release string, extra ...string) int {
		all := append(append([]string{}, vars...), extra...)
		fmt.Fprintf(sc.Notes, "\n=== rollout --config %s start --release %s%s\n", dir, release, varFlags(all))
		return sc.Start(ctx, dir, release, all)
	}
	out := &Outcome{Dir: dir}
	expect := func(what string, got, want int) {
		if got != want {
			out.Problems = append(out.Problems, fmt.Sprintf("%s: exit %d, expected %d", what, got, want))
		}
	}
	for _, rel := range []string{"v1", "v2"} {
		code := start(rel)
		if code == runs.ExitError { // the environment, not the tool's behaviour: nothing more can run
			return nil, cannotRun(rel)
		}
		expect("start "+rel, code, runs.ExitWaiting)
		if err := approve(ctx, sc.Notes, dir, rel); err != nil {
			return nil, err
		}
		expect("start "+rel+" after approval", start(rel), runs.ExitOK)
	}
	expect("start v3 (faulty on commercial stamps)", start("v3", "fault_tier=commercial"), runs.ExitGateFailed)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err := out.check(ctx, dir, deployed); err != nil {
		return nil, err
	}
	out.tell(sc.Notes)
	return out, nil
}

// cannotRun is why the demo stops when a start fails before its run (exit 1): most often, on a
// machine without network, Terraform could not get the providers the demo fleet uses.
func cannotRun(release string) error {
	return fmt.Errorf("rollout start --release %s failed before its run started (exit 1; the reason is above), so the demo stops here.\n"+
		"If Terraform could not install the providers (no network): run `make tools`, which builds OpenTofu and a local provider\n"+
		"mirror into .tools/, then `make demo`; or point TF_CLI_CONFIG_FILE at a CLI configuration with a provider mirror", release)
}

// prepare writes the example fleet into dir (a new temporary directory when "").
func prepare(dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "rollout-demo-"); err != nil {
			return "", err
		}
	}
	dir, _ = filepath.Abs(dir)
	if _, err := os.Stat(filepath.Join(dir, ".rollout")); err == nil {
		return "", fmt.Errorf("%s holds an earlier demo's journal: give an empty --dir", dir)
	}
	if err := WriteFleet(dir); err != nil {
		return "", fmt.Errorf("write demo fleet: %w", err)
	}
	return dir, nil
}

// approve approves the sovereign ring of the release's run, as an operator would.
func approve(ctx context.Context, notes io.Writer, dir, release string) error {
	f, err := runs.OpenJournal(ctx, runs.Options{Config: dir, Notes: notes})
	if err != nil {
		return err
	}
	defer f.Close()
	run, found, err := f.Journal().RunForRelease(ctx, release)
	if err != nil {
		return err
	}
	if !found {
		return cannotRun(release)
	}
	fmt.Fprintf(notes, "\n=== rollout approve %s --ring sovereign --as demo-operator\n", run.ID)
	return f.Approve(ctx, run.ID, "sovereign", runs.Act{As: "demo-operator", Reason: "demo"})
}

// expected is where every target should end: v3 on the canary, v2 everywhere else.
var expected = map[string]string{"canary-1": "v3", "commercial-1": "v2", "commercial-2": "v2", "commercial-eu-1": "v2", "sovereign-1": "v2", "sovereign-2": "v2"}

// check reads where every target ended (what the stand-in application serves, and the journal's
// last known good) against what the demo expects.
func (o *Outcome) check(ctx context.Context, dir, deployed string) error {
	f, err := runs.OpenConfig(ctx, runs.Options{Config: dir})
	if err != nil {
		return err
	}
	defer f.Close()
	for _, r := range f.Config().Rings {
		for _, t := range r.Targets {
			d, _ := Read(deployed, t)
			lkg, _ := journal.LastKnownGood(ctx, f.Journal(), t, "", nil)
			name := "-"
			if lkg != nil {
				name = lkg.Name
			}
			o.Targets = append(o.Targets, Where{t, r.Name, d.Version, d.Healthy, name, expected[t]})
			if d.Version != expected[t] || !d.Healthy {
				o.Problems = append(o.Problems, fmt.Sprintf("%s runs %s (healthy %t), expected %s", t, d.Version, d.Healthy, expected[t]))
			}
		}
	}
	o.AsDesigned = len(o.Problems) == 0
	return nil
}

// tell prints where every target ended and what it means.
func (o *Outcome) tell(w io.Writer) {
	fmt.Fprintf(w, "\n=== where every target ended\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RING\tTARGET\tDEPLOYED\tHEALTHY\tLAST KNOWN GOOD\tEXPECTED")
	for _, t := range o.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\n", t.Ring, t.Target, t.Deployed, t.Healthy, t.LKG, t.Expected)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nv3 failed its gate in ring commercial; the ring was rolled back to v2 and sovereign never saw v3.\n")
	fmt.Fprintf(w, "Look around: rollout --config %s status | history | history --target commercial-1\n", o.Dir)
	if o.AsDesigned {
		fmt.Fprintln(w, "demo: the tool behaved as designed")
	}
}

// varFlags spells vars as the --var flags a person would type, quoted for a shell.
func varFlags(vars []string) string {
	var b strings.Builder
	for _, v := range vars {
		b.WriteString(" --var " + shellWord(v))
	}
	return b.String()
}

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
