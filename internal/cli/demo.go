package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	rollout "github.com/rollout-dev/rollout"
	"github.com/rollout-dev/rollout/internal/demo"
	"github.com/rollout-dev/rollout/internal/journal"
)

type demoOptions struct {
	Dir string
}

func newDemoCmd(io IO, g globals) *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use: "demo [--dir DIR]",
		Example: `  rollout demo
  rollout demo --dir /tmp/rollout-demo --output json`,
		Short: "Run the demo: v1 everywhere, v2 ring by ring, then a faulty v3 that is rolled back",
		Long: `Write the example fleet (six stamps, three simulated boundaries, rings canary, commercial and
sovereign) into DIR (default: a new temporary directory), start a stand-in HTTP application whose
health per stamp follows what Terraform deployed there, and run three releases through real
Terraform/OpenTofu:

  v1  deployed everywhere (the sovereign ring waits for an approval, which the demo gives)
  v2  promoted ring by ring the same way
  v3  carries a fault that shows on commercial stamps: its gate fails in the second ring, and the
      tool rolls that ring back to v2 by itself (exit 2); the sovereign ring never sees v3

It exits 0 when the tool behaved as designed, and says what differed otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return demoRun(cmd.Context(), io, g, o) },
	}
	cmd.Flags().StringVar(&o.Dir, "dir", "", "where to write the demo fleet (default: a new temporary directory)")
	return cmd
}

func writeFleet(dir string) error {
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

func demoRun(ctx context.Context, io IO, g globals, o *demoOptions) error {
	dir := o.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "rollout-demo-"); err != nil {
			return err
		}
	}
	dir, _ = filepath.Abs(dir)
	if _, err := os.Stat(filepath.Join(dir, ".rollout")); err == nil {
		return &ExitErr{Code: ExitError, Err: fmt.Errorf("%s holds an earlier demo's journal: give an empty --dir", dir)}
	}
	if err := writeFleet(dir); err != nil {
		return fmt.Errorf("write demo fleet: %w", err)
	}
	deployed := filepath.Join(dir, "deployed")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: demo.App{Dir: deployed}}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(io.Err, "demo fleet in %s; stand-in application at %s\n", dir, url)

	g.v.Set("config", dir)
	vars := []string{"service_url=" + url, "deploy_dir=" + deployed}
	inner := io // each start's own report goes to stderr as text; stdout carries the demo's
	if g.json() {
		inner.Out = ioDiscard{}
	}
	start := func(release string, extra ...string) int {
		all := append(append([]string{}, vars...), extra...)
		fmt.Fprintf(io.Err, "\n=== rollout --config %s start --release %s%s\n", dir, release, varFlags(all))
		err := startRun(ctx, inner, g, &startOptions{Release: release, Wait: true, Vars: all})
		if err != nil {
			var ee *ExitErr
			if !errors.As(err, &ee) || ee.Err != nil {
				fmt.Fprintf(io.Err, "rollout: %v\n", err)
			}
		}
		return exitCode(err)
	}
	approve := func(release string) error {
		f, err := openFleet(ctx, g, false)
		if err != nil {
			return err
		}
		defer f.Close()
		run, _, err := f.store.RunForRelease(ctx, release)
		if err != nil {
			return err
		}
		fmt.Fprintf(io.Err, "\n=== rollout approve %s --ring sovereign --as demo-operator\n", run.ID)
		cmd := newApproveCmd(io, g)
		cmd.SetArgs([]string{run.ID, "--ring", "sovereign", "--as", "demo-operator", "--reason", "demo"})
		return cmd.ExecuteContext(ctx)
	}

	var problems []string
	expect := func(what string, got, want int) {
		if got != want {
			problems = append(problems, fmt.Sprintf("%s: exit %d, expected %d", what, got, want))
		}
	}
	for _, rel := range []string{"v1", "v2"} {
		expect("start "+rel, start(rel), ExitWaiting)
		if err := approve(rel); err != nil {
			return err
		}
		expect("start "+rel+" after approval", start(rel), ExitOK)
	}
	expect("start v3 (faulty on commercial stamps)", start("v3", "fault_tier=commercial"), ExitGateFailed)
	if ctx.Err() != nil {
		return ctx.Err()
	}

	want := map[string]string{"canary-1": "v3", "commercial-1": "v2", "commercial-2": "v2", "commercial-eu-1": "v2", "sovereign-1": "v2", "sovereign-2": "v2"}
	f, err := openFleet(ctx, g, false)
	if err != nil {
		return err
	}
	defer f.Close()
	type where struct {
		Target   string `json:"target"`
		Ring     string `json:"ring"`
		Deployed string `json:"deployed"`
		Healthy  bool   `json:"healthy"`
		LKG      string `json:"lastKnownGood"`
		Expected string `json:"expected"`
	}
	var table []where
	for _, r := range f.cfg.Rings {
		for _, t := range r.Targets {
			d, _ := demo.Read(deployed, t)
			lkg, _ := journal.LastKnownGood(ctx, f.store, t, "")
			table = append(table, where{t, r.Name, d.Version, d.Healthy, relName(lkg), want[t]})
			if d.Version != want[t] || !d.Healthy {
				problems = append(problems, fmt.Sprintf("%s runs %s (healthy %t), expected %s", t, d.Version, d.Healthy, want[t]))
			}
		}
	}
	if g.json() {
		_ = writeJSON(io.Out, map[string]any{"dir": dir, "targets": table, "asDesigned": len(problems) == 0, "problems": problems})
	}
	fmt.Fprintf(io.Err, "\n=== where every target ended\n")
	tw := tabwriter.NewWriter(io.Err, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RING\tTARGET\tDEPLOYED\tHEALTHY\tLAST KNOWN GOOD\tEXPECTED")
	for _, w := range table {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\n", w.Ring, w.Target, w.Deployed, w.Healthy, w.LKG, w.Expected)
	}
	tw.Flush()
	fmt.Fprintf(io.Err, "\nv3 failed its gate in ring commercial; the ring was rolled back to v2 and sovereign never saw v3.\n")
	fmt.Fprintf(io.Err, "Look around: rollout --config %s status | history | history --target commercial-1\n", dir)
	if len(problems) > 0 {
		return &ExitErr{Code: ExitError, Err: fmt.Errorf("the demo did not go as designed:\n  %s", joinLines(problems))}
	}
	fmt.Fprintln(io.Err, "demo: the tool behaved as designed")
	return nil
}

func joinLines(s []string) string {
	out := ""
	for i, l := range s {
		if i > 0 {
			out += "\n  "
		}
		out += l
	}
	return out
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

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
