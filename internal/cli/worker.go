package cli

import (
	"context"

	"github.com/spf13/cobra"
)

func newWorkerCmd(io IO, g globals) *cobra.Command {
	var boundaries []string
	var journal bool
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Carry out a fleet's runs on Temporal: a boundary's Terraform, gates and drift checks, or the workflow and the journal",
		Long: `Serve a fleet whose rollout.yaml says engine: temporal. Each run is a durable workflow on the
Temporal cluster of the temporal: section; what it decides is carried out by workers.

--boundary B polls B's task queue (PREFIX-B) and runs only that boundary's work (init, plan, apply,
rollback, its targets' gates, drift checks) with this process's identity there. Run it inside the
boundary, with only that boundary's credentials: before polling, the worker checks the boundary's
variables and files and proves its identity with the cloud (as a run's preflight does) and stops
with exit 1 when it cannot. Several workers of a boundary share its work; one that dies mid-apply
is noticed by its missed heartbeats and the apply is given to another.

--journal polls PREFIX-journal: the runs' workflows, the activities that read and write the
journal, and ring-wide gates. It needs the journal and no cloud credential.

It runs until interrupted (work under way is handed back to Temporal, to be retried elsewhere).`,
		Example: `  # inside the commercial boundary, with its credentials only:
  rollout worker --boundary commercial
  # inside the sovereign boundary, with its credentials only:
  rollout worker --boundary gov
  # next to the journal, with no cloud credential:
  rollout worker --journal`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, done, err := open(cmd.Context(), io, g)
			if err != nil {
				return err
			}
			defer done()
			return f.Worker(stopContext(cmd.Context(), io), boundaries, journal)
		},
	}
	cmd.Flags().StringSliceVar(&boundaries, "boundary", nil, "a boundary whose task queue this worker serves (repeatable)")
	cmd.Flags().BoolVar(&journal, "journal", false, "serve the workflows and the journal's task queue")
	return cmd
}

// stopContext ends at the first interrupt (SIGINT or SIGTERM), as ctx does at the second.
func stopContext(ctx context.Context, io IO) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	drain := io.Stop.Drain()
	go func() {
		defer cancel()
		select {
		case <-drain:
		case <-ctx.Done():
		}
	}()
	return ctx
}
