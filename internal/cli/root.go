// Package cli is rollout's command line, a thin front end over the run service (internal/runs):
//
//	flags, environment (cobra, viper) ──► runs.Options + a request ──► runs.Fleet use case
//	                                                                      │
//	stdout: tables, --output json  ◄── print.go ◄── report, results ◄─────┤
//	stderr: progress, notes        ◄── progress.go, events.go ◄── Watch, Notes
//	exit code                      ◄── exitCode: a report's ExitCode, or 1 (5: lease held)
//
// One file per command: a cobra command that binds flags, and a few lines that call the service
// and print what it answers. No run logic lives here.
package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/agext/levenshtein"
	"github.com/spf13/pflag"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
	"golang.org/x/term"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/proc"
	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/runs"
)

// Exit codes: the CI contract (docs/ci-contract.md), as the run service defines them.
const (
	ExitOK             = runs.ExitOK
	ExitError          = runs.ExitError
	ExitGateFailed     = runs.ExitGateFailed
	ExitWaiting        = runs.ExitWaiting
	ExitBlocked        = runs.ExitBlocked
	ExitLeaseHeld      = runs.ExitLeaseHeld
	ExitRollbackFailed = runs.ExitRollbackFailed
	ExitAborted        = runs.ExitAborted
	ExitWaitTimeout    = runs.ExitWaitTimeout
)

// IO are a command's streams: data to Out, status to Err.
type IO struct {
	In     io.Reader
	Out    io.Writer
	Err    io.Writer
	ErrTTY bool // Err is a terminal: colours and a live progress footer
	Width  int  // Err's width in columns when it is a terminal
	Stop   *Shutdown
	// Provisioner, when set, replaces what runs each target's Terraform in a run this process
	// drives (it gets the Terraform provisioner). Only benchmarks set it: internal/bench/noopcmd
	// drives the whole command with a no-op to measure the engine at 10,000 targets.
	Provisioner func(rings.Provisioner) rings.Provisioner
}

// Shutdown is how SIGINT/SIGTERM reach a command. A command driving a run watches Drain: the
// first signal stops new work there, and running Terraform may finish within the grace period;
// any other command is cancelled at once, as is everything at the second signal.
type Shutdown struct {
	drain   chan struct{}
	watched atomic.Bool
	cancel  context.CancelFunc
	signals int
}

// Drain is closed at the first signal (nil Shutdown: never).
func (s *Shutdown) Drain() <-chan struct{} {
	if s == nil {
		return nil
	}
	s.watched.Store(true)
	return s.drain
}

func (s *Shutdown) signal(errw io.Writer) {
	s.signals++
	if s.signals == 1 && s.watched.Load() {
		close(s.drain)
		fmt.Fprintln(errw, "rollout: stopping: nothing new starts; Terraform runs under way may finish within defaults.shutdownGrace (signal again to interrupt them now)")
		return
	}
	s.cancel()
}

// ExitErr carries an exit code with the error to report (nil: report nothing more).
type ExitErr struct {
	Code int
	Err  error
}

func (e *ExitErr) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitErr) Unwrap() error { return e.Err }

// exitCode maps an error to the CI contract's exit code, in one place.
func exitCode(err error) int {
	var ee *ExitErr
	var held *journal.LeaseHeldError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &held):
		return ExitLeaseHeld
	}
	return ExitError
}

// fail is a request this command refuses as given.
func fail(format string, args ...any) error {
	return &ExitErr{Code: ExitError, Err: fmt.Errorf(format, args...)}
}

// globals are the settings every command shares: flags, else ROLLOUT_* environment variables.
type globals struct {
	v *viper.Viper
}

func (g globals) configPath() string { return g.v.GetString("config") }
func (g globals) json() bool         { return g.v.GetString("output") == "json" }
func (g globals) tfBin() string      { return g.v.GetString("tf-bin") }
func (g globals) state() string      { return g.v.GetString("state") }
func (g globals) color() bool        { return !g.v.GetBool("no-color") && os.Getenv("NO_COLOR") == "" }

// NewRoot builds the command tree.
// suggestFlag adds "did you mean" to an unknown flag's error: the command's flag nearest in
// spelling (--relase: --release), when one is near enough.
func suggestFlag(cmd *cobra.Command, err error) error {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return err
	}
	best, dist := "", 3
	visit := func(f *pflag.Flag) {
		if d := levenshtein.Distance(name, f.Name, nil); d < dist {
			best, dist = f.Name, d
		}
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	if best == "" {
		return err
	}
	return fmt.Errorf("%w (did you mean --%s?)", err, best)
}

func NewRoot(io IO) *cobra.Command {
	v := viper.New()
	v.SetEnvPrefix("ROLLOUT")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	g := globals{v: v}
	root := &cobra.Command{
		Use: "rollout",
		Example: `  rollout validate && rollout plan --release v42
  rollout start --release v42 --var image=registry.example/app:42
  rollout status`,
		Short: "Provision a fleet with Terraform/OpenTofu and promote releases ring by ring behind health gates",
		Long: `rollout provisions every target of a fleet with Terraform or OpenTofu and promotes each release
ring by ring, only after health gates pass, rolling back by itself when they fail.

Exit codes: 0 done; 1 usage, configuration or internal error; 2 a gate failed and the rollback
was carried out; 3 waiting (an approval, an inconclusive gate, drift to acknowledge) or paused;
4 blocked by a freeze window or the stop-the-line switch; 5 another run holds the fleet; 6 a
rollback itself failed; 7 aborted by an operator; 8 status --wait timed out.

With --output json every command that reports prints one JSON document on stdout, also when it
fails (docs/ci-contract.md; schemas in docs/schema).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	root.SetFlagErrorFunc(suggestFlag)
	pf := root.PersistentFlags()
	pf.String("config", "", "the fleet's rollout.yaml, or its directory (env ROLLOUT_CONFIG; default: ./rollout.yaml)")
	pf.StringP("output", "o", "text", "output format: text or json (env ROLLOUT_OUTPUT)")
	pf.String("events", "", "stream the run's events as NDJSON to FILE (appended), or - for stdout (env ROLLOUT_EVENTS; schema: docs/schema/event.v1.json)")
	pf.String("tf-bin", "", "the terraform or tofu binary (env ROLLOUT_TF_BIN, else TF_BIN, else tofu/terraform on PATH)")
	pf.Bool("no-color", false, "no colours on a terminal (also NO_COLOR)")
	pf.String("state", "", "the journal: sqlite (default: .rollout/state.db), sqlite:PATH, or postgres://USER@HOST/DB (env ROLLOUT_STATE; else state: in rollout.yaml)")
	_ = v.BindPFlags(pf)
	root.Flags().Bool("version", false, "print the version (as rollout version does)")
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if v, _ := cmd.Flags().GetBool("version"); v {
			return printVersion(cmd.Context(), io, g)
		}
		return cmd.Help()
	}
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if o := g.v.GetString("output"); o != "text" && o != "json" {
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("--output must be text or json, got %q", o)}
		}
		return nil
	}
	root.AddCommand(
		newInitCmd(io, g),
		newValidateCmd(io, g),
		newPreflightCmd(io, g),
		newPlanCmd(io, g),
		newStartCmd(io, g),
		newStatusCmd(io, g),
		newHistoryCmd(io, g),
		newFleetCmd(io, g),
		newRollbackCmd(io, g),
		newApproveCmd(io, g),
		newGateCmd(io, g),
		newEnvCmd(io, g),
		newExpandCmd(io, g),
		newResumeCmd(io, g),
		newPauseCmd(io, g),
		newBakeCmd(io, g),
		newAbortCmd(io, g),
		newFreezeCmd(io, g),
		newDriftCmd(io, g),
		newDemoCmd(io, g),
		newStateCmd(io, g),
		newVersionCmd(io, g),
		newServeCmd(io, g),
		newEvidenceCmd(io, g),
		newReleaseCmd(io, g),
		newWorkerCmd(io, g),
	)
	addCompletions(root, g)
	return root
}

// Main runs rollout with args and returns the process exit code. Each of with may change the
// command's IO before it runs (benchmarks set IO.Provisioner).
func Main(args []string, with ...func(*IO)) (code int) {
	// A panic is a bug, never an outcome: it must not exit 2 (Go's code for a panic), which a
	// pipeline reads as "a gate failed and the release was rolled back".
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "rollout: internal error (a bug in rollout; please report it with this text): %v\n%s", p, debug.Stack())
			code = ExitError
		}
	}()
	// What rollout and the Terraform it runs create is for this user only: journals, plan files,
	// local state and variable files may hold secrets (files meant to be shared are chmodded).
	proc.Umask(0o077)
	io := IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, ErrTTY: term.IsTerminal(int(os.Stderr.Fd()))}
	for _, w := range with {
		w(&io)
	}
	out := &printed{w: io.Out}
	io.Out = out
	if io.ErrTTY {
		io.Width, _, _ = term.GetSize(int(os.Stderr.Fd()))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	io.Stop = &Shutdown{drain: make(chan struct{}), cancel: cancel}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		for range sigs {
			io.Stop.signal(io.Err)
		}
	}()
	root := NewRoot(io)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		var ee *ExitErr
		if !errors.As(err, &ee) || ee.Err != nil {
			fmt.Fprintf(io.Err, "rollout: %v\n", err)
		}
		if out.n == 0 && wantsJSON(root) {
			errorDoc(out, err, exitCode(err))
		}
	}
	return exitCode(err)
}

// options are the run service's options for this command: its flags, its streams, and what
// watches a run it drives (the progress display, the --events stream). done closes the stream.
func options(io IO, g globals) (runs.Options, func(), error) {
	events, err := openEvents(g, io.Out)
	if err != nil {
		return runs.Options{}, nil, err
	}
	o := runs.Options{Config: g.configPath(), State: g.state(), TFBin: g.tfBin(), Notes: io.Err,
		Drain: io.Stop.Drain, Provisioner: io.Provisioner, Events: g.v.GetString("events")}
	o.Watch = func(s *rings.State) (func(rings.Event), func()) {
		p := newProgress(io, g, s)
		return func(ev rings.Event) { p.event(ev); events.event(ev) }, p.close
	}
	return o, func() { events.Close() }, nil
}

// open opens the fleet for a command that runs Terraform; done closes it.
func open(ctx context.Context, io IO, g globals) (*runs.Fleet, func(), error) {
	return opener(ctx, io, g, runs.Open)
}

// openJournal opens the fleet's journal alone (status, history, the operators' acts).
func openJournal(ctx context.Context, io IO, g globals) (*runs.Fleet, func(), error) {
	return opener(ctx, io, g, runs.OpenJournal)
}

func opener(ctx context.Context, io IO, g globals, how func(context.Context, runs.Options) (*runs.Fleet, error)) (*runs.Fleet, func(), error) {
	o, done, err := options(io, g)
	if err != nil {
		return nil, nil, err
	}
	f, err := how(ctx, o)
	if err != nil {
		done()
		return nil, nil, err
	}
	return f, func() { f.Close(); done() }, nil
}

// isExitErr says whether err only carries an exit code (a report's, already printed).
func isExitErr(err error) bool {
	var e *ExitErr
	return errors.As(err, &e)
}
