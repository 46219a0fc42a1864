package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/idp"
	"github.com/rollout-dev/rollout/internal/secretfile"
	"github.com/rollout-dev/rollout/internal/web"
)

type serveOpts struct {
	listen, tokenFile, publicURL string
	drive, publicMetrics         bool
	oidc                         idp.Config
	oidcSecretFile               string
}

func newServeCmd(io IO, g globals) *cobra.Command {
	var o serveOpts
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the fleet's dashboard and its metrics for Prometheus, read from the journal",
		Long: `Serve a dashboard of the fleet's newest run (/: its rings by boundary, each target's phase,
release, gate verdicts and times, the next command that moves a waiting run on, and the run's event
log, live) and its metrics in Prometheus form (/metrics), read from the journal at each request,
so they are right whichever process drives the runs (SQLite or PostgreSQL). Metrics: runs by
phase; the newest run's targets by ring, boundary and phase, plan and apply durations by boundary,
gate verdicts, retries and open circuit breakers by boundary, and how long an approval has waited.

Read-only unless given a way to log people in: --token-file (a file of "NAME TOKEN" lines, mode
600) or an OpenID Connect issuer (--oidc-issuer, --oidc-client-id, the client's secret in
--oidc-client-secret-file or ROLLOUT_OIDC_CLIENT_SECRET; the issuer must allow the redirect URL
<public URL>/login/callback). A person who logged in may approve a waiting ring, pause, resume or
abort the run from the page, each act journaled with their name and reason like the CLI's (a
ring's approvers list holds), each form carrying the session's CSRF token. With a login, nothing
but the login page and /healthz is readable without one; --public-metrics keeps /metrics open for
a Prometheus scraper. Behind an https --public-url the session cookie is Secure. Live event logs
are capped at 256 at once, 8 per client address.

serve holds no cloud credential and runs no Terraform: the process that drives the run carries out
the acts. A run that nothing drives goes on with 'rollout resume RUN', or, with --drive, serve
hands it to a background 'rollout resume' on this machine after an act (which then needs the
boundaries' identities in serve's environment). It runs until interrupted.`,
		Example: `  rollout serve --listen 127.0.0.1:9464
  rollout serve --token-file /etc/rollout/tokens   # 'ops-lead 9f2c...' per line, chmod 600
  rollout serve --listen 0.0.0.0:8080 --public-url https://rollout.example.com \
      --oidc-issuer https://login.microsoftonline.com/TENANT/v2.0 --oidc-client-id 0c8e... \
      --oidc-client-secret-file /etc/rollout/oidc-secret --oidc-claim email --oidc-allow ops-lead@example.com
  # prometheus.yml: scrape_configs: [{job_name: rollout, static_configs: [{targets: ['127.0.0.1:9464']}]}]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return serve(cmd.Context(), io, g, o) },
	}
	fl := cmd.Flags()
	fl.StringVar(&o.listen, "listen", "127.0.0.1:9464", "the address to serve on (host:port; loopback by default)")
	fl.StringVar(&o.publicURL, "public-url", "", "the URL people reach serve at, for the OIDC redirect (default: http://LISTEN)")
	fl.StringVar(&o.tokenFile, "token-file", "", `let people act from the page: a file of "NAME TOKEN" lines, mode 600; a login with a token acts as its NAME`)
	fl.StringVar(&o.oidc.Issuer, "oidc-issuer", "", "let people act from the page after logging in with this OpenID Connect issuer (URL)")
	fl.StringVar(&o.oidc.ClientID, "oidc-client-id", "", "serve's client ID at the OIDC issuer")
	fl.StringVar(&o.oidcSecretFile, "oidc-client-secret-file", "", "a file (mode 600) holding serve's client secret at the issuer (else ROLLOUT_OIDC_CLIENT_SECRET; none: PKCE only)")
	fl.StringVar(&o.oidc.Claim, "oidc-claim", "email", "the ID token's claim that names a person (as approvers lists name them)")
	fl.StringSliceVar(&o.oidc.Allow, "oidc-allow", nil, "who may log in, by that claim (repeatable; default: whoever the issuer proves)")
	fl.BoolVar(&o.publicMetrics, "public-metrics", false, "with a login, keep /metrics readable without one (for a Prometheus scraper)")
	fl.BoolVar(&o.drive, "drive", false, "after an act from the page, hand a run that nothing drives to a background 'rollout resume' on this machine")
	return cmd
}

func serve(ctx context.Context, io IO, g globals, o serveOpts) error {
	f, done, err := openJournal(ctx, io, g)
	if err != nil {
		return err
	}
	defer done()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return &ExitErr{Code: ExitError, Err: fmt.Errorf("--listen %s: %w", o.listen, err)}
	}
	ws := &web.Server{Fleet: f, Drive: o.drive, PublicMetrics: o.publicMetrics, Secure: strings.HasPrefix(o.publicURL, "https://")}
	if err := o.auth(ctx, ws, ln.Addr().String()); err != nil {
		ln.Close()
		return &ExitErr{Code: ExitError, Err: err}
	}
	srv := &http.Server{Handler: ws.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go ws.Warm(ctx)
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
}

// auth sets up how people log in, if they may.
func (o serveOpts) auth(ctx context.Context, ws *web.Server, addr string) error {
	if o.tokenFile != "" && o.oidc.Issuer != "" {
		return errors.New("give --token-file or --oidc-issuer, not both")
	}
	if o.tokenFile != "" {
		var err error
		if ws.Tokens, err = web.LoadTokens(o.tokenFile); err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
	}
	if o.oidc.Issuer == "" {
		return nil
	}
	cfg := o.oidc
	cfg.ClientSecret = os.Getenv("ROLLOUT_OIDC_CLIENT_SECRET")
	if o.oidcSecretFile != "" {
		b, err := secretfile.Read(o.oidcSecretFile)
		if err == nil && strings.TrimSpace(string(b)) == "" {
			err = fmt.Errorf("%s is empty", o.oidcSecretFile)
		}
		if err != nil {
			return fmt.Errorf("--oidc-client-secret-file: %w", err)
		}
		cfg.ClientSecret = strings.TrimSpace(string(b))
	}
	base := strings.TrimSuffix(cmp.Or(o.publicURL, "http://"+addr), "/")
	cfg.RedirectURL = base + "/login/callback"
	login, err := idp.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("--oidc-issuer: %w", err)
	}
	ws.OIDC = &web.OIDC{Login: login, Issuer: cfg.Issuer}
	return nil
}
