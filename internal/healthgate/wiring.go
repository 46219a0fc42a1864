package healthgate

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	neturl "net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	awscloudwatch "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	httpgate "github.com/rollout-dev/rollout/internal/healthgate/http"
	"github.com/rollout-dev/rollout/internal/redact"
	"github.com/rollout-dev/rollout/internal/rings"

	"github.com/rollout-dev/rollout/internal/clouds"
	awscloud "github.com/rollout-dev/rollout/internal/clouds/aws"
	azurecloud "github.com/rollout-dev/rollout/internal/clouds/azure"
	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	gcpcloud "github.com/rollout-dev/rollout/internal/clouds/gcp"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/healthgate/azuremonitor"
	"github.com/rollout-dev/rollout/internal/healthgate/cloudwatch"
	"github.com/rollout-dev/rollout/internal/healthgate/command"
	"github.com/rollout-dev/rollout/internal/healthgate/gcpmonitoring"
	"github.com/rollout-dev/rollout/internal/healthgate/measure"
	"github.com/rollout-dev/rollout/internal/healthgate/prometheus"
	"github.com/rollout-dev/rollout/internal/healthgate/tfoutput"
)

// The wiring: which provider package measures a configured gate, built with the gate's rendered
// templates, its boundary's credentials and endpoints, and the guard (rate limit, breaker, retries).

// provider builds the gate's provider for this request; a template that cannot be rendered (a
// missing output, say) is a measurement that failed, reported as no data.
func (r *Runner) provider(g *config.Gate, d TemplateData) (measure.Provider, string) {
	p, problem := r.build(g, d)
	if p == nil {
		return nil, problem
	}
	return redacted{inner: p, secrets: redact.New(r.secretsOf(g)...)}, problem
}

// credentialHost says why a gate's credentials may not go to rendered, the URL its template made:
// a host the template writes out is the configuration's; a host that comes from data (an output,
// a label) must be one the gate's allowHosts names, so that data never chooses where a token goes.
func credentialHost(template, rendered string, allow []string) error {
	hostPart := template
	if _, rest, ok := strings.Cut(template, "://"); ok {
		hostPart = rest
	}
	if i := strings.IndexAny(hostPart, "/?#"); i >= 0 {
		hostPart = hostPart[:i]
	}
	if !strings.Contains(hostPart, "{{") {
		return nil
	}
	u, err := neturl.Parse(rendered)
	if err != nil {
		return fmt.Errorf("the URL is not a URL: %v", err)
	}
	for _, pat := range allow {
		if ok, _ := path.Match(pat, u.Hostname()); ok {
			return nil
		}
	}
	return fmt.Errorf("the gate's credentials go only to hosts its configuration names: host %q comes from data and is not in its allowHosts", u.Hostname())
}

// commandEnv is a command gate's environment: its target boundary's, as Terraform gets it (the
// base allow-list for a ring's gate), and nothing else of rollout's own: not another boundary's
// credentials, nor the journal's password.
func (r *Runner) commandEnv(target string) ([]string, error) {
	m := r.Clouds
	if m == nil {
		m = &clouds.Manager{Config: r.Config, Catalog: catalog.All}
	}
	e, err := m.StaticEnv(target)
	return e.List(), err
}

// build is the provider that measures gate g for d.
func (r *Runner) build(g *config.Gate, d TemplateData) (measure.Provider, string) {
	judge := measure.Conditions{Success: g.Success, Failure: g.Failure}
	switch {
	case g.HTTP != nil:
		url, err := render(g.HTTP.URL, d)
		if err != nil {
			return nil, fmt.Sprintf("no data: url template: %v", err)
		}
		header, err := headers(g.HTTP.Headers)
		if err != nil {
			return nil, "no data: " + err.Error()
		}
		if len(header) > 0 || strings.Contains(g.HTTP.URL, "@") { // credentials of the configuration's
			if err := credentialHost(g.HTTP.URL, url, g.HTTP.AllowHosts); err != nil {
				return nil, "no data: " + err.Error()
			}
		}
		return &httpgate.HTTP{Client: r.Client, URL: url, ExpectStatus: g.HTTP.ExpectStatus, JSONPath: g.HTTP.JSONPath,
			Expect: g.HTTP.Expect, MaxLatency: g.HTTP.MaxLatency.D(), Header: header, Redirects: g.HTTP.Redirects}, ""
	case g.Command != nil:
		args, err := commandArgs(g.Command, d)
		if err != nil {
			return nil, fmt.Sprintf("no data: command template: %v", err)
		}
		env, err := r.commandEnv(d.Target.Name)
		if err != nil {
			return nil, "no data: " + err.Error()
		}
		env = append(env, "ROLLOUT_TARGET="+d.Target.Name, "ROLLOUT_RING="+d.Ring.Name, "ROLLOUT_RELEASE="+d.Release.Name)
		keys := make([]string, 0, len(d.Outputs))
		for k := range d.Outputs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s, ok := d.Outputs[k].(string); ok {
				env = append(env, "ROLLOUT_OUTPUT_"+strings.ToUpper(k)+"="+s)
			}
		}
		return &command.Command{Args: args, Env: env, Dir: r.Config.Root, ExpectExit: g.Command.ExpectExit}, ""
	case g.Prometheus != nil:
		addr, err := render(g.Prometheus.Address, d)
		if err != nil {
			return nil, fmt.Sprintf("no data: address template: %v", err)
		}
		query, err := render(g.Prometheus.Query, d)
		if err != nil {
			return nil, fmt.Sprintf("no data: query template: %v", err)
		}
		if g.Prometheus.BearerTokenEnv != "" || g.Prometheus.UsernameEnv != "" {
			if err := credentialHost(g.Prometheus.Address, addr, g.Prometheus.AllowHosts); err != nil {
				return nil, "no data: " + err.Error()
			}
		}
		api, err := prometheus.NewAPI(g.Prometheus, addr, r.Transport)
		if err != nil {
			return nil, fmt.Sprintf("prometheus at %s: %v", addr, err)
		}
		return r.guard(g, "prometheus "+addr, &prometheus.Prometheus{API: api, Query: query, Range: g.Prometheus.Range.D(), Step: g.Prometheus.Step.D(), Judge: judge}), ""
	case g.Compare != nil:
		return r.compare(g, d)
	case g.CloudWatch != nil:
		return r.cloudwatch(g, d, judge)
	case g.AzureMonitor != nil:
		return r.azureMonitor(g, d, judge)
	case g.GCPMonitoring != nil:
		return r.gcpMonitoring(g, d, judge)
	case g.TerraformOutput != nil:
		return &tfoutput.TerraformOutput{Outputs: d.Outputs, Output: g.TerraformOutput.Output, Judge: judge}, ""
	}
	return nil, "gate has no provider"
}

// headers reads an http gate's header values from the environment or files, each time (a token
// file is rotated under a running run).
func headers(hs map[string]config.HeaderValue) (http.Header, error) {
	out := http.Header{}
	for name, hv := range hs {
		var v string
		switch {
		case hv.Env != "":
			val, ok := os.LookupEnv(hv.Env)
			if !ok {
				return nil, fmt.Errorf("header %s: %s is not set in rollout's environment", name, hv.Env)
			}
			v = val
		default:
			b, err := os.ReadFile(hv.File)
			if err != nil {
				return nil, fmt.Errorf("header %s: %w", name, err)
			}
			v = strings.TrimSpace(string(b))
		}
		out.Set(name, hv.Prefix+v)
	}
	return out, nil
}

// commandArgs renders a command gate's arguments. A shell script's values go in as arguments of
// their own after the script (sh -c SCRIPT rollout-gate VALUE...), never into its text: data from
// environment files and Terraform outputs must not become code.
func commandArgs(c *config.CommandCheck, d TemplateData) ([]string, error) {
	run := c.Run
	var values []string
	if script, ok := c.ShellScript(); ok {
		text, actions, err := config.ShellTemplate(script)
		if err != nil {
			return nil, err
		}
		run = append(append([]string{}, c.Run[:2]...), text)
		if len(c.Run) == 3 { // $0, then the values as $1, $2, ...
			run = append(run, "rollout-gate")
		} else {
			run = append(run, c.Run[3:]...)
		}
		for _, a := range actions {
			v, err := render(a, d)
			if err != nil {
				return nil, err
			}
			values = append(values, v)
		}
	}
	args := make([]string, 0, len(run)+len(values))
	for _, a := range run { // the script itself has no template actions left: it renders as it is
		s, err := render(a, d)
		if err != nil {
			return nil, err
		}
		args = append(args, s)
	}
	return append(args, values...), nil
}

// guard puts a metric provider behind its endpoint's rate limit and breaker, with retries and the
// gate's stale cache (see guarded).
func (r *Runner) guard(g *config.Gate, key string, p measure.Provider) measure.Provider {
	return &guarded{inner: p, key: key, ep: r.Endpoints.get(key, g.RateLimit), maxStaleness: g.MaxStaleness.D(), budget: g.Interval.D() / 2}
}

// compare builds a compare gate's provider: its query rendered for the canary (this target) and
// for each baseline target (targets of the baseline rings still on their last known good).
func (r *Runner) compare(g *config.Gate, d TemplateData) (measure.Provider, string) {
	c := g.Compare
	addr, err := render(c.Prometheus.Address, d)
	if err != nil {
		return nil, fmt.Sprintf("no data: address template: %v", err)
	}
	api, err := prometheus.NewAPI(c.Prometheus, addr, r.Transport)
	if err != nil {
		return nil, fmt.Sprintf("prometheus at %s: %v", addr, err)
	}
	canary, err := render(c.Prometheus.Query, d)
	if err != nil {
		return nil, fmt.Sprintf("no data: query template: %v", err)
	}
	ringsOf := c.BaselineRings
	if len(ringsOf) == 0 {
		ringsOf = []string{d.Ring.Name}
	}
	var baseline []string
	for _, ring := range ringsOf {
		for _, name := range d.baseline[ring] {
			bd := d
			bd.Outputs = map[string]any{} // not applied by this run: no outputs to template with
			if t := r.Config.Target(name); t != nil {
				bd.Target = TargetData{Name: t.Name, Boundary: t.Boundary, Region: t.Region, Labels: t.Labels}
			}
			q, err := render(c.Prometheus.Query, bd)
			if err != nil {
				return nil, fmt.Sprintf("no data: query template for baseline target %s: %v", name, err)
			}
			baseline = append(baseline, q)
		}
	}
	p := &prometheus.Compare{Source: &prometheus.Prometheus{API: api, Range: c.Prometheus.Range.D(), Step: c.Prometheus.Step.D()}, Canary: canary, Baseline: baseline,
		MaxRatio: c.MaxRatio, Floor: c.Floor, MinSamples: c.MinSamples}
	return r.guard(g, "prometheus "+addr, p), ""
}

func (r *Runner) cloudwatch(g *config.Gate, d TemplateData, judge measure.Conditions) (measure.Provider, string) {
	c := g.CloudWatch
	boundary, problem := r.cloudBoundary(c.Boundary, d)
	if problem != "" {
		return nil, problem
	}
	region := c.Region
	if region == "" {
		region = d.Target.Region
	}
	if region == "" {
		return nil, "a cloudwatch gate without a target (a ring gate) needs its region set"
	}
	b, err := r.Clouds.Boundary(boundary)
	if err != nil {
		return nil, fmt.Sprintf("cloudwatch: %v", err)
	}
	cfg, err := awscloud.Config(context.Background(), r.Clouds, boundary, region)
	if err != nil {
		return nil, fmt.Sprintf("cloudwatch: %v", err)
	}
	client := awscloudwatch.NewFromConfig(cfg, func(o *awscloudwatch.Options) {
		if ep := b.Endpoints["monitoring"]; ep != "" {
			o.BaseEndpoint = &ep
		}
	})
	p := &cloudwatch.CloudWatch{Client: client, Where: awscloud.Partition(b) + " " + region, InsufficientData: c.InsufficientData, Metric: c.Metric, Judge: judge}
	for _, a := range c.Alarms {
		s, err := render(a, d)
		if err != nil {
			return nil, fmt.Sprintf("no data: alarm template: %v", err)
		}
		p.Alarms = append(p.Alarms, s)
	}
	if p.AlarmPrefix, err = render(c.AlarmPrefix, d); err != nil {
		return nil, fmt.Sprintf("no data: alarmPrefix template: %v", err)
	}
	if c.Metric != nil {
		p.Dimensions = map[string]string{}
		for k, v := range c.Metric.Dimensions {
			if p.Dimensions[k], err = render(v, d); err != nil {
				return nil, fmt.Sprintf("no data: dimension %s template: %v", k, err)
			}
		}
	}
	return r.guard(g, "cloudwatch "+awscloud.Partition(b)+" "+region, p), ""
}

func (r *Runner) azureMonitor(g *config.Gate, d TemplateData, judge measure.Conditions) (measure.Provider, string) {
	a := g.AzureMonitor
	boundary, problem := r.cloudBoundary(a.Boundary, d)
	if problem != "" {
		return nil, problem
	}
	cred, cc, b, err := azurecloud.Credential(r.Clouds, boundary)
	if err != nil {
		return nil, fmt.Sprintf("azure monitor: %v", err)
	}
	key := "azure-monitor " + b.Name
	if a.Metric != "" {
		resource, err := render(a.Resource, d)
		if err != nil {
			return nil, fmt.Sprintf("no data: resource template: %v", err)
		}
		client, err := azuremonitor.NewMetricsClient(cred, cc, r.Clouds.HTTPClient())
		if err != nil {
			return nil, fmt.Sprintf("azure monitor: %v", err)
		}
		return r.guard(g, key, &azuremonitor.Metric{Client: client, Where: azurecloud.Environment(b), Resource: resource, Metric: a.Metric, Namespace: a.Namespace,
			Aggregation: a.Aggregation, Interval: a.Interval.D(), Range: a.Range.D(), Judge: judge}), ""
	}
	rg, err := render(a.ResourceGroup, d)
	if err != nil {
		return nil, fmt.Sprintf("no data: resourceGroup template: %v", err)
	}
	sub := a.SubscriptionID
	if sub == "" {
		sub = b.Identity["subscriptionId"]
	}
	if sub == "" {
		return nil, "azure monitor alerts: no subscription (set subscriptionId, or the boundary's identity.subscriptionId)"
	}
	pl, endpoint, err := azuremonitor.NewPipeline(cred, cc, r.Clouds.HTTPClient())
	if err != nil {
		return nil, fmt.Sprintf("azure monitor: %v", err)
	}
	return r.guard(g, key, &azuremonitor.Alerts{Pipeline: pl, Endpoint: endpoint, Where: azurecloud.Environment(b), SubscriptionID: sub, ResourceGroup: rg}), ""
}

func (r *Runner) gcpMonitoring(g *config.Gate, d TemplateData, judge measure.Conditions) (measure.Provider, string) {
	c := g.GCPMonitoring
	boundary, problem := r.cloudBoundary(c.Boundary, d)
	if problem != "" {
		return nil, problem
	}
	creds, b, err := gcpcloud.Credentials(r.Clouds, boundary)
	if err != nil {
		return nil, fmt.Sprintf("cloud monitoring: %v", err)
	}
	project, err := render(c.Project, d)
	if err != nil {
		return nil, fmt.Sprintf("no data: project template: %v", err)
	}
	if project == "" {
		project = b.Identity["project"]
	}
	if project == "" {
		return nil, "cloud monitoring: no project (set project, or the boundary's identity.project)"
	}
	client, err := r.monitoringClient(b, creds)
	if err != nil {
		return nil, fmt.Sprintf("cloud monitoring: %v", err)
	}
	if len(c.AlertPolicies) > 0 {
		policies, err := r.alertPolicyClient(b, creds)
		if err != nil {
			return nil, fmt.Sprintf("cloud monitoring: %v", err)
		}
		p := &gcpmonitoring.AlertPolicies{Policies: policies, Metrics: client, Universe: universeOf(b), Project: project}
		for _, a := range c.AlertPolicies {
			name, err := render(a, d)
			if err != nil {
				return nil, fmt.Sprintf("no data: alert policy template: %v", err)
			}
			p.Names = append(p.Names, name)
		}
		return r.guard(g, "gcp-monitoring "+b.Name, p), ""
	}
	filter, err := render(c.Filter, d)
	if err != nil {
		return nil, fmt.Sprintf("no data: filter template: %v", err)
	}
	return r.guard(g, "gcp-monitoring "+b.Name, &gcpmonitoring.TimeSeries{Client: client, Universe: universeOf(b), Project: project, Filter: filter,
		Range: c.Range.D(), AlignmentPeriod: c.AlignmentPeriod.D(), Aligner: c.Aligner, Reducer: c.Reducer, Judge: judge}), ""
}

// cloudBoundary is the boundary a cloud gate reads with: its own setting, else the target's.
func (r *Runner) cloudBoundary(own string, d TemplateData) (string, string) {
	if r.Clouds == nil {
		return "", "no cloud credentials configured for gates"
	}
	if own == "" {
		own = d.Target.Boundary
	}
	if own == "" {
		return "", "a cloud gate without a target (a ring gate) needs its boundary set"
	}
	return own, ""
}

// secretsOf are the secret values gate g's provider holds: its headers' and its Prometheus
// credentials' values, and every boundary secret the clouds know.
func (r *Runner) secretsOf(g *config.Gate) []string {
	var out []string
	if g.HTTP != nil {
		if h, err := headers(g.HTTP.Headers); err == nil {
			for name := range h {
				out = append(out, h.Get(name))
			}
		}
	}
	for _, c := range []*config.PrometheusCheck{g.Prometheus, compareCheck(g)} {
		if c != nil {
			for _, name := range []string{c.BearerTokenEnv, c.UsernameEnv, c.PasswordEnv} {
				if name != "" {
					out = append(out, os.Getenv(name))
				}
			}
		}
	}
	if r.Clouds != nil {
		out = append(out, r.Clouds.Secrets()...)
	}
	return out
}

func compareCheck(g *config.Gate) *config.PrometheusCheck {
	if g.Compare == nil {
		return nil
	}
	return g.Compare.Prometheus
}

// redacted masks in a provider's messages the secrets it holds and whatever looks like a
// credential: an endpoint's answer may echo the token it was sent, and a cloud's short-lived
// access tokens are not known by value.
type redacted struct {
	inner   measure.Provider
	secrets *redact.Redactor
}

func (p redacted) Measure(ctx context.Context) rings.Measurement {
	m := p.inner.Measure(ctx)
	m.Message = p.secrets.String(redact.Credentials(m.Message))
	return m
}

// CheckBoundaries checks that each cloud gate names a boundary of its cloud (a cloudwatch gate an
// aws boundary, ...): a gate never reads metrics with another cloud's credentials.
func CheckBoundaries(c *config.Config) config.Errors {
	var errs config.Errors
	need := func(gate, kind, boundary, cloud string) {
		if boundary == "" {
			return
		}
		if b := c.Boundaries[boundary]; b == nil || b.Cloud != cloud {
			errs = append(errs, c.Problem("gates."+gate+"."+kind+".boundary", "%q is not a%s %s boundary of this fleet", boundary, article(cloud), cloud))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Gates)) {
		g := c.Gates[name]
		if g.GCPMonitoring != nil {
			need(name, "gcp-monitoring", g.GCPMonitoring.Boundary, gcpcloud.Name)
		}
		if g.AzureMonitor != nil {
			need(name, "azure-monitor", g.AzureMonitor.Boundary, azurecloud.Name)
		}
		if g.CloudWatch != nil {
			need(name, "cloudwatch", g.CloudWatch.Boundary, awscloud.Name)
		}
	}
	return errs
}

func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "n"
	}
	return ""
}
