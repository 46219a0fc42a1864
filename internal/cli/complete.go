package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/runs"
)

// Dynamic shell completion (rollout completion bash|zsh|fish|powershell): run IDs, rings, targets,
// boundaries and releases are read from the fleet's files and journal as the shell asks; enum
// flags complete to their values. A completion never creates a journal, and says nothing when the
// fleet cannot be read.

// runArg are the commands whose one argument is a run.
var runArg = []string{"rollout abort", "rollout approve", "rollout pause", "rollout resume", "rollout status",
	"rollout evidence", "rollout drift ack", "rollout gate override", "rollout bake end"}

// enumFlags are flags with a fixed set of values.
var enumFlags = map[string][]string{
	"output": {"text", "json"}, "verdict": {"pass", "fail"}, "engine": {"inprocess", "temporal"},
	"apply-mode": {"auto", "plan-first", "direct"},
}

func addCompletions(root *cobra.Command, g globals) {
	c := completer{g: g}
	fixed := func(values []string) cobra.CompletionFunc {
		return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return values, cobra.ShellCompDirectiveNoFileComp
		}
	}
	dynamic := map[string]func() []string{"ring": c.rings, "target": c.targets, "boundary": c.boundaries,
		"release": c.releases, "to": c.releases, "run": c.runs}
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		if slices.Contains(runArg, cmd.CommandPath()) {
			cmd.ValidArgsFunction = c.first(c.runs)
		}
		if cmd.CommandPath() == "rollout release export" {
			cmd.ValidArgsFunction = c.first(c.releases)
		}
		for name, values := range enumFlags {
			if cmd.LocalNonPersistentFlags().Lookup(name) != nil || (cmd == root && cmd.PersistentFlags().Lookup(name) != nil) {
				_ = cmd.RegisterFlagCompletionFunc(name, fixed(values))
			}
		}
		for name, list := range dynamic {
			if cmd.LocalNonPersistentFlags().Lookup(name) != nil {
				_ = cmd.RegisterFlagCompletionFunc(name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
					return list(), cobra.ShellCompDirectiveNoFileComp
				})
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

type completer struct{ g globals }

// first completes the first argument only.
func (c completer) first(list func() []string) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return list(), cobra.ShellCompDirectiveNoFileComp
	}
}

func (c completer) main() *config.Config {
	cfg, err := config.LoadMain(c.g.configPath(), catalog.All.Keys())
	if err != nil {
		return nil
	}
	return cfg
}

func (c completer) rings() []string {
	var out []string
	if cfg := c.main(); cfg != nil {
		for _, r := range cfg.Rings {
			out = append(out, r.Name)
		}
	}
	return out
}

func (c completer) boundaries() []string {
	if cfg := c.main(); cfg != nil {
		return slices.Sorted(func(yield func(string) bool) {
			for name := range cfg.Boundaries {
				if !yield(name) {
					return
				}
			}
		})
	}
	return nil
}

func (c completer) targets() []string {
	cfg, _, err := config.LoadAll(c.g.configPath(), catalog.All.Keys())
	if err != nil || cfg == nil {
		return nil
	}
	var out []string
	for _, t := range cfg.Targets {
		out = append(out, t.Name)
	}
	return out
}

// journal opens the fleet's journal when it exists: a completion never creates one.
func (c completer) journal(read func(ctx context.Context, f *runs.Fleet) []string) []string {
	cfg := c.main()
	if cfg == nil {
		return nil
	}
	if c.g.state() == "" && cfg.State == "" {
		if _, err := os.Stat(filepath.Join(cfg.Root, ".rollout", "state.db")); err != nil {
			return nil
		}
	}
	ctx := context.Background()
	f, err := runs.OpenJournal(ctx, runs.Options{Config: c.g.configPath(), State: c.g.state(), Notes: ioDiscard{}})
	if err != nil {
		return nil
	}
	defer f.Close()
	return read(ctx, f)
}

func (c completer) runs() []string {
	return c.journal(func(ctx context.Context, f *runs.Fleet) []string {
		all, err := f.Journal().Runs(ctx)
		if err != nil {
			return nil
		}
		var out []string
		for _, r := range all { // newest first
			out = append(out, r.ID+"\t"+r.Kind+" "+r.Release.Name)
		}
		return out
	})
}

func (c completer) releases() []string {
	return c.journal(func(ctx context.Context, f *runs.Fleet) []string {
		all, err := f.Journal().Releases(ctx)
		if err != nil {
			return nil
		}
		var out []string
		for _, r := range all {
			out = append(out, r.Name)
		}
		return out
	})
}
