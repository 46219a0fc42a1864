package healthgate

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Runner evaluates a fleet's configured gates for the engine.
type Runner struct {
	Config    *config.Config
	Client    *http.Client      // http gates; nil: one that keeps idle connections per gate (gateClient)
	Transport http.RoundTripper // metric providers' API clients; nil: their default
	Endpoints Endpoints         // rate limit and circuit breaker per monitoring endpoint
	Clouds    *clouds.Manager   // boundary credentials and endpoints for cloud metric providers
	// GoogleOptions are added to Cloud Monitoring clients (tests: a loopback TLS server's trust).
	GoogleOptions GRPCOptions

	gcp monitoringClients
}

var _ rings.GateRunner = (*Runner)(nil)

// TemplateData is what gate templates see: {{ .Target.Name }}, {{ .Outputs.endpoint }}, ...
type TemplateData struct {
	Target  TargetData
	Release rings.ReleaseRef
	Ring    struct{ Name string }
	Outputs map[string]any

	baseline map[string][]string // the request's baseline (compare gates)
}

type TargetData struct {
	Name, Boundary, Region string
	Labels                 map[string]string
}

func (r *Runner) data(req rings.GateRequest) TemplateData {
	d := TemplateData{Release: req.Release, Outputs: req.Outputs, baseline: req.Baseline}
	d.Ring.Name = req.Ring
	if t := r.Config.Target(req.Target); t != nil {
		d.Target = TargetData{Name: t.Name, Boundary: t.Boundary, Region: t.Region, Labels: t.Labels}
	}
	if d.Outputs == nil {
		d.Outputs = map[string]any{}
	}
	return d
}

func render(text string, d TemplateData) (string, error) {
	t, err := template.New("gate").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// provider builds the gate's provider for this request; a template that cannot be rendered (a
// missing output, say) is a measurement that failed, reported as no data.
func (r *Runner) provider(g *config.Gate, d TemplateData) (Provider, string) {
	judge := Conditions{Success: g.Success, Failure: g.Failure}
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
		return &HTTP{Client: r.Client, URL: url, ExpectStatus: g.HTTP.ExpectStatus, JSONPath: g.HTTP.JSONPath,
			Expect: g.HTTP.Expect, MaxLatency: g.HTTP.MaxLatency.D(), Header: header, Redirects: g.HTTP.Redirects}, ""
	case g.Command != nil:
		args, err := commandArgs(g.Command, d)
		if err != nil {
			return nil, fmt.Sprintf("no data: command template: %v", err)
		}
		env := []string{"ROLLOUT_TARGET=" + d.Target.Name, "ROLLOUT_RING=" + d.Ring.Name, "ROLLOUT_RELEASE=" + d.Release.Name}
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
		return &Command{Args: args, Env: env, Dir: r.Config.Root, ExpectExit: g.Command.ExpectExit}, ""
	case g.Prometheus != nil:
		addr, err := render(g.Prometheus.Address, d)
		if err != nil {
			return nil, fmt.Sprintf("no data: address template: %v", err)
		}
		query, err := render(g.Prometheus.Query, d)
		if err != nil {
			return nil, fmt.Sprintf("no data: query template: %v", err)
		}
		api, err := NewPrometheusAPI(g.Prometheus, addr, r.Transport)
		if err != nil {
			return nil, fmt.Sprintf("prometheus at %s: %v", addr, err)
		}
		return r.guard(g, "prometheus "+addr, &Prometheus{API: api, Query: query, Range: g.Prometheus.Range.D(), Step: g.Prometheus.Step.D(), Judge: judge}), ""
	case g.Compare != nil:
		return r.compare(g, d)
	case g.CloudWatch != nil:
		return r.cloudwatch(g, d, judge)
	case g.AzureMonitor != nil:
		return r.azureMonitor(g, d, judge)
	case g.GCPMonitoring != nil:
		return r.gcpMonitoring(g, d, judge)
	case g.TerraformOutput != nil:
		return &TerraformOutput{Outputs: d.Outputs, Output: g.TerraformOutput.Output, Judge: judge}, ""
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
func (r *Runner) guard(g *config.Gate, key string, p Provider) Provider {
	return &guarded{inner: p, key: key, ep: r.Endpoints.get(key, g.RateLimit), maxStaleness: g.MaxStaleness.D(), budget: g.Interval.D() / 2}
}

func policy(g *config.Gate) Policy {
	return Policy{Interval: g.Interval.D(), Timeout: g.Timeout.D(), HealthyFor: g.HealthyFor.D(),
		Consecutive: g.Consecutive, Count: g.Count, FailureLimit: g.FailureLimit, InconclusiveLimit: g.InconclusiveLimit,
		ConsecutiveErrorLimit: g.ConsecutiveErrorLimit, NoData: map[string]Outcome{config.NoDataFail: Failed,
			config.NoDataInconclusive: Inconclusive, config.NoDataPass: OK}[g.NoData]}
}

func measure(ctx context.Context, p Provider, problem string, interval time.Duration) Measurement {
	if p == nil {
		return Measurement{At: time.Now(), Outcome: Failed, Message: problem}
	}
	mctx, cancel := context.WithTimeout(ctx, max(interval, 10*time.Second))
	defer cancel()
	m := p.Measure(mctx)
	if m.At.IsZero() {
		m.At = time.Now()
	}
	if m.Outcome == "" {
		m.Outcome = Failed
	}
	return m
}

// judge turns one gate's measurements into a verdict: a Tracker (target gates) or a Window
// (ring gates across a bake).
type judge interface {
	Observe(Measurement) (Decision, string)
	Next(now time.Time) time.Time
}

// evaluate measures one gate on the judge's schedule until the judge decides or ctx ends. A dry
// run gate measures and records as any other, and then passes whatever it found.
func (r *Runner) evaluate(ctx context.Context, g *config.Gate, d TemplateData, j judge, observe func(rings.Measurement)) rings.Verdict {
	p, problem := r.provider(g, d)
	for {
		m := measure(ctx, p, problem, g.Interval.D())
		if ctx.Err() != nil {
			return rings.Verdict{Gate: g.Name, Message: "cancelled"}
		}
		m.Gate, m.DryRun = g.Name, g.DryRun
		observe(m)
		v, why := j.Observe(m)
		if v != Pending && g.DryRun {
			return rings.Verdict{Decision: Pass, Gate: g.Name, Message: fmt.Sprintf("dry run: would have been %s: %s", v, why)}
		}
		switch v {
		case Pass:
			return rings.Verdict{Decision: Pass, Gate: g.Name, Message: why}
		case Fail:
			return rings.Verdict{Decision: Fail, Gate: g.Name, Message: why}
		case Undecided:
			return rings.Verdict{Decision: Undecided, Gate: g.Name, Message: why}
		}
		if !sleepUntil(ctx, j.Next(time.Now())) {
			return rings.Verdict{Gate: g.Name, Message: "cancelled"}
		}
	}
}

// Target implements rings.GateRunner: every gate runs concurrently; the first failure decides.
func (r *Runner) Target(ctx context.Context, req rings.GateRequest, observe func(rings.Measurement)) rings.Verdict {
	return r.all(ctx, req, func(ctx context.Context, g *config.Gate, d TemplateData) rings.Verdict {
		if !sleepUntil(ctx, time.Now().Add(g.InitialDelay.D())) {
			return rings.Verdict{Gate: g.Name, Message: "cancelled"}
		}
		return r.evaluate(ctx, g, d, NewTracker(policy(g), time.Now()), observe)
	})
}

// Ring implements rings.GateRunner: ring gates are measured across the bake until until.
func (r *Runner) Ring(ctx context.Context, req rings.GateRequest, until time.Time, observe func(rings.Measurement)) rings.Verdict {
	if len(req.Gates) == 0 {
		if !sleepUntil(ctx, until) {
			return rings.Verdict{Message: "cancelled"}
		}
		return rings.Verdict{Decision: Pass}
	}
	return r.all(ctx, req, func(ctx context.Context, g *config.Gate, d TemplateData) rings.Verdict {
		if !sleepUntil(ctx, time.Now().Add(g.InitialDelay.D())) {
			return rings.Verdict{Gate: g.Name, Message: "cancelled"}
		}
		return r.evaluate(ctx, g, d, NewWindow(policy(g), time.Now(), until), observe)
	})
}

func (r *Runner) all(ctx context.Context, req rings.GateRequest, one func(context.Context, *config.Gate, TemplateData) rings.Verdict) rings.Verdict {
	if len(req.Gates) == 0 {
		return rings.Verdict{Decision: Pass, Message: "no gates"}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := r.data(req)
	verdicts := make(chan rings.Verdict, len(req.Gates))
	var wg sync.WaitGroup
	for _, name := range req.Gates {
		g := r.Config.Gates[name]
		if g == nil {
			return rings.Verdict{Decision: Fail, Gate: name, Message: "gate is not configured"}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			verdicts <- one(ctx, g, d)
		}()
	}
	var failed, undecided *rings.Verdict
	var passed []string
	for range req.Gates {
		v := <-verdicts
		switch {
		case v.Decision == Pass:
			passed = append(passed, v.Gate+": "+v.Message)
		case v.Decision == Undecided:
			if undecided == nil {
				undecided = &v // the others go on: a failure among them still decides
			}
		case failed == nil:
			failed = &v
			cancel() // the first failure decides; stop the others
		}
	}
	wg.Wait()
	if failed != nil {
		return *failed
	}
	if undecided != nil {
		return *undecided
	}
	sort.Strings(passed)
	return rings.Verdict{Decision: Pass, Message: strings.Join(passed, "; ")}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// compare builds a compare gate's provider: its query rendered for the canary (this target) and
// for each baseline target (targets of the baseline rings still on their last known good).
func (r *Runner) compare(g *config.Gate, d TemplateData) (Provider, string) {
	c := g.Compare
	addr, err := render(c.Prometheus.Address, d)
	if err != nil {
		return nil, fmt.Sprintf("no data: address template: %v", err)
	}
	api, err := NewPrometheusAPI(c.Prometheus, addr, r.Transport)
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
	p := &Compare{Source: &Prometheus{API: api, Range: c.Prometheus.Range.D(), Step: c.Prometheus.Step.D()}, Canary: canary, Baseline: baseline,
		MaxRatio: c.MaxRatio, Floor: c.Floor, MinSamples: c.MinSamples}
	return r.guard(g, "prometheus "+addr, p), ""
}

func (r *Runner) cloudwatch(g *config.Gate, d TemplateData, judge Conditions) (Provider, string) {
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
	cfg, b, err := r.Clouds.AWSConfig(context.Background(), boundary, region)
	if err != nil {
		return nil, fmt.Sprintf("cloudwatch: %v", err)
	}
	client := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		if ep := b.Endpoints["monitoring"]; ep != "" {
			o.BaseEndpoint = &ep
		}
	})
	p := &CloudWatch{Client: client, Where: b.Partition + " " + region, InsufficientData: c.InsufficientData, Metric: c.Metric, Judge: judge}
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
	return r.guard(g, "cloudwatch "+b.Partition+" "+region, p), ""
}

func (r *Runner) azureMonitor(g *config.Gate, d TemplateData, judge Conditions) (Provider, string) {
	a := g.AzureMonitor
	boundary, problem := r.cloudBoundary(a.Boundary, d)
	if problem != "" {
		return nil, problem
	}
	cred, cc, b, err := r.Clouds.AzureCredential(boundary)
	if err != nil {
		return nil, fmt.Sprintf("azure monitor: %v", err)
	}
	key := "azure-monitor " + b.Name
	if a.Metric != "" {
		resource, err := render(a.Resource, d)
		if err != nil {
			return nil, fmt.Sprintf("no data: resource template: %v", err)
		}
		client, err := NewAzureMetricsClient(cred, cc, r.Clouds.HTTPClient())
		if err != nil {
			return nil, fmt.Sprintf("azure monitor: %v", err)
		}
		return r.guard(g, key, &AzureMetric{Client: client, Where: b.Environment, Resource: resource, Metric: a.Metric, Namespace: a.Namespace,
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
	pl, endpoint, err := NewAzurePipeline(cred, cc, r.Clouds.HTTPClient())
	if err != nil {
		return nil, fmt.Sprintf("azure monitor: %v", err)
	}
	return r.guard(g, key, &AzureAlerts{Pipeline: pl, Endpoint: endpoint, Where: b.Environment, SubscriptionID: sub, ResourceGroup: rg}), ""
}

func (r *Runner) gcpMonitoring(g *config.Gate, d TemplateData, judge Conditions) (Provider, string) {
	c := g.GCPMonitoring
	boundary, problem := r.cloudBoundary(c.Boundary, d)
	if problem != "" {
		return nil, problem
	}
	creds, b, err := r.Clouds.GoogleCredentials(boundary)
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
		p := &GCPAlertPolicies{Policies: policies, Metrics: client, Universe: universeOf(b), Project: project}
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
	return r.guard(g, "gcp-monitoring "+b.Name, &GCPMonitoring{Client: client, Universe: universeOf(b), Project: project, Filter: filter,
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
