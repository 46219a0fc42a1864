package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/web"
)

func newServeCmd(io IO, g globals) *cobra.Command {
	var listen, tokenFile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the fleet's dashboard and its metrics for Prometheus, read from the journal",
		Long: `Serve a dashboard of the fleet's newest run (/: its rings by boundary, each target's phase,
release, gate verdicts and times, the next command that moves a waiting run on, and the run's event
log, live) and its metrics in Prometheus form (/metrics), read from the journal at each request,
so they are right whichever process drives the runs (SQLite or PostgreSQL). Metrics: runs by
phase; the newest run's targets by ring, boundary and phase, plan and apply durations by boundary,
gate verdicts, retries and open circuit breakers by boundary, and how long an approval has waited.
Read-only unless --token-file names a file of "NAME TOKEN" lines: then a person who logs in
(/login) with a token may approve a waiting ring from the page, journaled as NAME like the CLI's
approve (the ring's approvers list holds), each form carrying the session's CSRF token. serve
holds no cloud credential. It runs until interrupted.`,
		Example: "  rollout serve --listen 127.0.0.1:9464\n  rollout serve --token-file /etc/rollout/tokens   # 'ops-lead 9f2c...' per line, chmod 600\n  # prometheus.yml: scrape_configs: [{job_name: rollout, static_configs: [{targets: ['127.0.0.1:9464']}]}]",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, done, err := openJournal(cmd.Context(), io, g)
			if err != nil {
				return err
			}
			defer done()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			ws := &web.Server{Fleet: f}
			if tokenFile != "" {
				if ws.Tokens, err = web.LoadTokens(tokenFile); err != nil {
					return &ExitErr{Code: ExitError, Err: fmt.Errorf("--token-file: %w", err)}
				}
			}
			srv := &http.Server{Handler: ws.Handler(), ReadHeaderTimeout: 10 * time.Second}
			go ws.Warm(cmd.Context())
			fmt.Fprintf(io.Err, "rollout: serving the fleet's dashboard at http://%s/ and its metrics at http://%s/metrics\n", ln.Addr(), ln.Addr())
			go func() {
				<-io.Stop.Drain()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9464", "the address to serve on (host:port; loopback by default)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", `let people act from the page (approve): a file of "NAME TOKEN" lines, mode 600; a login with a token acts as its NAME`)
	return cmd
}
