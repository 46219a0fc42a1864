package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Gate is a health check as configured: its provider section, its conditions and its policy.
type Gate struct {
	Name            string
	HTTP            *HTTPCheck
	Command         *CommandCheck
	Prometheus      *PrometheusCheck
	TerraformOutput *OutputCheck
	Compare         *CompareCheck
	CloudWatch      *CloudWatchCheck
	AzureMonitor    *AzureMonitorCheck
	GCPMonitoring   *GCPMonitoringCheck
	// SuccessCondition and FailureCondition are expressions over the measurement's `result`
	// (github.com/expr-lang/expr), compiled when the configuration is loaded.
	SuccessCondition      string
	FailureCondition      string
	Success, Failure      *Condition
	Interval              Duration
	InitialDelay          Duration // wait this long after the apply (or the bake's start) before measuring
	Timeout               Duration
	HealthyFor            Duration
	Count                 int // take at least this many measurements before passing
	Consecutive           int
	FailureLimit          int
	InconclusiveLimit     int      // this many inconclusive measurements make the gate inconclusive
	ConsecutiveErrorLimit int      // this many provider errors in a row fail the gate
	NoData                string   // fail (default) | inconclusive | pass: what an empty result counts as
	DryRun                bool     // measure and record, never block
	MaxStaleness          Duration // a metric provider's last good measurement may stand in this long
	RateLimit             float64  // queries per second to the gate's monitoring endpoint (0: 10/s)
}

// NoData outcomes.
const (
	NoDataFail         = "fail"
	NoDataInconclusive = "inconclusive"
	NoDataPass         = "pass"
)

// PrometheusCheck is an instant or range PromQL query.
type PrometheusCheck struct {
	Address        string   // the Prometheus server's base URL (template)
	Query          string   // PromQL (template over the target, release, ring and outputs)
	Range          Duration // a range query over the last Range (0: an instant query)
	Step           Duration // the range query's resolution (default: Range/10)
	BearerTokenEnv string   // the variable of rollout's environment holding a bearer token
	UsernameEnv    string   // basic auth: the variables holding user name and password
	PasswordEnv    string
	AllowHosts     []string // as HTTPCheck.AllowHosts, for an Address whose host comes from data
}

// CompareCheck judges the target that got the new release (the canary) against targets still on
// their last known good (the baseline), with one metric queried for each.
type CompareCheck struct {
	Prometheus    *PrometheusCheck // the query, templated per target (.Target.Name, ...)
	MaxRatio      float64          // the canary's mean may be at most baseline mean × MaxRatio...
	Floor         float64          // ...or at most Floor (so a near-zero baseline does not fail on noise)
	MinSamples    int              // each side needs at least this many values, or there is no data
	BaselineRings []string         // rings whose targets still on last known good form the baseline (default: the gate's own)
}

// CloudWatchCheck reads CloudWatch in the target's partition and region (or the given boundary
// and region, for ring gates), with that boundary's credentials: alarm states, or a metric.
type CloudWatchCheck struct {
	Boundary, Region string   // default: the target's
	Alarms           []string // alarm names (templates): ALARM fails
	AlarmPrefix      string   // or every alarm whose name starts with this (template)
	InsufficientData string   // fail (default, as AWS AppConfig treats it) | inconclusive | ok
	Metric           *CloudWatchMetric
}

// CloudWatchMetric is one metric statistic over the last Range, at Period.
type CloudWatchMetric struct {
	Namespace, Name, Stat string
	Dimensions            map[string]string // values are templates
	Period, Range         Duration
}

// AzureMonitorCheck reads Azure Monitor in the target's Azure cloud with its boundary's
// credential: a metric of a resource, or the alerts fired on a resource group.
type AzureMonitorCheck struct {
	Boundary       string   // default: the target's
	Resource       string   // metric: the resource ID (template)
	Metric         string   // metric name, e.g. Http5xx
	Namespace      string   // metric namespace (optional)
	Aggregation    string   // Average (default), Total, Maximum, Minimum, Count
	Interval       Duration // time grain (default 1m)
	Range          Duration // over the last Range (default 5m)
	ResourceGroup  string   // alerts: fired alerts on this resource group (template) fail
	SubscriptionID string   // alerts: default the boundary's identity.subscriptionId
}

// GCPMonitoringCheck reads Cloud Monitoring time series in the boundary's universe with its
// credential (ListTimeSeries with a filter, over the last Range, aligned and optionally reduced).
type GCPMonitoringCheck struct {
	Boundary        string   // default: the target's
	Project         string   // template; default: the boundary's identity.project
	Filter          string   // template, e.g. metric.type="..." AND resource.labels.x="{{ .Target.Name }}"
	Range           Duration // default 5m
	AlignmentPeriod Duration // default 60s
	Aligner         string   // ALIGN_MEAN (default), ALIGN_RATE, ALIGN_SUM, ALIGN_MAX, ...
	Reducer         string   // optional: REDUCE_SUM, REDUCE_MEAN, ... across series
	// AlertPolicies (resource names, templates) instead of Filter: each policy's threshold
	// conditions are evaluated on their own filter and aggregation; one met fails the gate.
	AlertPolicies []string
}

// OutputCheck asserts over the target's recorded Terraform outputs.
type OutputCheck struct {
	Output string // the output whose value is `result`; empty: result is the map of all outputs
}

// HTTPCheck is an http gate: a URL, the status and JSON field it expects, headers and redirects.
type HTTPCheck struct {
	URL          string // template
	ExpectStatus int
	JSONPath     string // dotted path into the JSON body, e.g. status or checks.db
	Expect       string // the value at JSONPath, compared as a string
	MaxLatency   Duration
	// Headers are sent with every request; a value comes from the environment or a file, so that a
	// token is neither in the configuration nor in the URL (where it would be printed).
	Headers map[string]HeaderValue
	// Redirects: same-host (the default: a redirect to another host is not followed, and its
	// answer judged as it is), any, or none.
	Redirects string
	// AllowHosts: where a URL whose host comes from data (a template over outputs or labels)
	// may take the gate's credentials (Headers, user info); exact names or globs (*.example.com).
	AllowHosts []string
}

// HeaderValue is where a header's value comes from: Env (a variable of rollout's environment) or
// File (its content, trimmed), after Prefix ("Bearer ").
type HeaderValue struct {
	Env, File, Prefix string
}

// CommandCheck is a command gate: a program and the exit code it must give.
type CommandCheck struct {
	Run        []string // argv, each a template; a single string runs under sh -c
	ExpectExit int
}

// parseHeaders reads an http gate's headers: NAME: {env: VAR | file: PATH, prefix: TEXT}.
func parseHeaders(w walker, path string, n *yaml.Node) map[string]HeaderValue {
	if n == nil {
		return nil
	}
	out := map[string]HeaderValue{}
	for name, vn := range w.fields(n, path) {
		hp := path + "." + name
		f := w.fields(vn, hp, "env", "file", "prefix")
		hv := HeaderValue{Env: w.str(f["env"], hp+".env"), File: w.str(f["file"], hp+".file"), Prefix: w.str(f["prefix"], hp+".prefix")}
		if (hv.Env == "") == (hv.File == "") {
			w.fail(vn, hp, "give env: VARIABLE or file: PATH (exactly one): a header's value never sits in the configuration")
		}
		out[name] = hv
	}
	return out
}

// ShellScript is the script when the command runs one under a shell (sh -c SCRIPT, bash -c ...):
// its template values are then passed as arguments, never pasted into it (see ShellTemplate).
func (c *CommandCheck) ShellScript() (string, bool) {
	if len(c.Run) >= 3 && c.Run[1] == "-c" {
		switch c.Run[0] {
		case "sh", "bash", "dash", "zsh", "ksh", "/bin/sh", "/bin/bash", "/usr/bin/env":
			return c.Run[2], true
		}
	}
	return "", false
}

// gateKeys are the keys of a gate: its provider (one of the first eight) and its policy.
var gateKeys = []string{"http", "command", "prometheus", "terraform-output", "compare", "cloudwatch", "azure-monitor", "gcp-monitoring", "successCondition", "failureCondition",
	"interval", "initialDelay", "timeout", "healthyFor", "count", "consecutive", "failureLimit", "inconclusiveLimit",
	"consecutiveErrorLimit", "noData", "dryRun", "maxStaleness", "rateLimit"}

// parseGate reads one gate: exactly one provider, its conditions, and its policy.
func parseGate(w walker, name string, n *yaml.Node) *Gate {
	path := "gates." + name
	f := w.fields(n, path, gateKeys...)
	g := &Gate{Name: name}
	providers := 0
	for _, p := range []struct {
		key   string
		parse func()
	}{
		{"http", func() { parseHTTPGate(w, path, f, g) }},
		{"command", func() { parseCommandGate(w, path, f, g) }},
		{"prometheus", func() { g.Prometheus = parsePrometheus(w, path, f["prometheus"]) }},
		{"compare", func() { parseCompareGate(w, path, f, g) }},
		{"cloudwatch", func() { parseCloudWatchGate(w, path, f["cloudwatch"], g) }},
		{"azure-monitor", func() { parseAzureMonitorGate(w, path, f["azure-monitor"], g) }},
		{"gcp-monitoring", func() { parseGCPMonitoringGate(w, path, f["gcp-monitoring"], g) }},
		{"terraform-output", func() {
			of := w.fields(f["terraform-output"], path+".terraform-output", "output")
			g.TerraformOutput = &OutputCheck{Output: w.str(of["output"], path+".terraform-output.output")}
		}},
	} {
		if f[p.key] != nil {
			providers++
			p.parse()
		}
	}
	parseConditions(w, path, n, f, g)
	if providers == 0 {
		w.fail(n, path, "names no provider: give one of http, command, prometheus, terraform-output, compare")
	} else if providers > 1 {
		w.fail(n, path, "names %d providers: a gate has exactly one", providers)
	}
	parsePolicy(w, path, f, g)
	return g
}

// parseHTTPGate reads an http gate: a URL to GET, what answer is healthy.
func parseHTTPGate(w walker, path string, f map[string]*yaml.Node, g *Gate) {
	h := w.fields(f["http"], path+".http", "url", "expectStatus", "jsonPath", "expect", "maxLatency", "headers", "redirects", "allowHosts")
	g.HTTP = &HTTPCheck{
		URL:          w.str(h["url"], path+".http.url"),
		ExpectStatus: w.integer(h["expectStatus"], path+".http.expectStatus", 100),
		JSONPath:     w.str(h["jsonPath"], path+".http.jsonPath"),
		Expect:       w.str(h["expect"], path+".http.expect"),
		MaxLatency:   w.duration(h["maxLatency"], path+".http.maxLatency"),
		Redirects:    w.str(h["redirects"], path+".http.redirects"),
		Headers:      parseHeaders(w, path+".http.headers", h["headers"]),
		AllowHosts:   w.strings(h["allowHosts"], path+".http.allowHosts"),
	}
	switch g.HTTP.Redirects {
	case "":
		g.HTTP.Redirects = "same-host"
	case "same-host", "any", "none":
	default:
		w.fail(h["redirects"], path+".http.redirects", "must be same-host, any or none, got %q", g.HTTP.Redirects)
	}
	if g.HTTP.ExpectStatus == 0 {
		g.HTTP.ExpectStatus = 200
	}
	if g.HTTP.URL == "" {
		w.fail(f["http"], path+".http.url", "is required")
	}
	checkTemplates(w, h["url"], path+".http.url", g.HTTP.URL)
	if (g.HTTP.JSONPath == "") != (h["expect"] == nil) {
		w.fail(f["http"], path+".http", "jsonPath and expect go together")
	}
}

// parseCommandGate reads a command gate: a program whose exit code decides.
func parseCommandGate(w walker, path string, f map[string]*yaml.Node, g *Gate) {
	cf := w.fields(f["command"], path+".command", "run", "expectExit")
	g.Command = &CommandCheck{ExpectExit: w.integer(cf["expectExit"], path+".command.expectExit", 0)}
	switch rn := cf["run"]; {
	case rn == nil:
		w.fail(f["command"], path+".command.run", "is required: a command line (run under sh -c) or a list of arguments")
	case rn.Kind == yaml.ScalarNode:
		g.Command.Run = []string{"sh", "-c", rn.Value}
	default:
		g.Command.Run = w.strings(rn, path+".command.run")
	}
	for i, a := range g.Command.Run {
		checkTemplates(w, cf["run"], fmt.Sprintf("%s.command.run[%d]", path, i), a)
	}
	if script, ok := g.Command.ShellScript(); ok {
		if _, _, err := ShellTemplate(script); err != nil {
			w.fail(cf["run"], path+".command.run", "%v", err)
		}
	}
}

// parseCompareGate reads a compare gate: a canary's metric against its baseline targets'.
func parseCompareGate(w walker, path string, f map[string]*yaml.Node, g *Gate) {
	cf := w.fields(f["compare"], path+".compare", "prometheus", "maxRatio", "floor", "minSamples", "baselineRings")
	g.Compare = &CompareCheck{MaxRatio: w.number(cf["maxRatio"], path+".compare.maxRatio"), Floor: w.number(cf["floor"], path+".compare.floor"),
		MinSamples: w.integer(cf["minSamples"], path+".compare.minSamples", 1), BaselineRings: w.strings(cf["baselineRings"], path+".compare.baselineRings")}
	if cf["prometheus"] == nil {
		w.fail(f["compare"], path+".compare.prometheus", "is required: the query run for the canary and for each baseline target")
	} else {
		g.Compare.Prometheus = parsePrometheus(w, path+".compare", cf["prometheus"])
	}
	if g.Compare.MaxRatio <= 0 {
		w.fail(f["compare"], path+".compare.maxRatio", "is required and must be more than 0, e.g. 1.2 (at most 20%% worse than the baseline)")
	}
	if g.Compare.MinSamples == 0 {
		g.Compare.MinSamples = 1
	}
}

// parseCloudWatchGate reads a cloudwatch gate: alarms, an alarm prefix, or a metric.
func parseCloudWatchGate(w walker, path string, n *yaml.Node, g *Gate) {
	cp := path + ".cloudwatch"
	cf := w.fields(n, cp, "boundary", "region", "alarms", "alarmPrefix", "insufficientData", "metric")
	c := &CloudWatchCheck{Boundary: w.str(cf["boundary"], cp+".boundary"), Region: w.str(cf["region"], cp+".region"),
		Alarms: w.strings(cf["alarms"], cp+".alarms"), AlarmPrefix: w.str(cf["alarmPrefix"], cp+".alarmPrefix"),
		InsufficientData: w.str(cf["insufficientData"], cp+".insufficientData")}
	switch c.InsufficientData {
	case "":
		c.InsufficientData = NoDataFail
	case NoDataFail, NoDataInconclusive, "ok":
	default:
		w.fail(cf["insufficientData"], cp+".insufficientData", "must be fail, inconclusive or ok, got %q", c.InsufficientData)
	}
	if mn := cf["metric"]; mn != nil {
		mf := w.fields(mn, cp+".metric", "namespace", "name", "stat", "dimensions", "period", "range")
		c.Metric = &CloudWatchMetric{Namespace: w.str(mf["namespace"], cp+".metric.namespace"), Name: w.str(mf["name"], cp+".metric.name"),
			Stat: w.str(mf["stat"], cp+".metric.stat"), Dimensions: w.stringMap(mf["dimensions"], cp+".metric.dimensions"),
			Period: w.duration(mf["period"], cp+".metric.period"), Range: w.duration(mf["range"], cp+".metric.range")}
		if c.Metric.Namespace == "" || c.Metric.Name == "" {
			w.fail(mn, cp+".metric", "namespace and name are required")
		}
		if c.Metric.Stat == "" {
			c.Metric.Stat = "Average"
		}
		if c.Metric.Period == 0 {
			c.Metric.Period = Duration(time.Minute)
		}
		if c.Metric.Range == 0 {
			c.Metric.Range = Duration(5 * time.Minute)
		}
		for k, v := range c.Metric.Dimensions {
			checkTemplates(w, mf["dimensions"], cp+".metric.dimensions."+k, v)
		}
	}
	modes := 0
	for _, set := range []bool{len(c.Alarms) > 0, c.AlarmPrefix != "", c.Metric != nil} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		w.fail(n, cp, "give exactly one of alarms, alarmPrefix or metric")
	}
	for i, a := range c.Alarms {
		checkTemplates(w, cf["alarms"], fmt.Sprintf("%s.alarms[%d]", cp, i), a)
	}
	checkTemplates(w, cf["alarmPrefix"], cp+".alarmPrefix", c.AlarmPrefix)
	g.CloudWatch = c
}

// parseAzureMonitorGate reads an azure-monitor gate: a resource's metric, or a resource group's fired alerts.
func parseAzureMonitorGate(w walker, path string, n *yaml.Node, g *Gate) {
	ap := path + ".azure-monitor"
	af := w.fields(n, ap, "boundary", "resource", "metric", "namespace", "aggregation", "interval", "range", "resourceGroup", "subscriptionId")
	a := &AzureMonitorCheck{Boundary: w.str(af["boundary"], ap+".boundary"), Resource: w.str(af["resource"], ap+".resource"),
		Metric: w.str(af["metric"], ap+".metric"), Namespace: w.str(af["namespace"], ap+".namespace"), Aggregation: w.str(af["aggregation"], ap+".aggregation"),
		Interval: w.duration(af["interval"], ap+".interval"), Range: w.duration(af["range"], ap+".range"),
		ResourceGroup: w.str(af["resourceGroup"], ap+".resourceGroup"), SubscriptionID: w.str(af["subscriptionId"], ap+".subscriptionId")}
	switch {
	case a.Metric != "" && a.ResourceGroup == "":
		if a.Resource == "" {
			w.fail(n, ap+".resource", "is required with metric: the resource ID whose metric is read")
		}
	case a.Metric == "" && a.ResourceGroup != "":
	default:
		w.fail(n, ap, "give metric (with resource) or resourceGroup (its fired alerts), not both")
	}
	switch a.Aggregation {
	case "":
		a.Aggregation = "Average"
	case "Average", "Total", "Maximum", "Minimum", "Count":
	default:
		w.fail(af["aggregation"], ap+".aggregation", "must be Average, Total, Maximum, Minimum or Count, got %q", a.Aggregation)
	}
	if a.Interval == 0 {
		a.Interval = Duration(time.Minute)
	}
	if a.Range == 0 {
		a.Range = Duration(5 * time.Minute)
	}
	checkTemplates(w, af["resource"], ap+".resource", a.Resource)
	checkTemplates(w, af["resourceGroup"], ap+".resourceGroup", a.ResourceGroup)
	g.AzureMonitor = a
}

// parseGCPMonitoringGate reads a gcp-monitoring gate: a Cloud Monitoring filter, or alert policies.
func parseGCPMonitoringGate(w walker, path string, n *yaml.Node, g *Gate) {
	gp := path + ".gcp-monitoring"
	gf := w.fields(n, gp, "boundary", "project", "filter", "range", "alignmentPeriod", "aligner", "reducer", "alertPolicies")
	c := &GCPMonitoringCheck{Boundary: w.str(gf["boundary"], gp+".boundary"), Project: w.str(gf["project"], gp+".project"),
		Filter: w.str(gf["filter"], gp+".filter"), Range: w.duration(gf["range"], gp+".range"), AlignmentPeriod: w.duration(gf["alignmentPeriod"], gp+".alignmentPeriod"),
		Aligner: w.str(gf["aligner"], gp+".aligner"), Reducer: w.str(gf["reducer"], gp+".reducer"), AlertPolicies: w.strings(gf["alertPolicies"], gp+".alertPolicies")}
	if (c.Filter == "") == (len(c.AlertPolicies) == 0) {
		w.fail(n, gp, "give filter (a Cloud Monitoring filter, e.g. metric.type=\"run.googleapis.com/request_count\") or alertPolicies, not both")
	}
	for i, a := range c.AlertPolicies {
		checkTemplates(w, gf["alertPolicies"], fmt.Sprintf("%s.alertPolicies[%d]", gp, i), a)
	}
	if c.Range == 0 {
		c.Range = Duration(5 * time.Minute)
	}
	if c.AlignmentPeriod == 0 {
		c.AlignmentPeriod = Duration(time.Minute)
	}
	if c.Aligner == "" {
		c.Aligner = "ALIGN_MEAN"
	}
	if !strings.HasPrefix(c.Aligner, "ALIGN_") {
		w.fail(gf["aligner"], gp+".aligner", "want an aligner such as ALIGN_MEAN or ALIGN_RATE, got %q", c.Aligner)
	}
	if c.Reducer != "" && !strings.HasPrefix(c.Reducer, "REDUCE_") {
		w.fail(gf["reducer"], gp+".reducer", "want a reducer such as REDUCE_SUM, got %q", c.Reducer)
	}
	checkTemplates(w, gf["filter"], gp+".filter", c.Filter)
	checkTemplates(w, gf["project"], gp+".project", c.Project)
	g.GCPMonitoring = c
}

// parseConditions reads a gate's success and failure conditions: for metric and terraform-output
// gates only.
func parseConditions(w walker, path string, n *yaml.Node, f map[string]*yaml.Node, g *Gate) {
	g.SuccessCondition = w.str(f["successCondition"], path+".successCondition")
	g.FailureCondition = w.str(f["failureCondition"], path+".failureCondition")
	numeric := g.Prometheus != nil || g.CloudWatch != nil && g.CloudWatch.Metric != nil || g.AzureMonitor != nil && g.AzureMonitor.Metric != "" || g.GCPMonitoring != nil && len(g.GCPMonitoring.AlertPolicies) == 0
	if numeric || g.TerraformOutput != nil {
		if g.SuccessCondition == "" {
			w.fail(n, path+".successCondition", "is required for a metric or terraform-output gate: an expression over result, e.g. result < 0.01")
		}
		g.Success = w.condition(f["successCondition"], path+".successCondition", g.SuccessCondition, numeric)
		g.Failure = w.condition(f["failureCondition"], path+".failureCondition", g.FailureCondition, numeric)
	} else {
		for _, k := range []string{"successCondition", "failureCondition"} {
			if f[k] != nil {
				w.fail(f[k], path+"."+k, "conditions are for metric (prometheus, cloudwatch, azure-monitor, gcp-monitoring) and terraform-output gates; http, command, compare and alarms judge their own answer")
			}
		}
	}
}

// parsePolicy reads how a gate's measurements become a verdict, with its defaults.
func parsePolicy(w walker, path string, f map[string]*yaml.Node, g *Gate) {
	g.Interval = w.duration(f["interval"], path+".interval")
	g.Timeout = w.duration(f["timeout"], path+".timeout")
	g.HealthyFor = w.duration(f["healthyFor"], path+".healthyFor")
	g.Consecutive = w.integer(f["consecutive"], path+".consecutive", 1)
	g.FailureLimit = w.integer(f["failureLimit"], path+".failureLimit", 1)
	g.InitialDelay = w.duration(f["initialDelay"], path+".initialDelay")
	g.Count = w.integer(f["count"], path+".count", 1)
	g.InconclusiveLimit = w.integer(f["inconclusiveLimit"], path+".inconclusiveLimit", 1)
	g.ConsecutiveErrorLimit = w.integer(f["consecutiveErrorLimit"], path+".consecutiveErrorLimit", 1)
	g.DryRun = w.boolean(f["dryRun"], path+".dryRun")
	g.MaxStaleness = w.duration(f["maxStaleness"], path+".maxStaleness")
	g.RateLimit = w.rate(f["rateLimit"], path+".rateLimit")
	switch g.NoData = w.str(f["noData"], path+".noData"); g.NoData {
	case "":
		g.NoData = NoDataFail
	case NoDataFail, NoDataInconclusive, NoDataPass:
	default:
		w.fail(f["noData"], path+".noData", "must be fail, inconclusive or pass, got %q", g.NoData)
	}
	if g.InconclusiveLimit == 0 {
		g.InconclusiveLimit = 1
	}
	if g.ConsecutiveErrorLimit == 0 {
		g.ConsecutiveErrorLimit = 4
	}
	if g.Interval == 0 {
		g.Interval = Duration(5 * time.Second)
	}
	if g.Timeout == 0 {
		g.Timeout = Duration(5 * time.Minute)
	}
	if g.Consecutive == 0 {
		g.Consecutive = 1
	}
	if g.FailureLimit == 0 {
		g.FailureLimit = 1
	}
	if g.HealthyFor >= g.Timeout && f["timeout"] != nil {
		w.fail(f["healthyFor"], path+".healthyFor", "(%s) must be shorter than timeout (%s), or the gate can never pass", g.HealthyFor, g.Timeout)
	}
}
