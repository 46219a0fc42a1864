package healthgate

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/grpc"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/healthgate/conformance"
	"github.com/rollout-dev/rollout/internal/healthgate/measure"
	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/testsupport/azuretest"
	"github.com/rollout-dev/rollout/internal/testsupport/gcptest"
)

// Every gate provider, as the wiring builds it for a gate, passes the conformance suite against
// its loopback stand-in.
func TestEveryProviderConforms(t *testing.T) {
	for name, s := range map[string]conformance.Subject{
		"http":                        httpSubject(t),
		"command":                     commandSubject(),
		"terraformOutput":             outputSubject(),
		"prometheus":                  prometheusSubject(t, false),
		"compare":                     prometheusSubject(t, true),
		"cloudwatch":                  cloudwatchSubject(false),
		"cloudwatch-alarms":           cloudwatchSubject(true),
		"azureMonitor":                azureSubject(false),
		"azureMonitor-alerts":         azureSubject(true),
		"gcpMonitoring":               gcpSubject(false),
		"gcpMonitoring-alertPolicies": gcpSubject(true),
	} {
		t.Run(name, func(t *testing.T) { conformance.Run(t, s) })
	}
}

// wired is the provider the runner builds for gate on target.
func wired(t *testing.T, r *Runner, gate, target string, outputs map[string]any, baseline ...string) measure.Provider {
	t.Helper()
	d := r.data(rings.GateRequest{Ring: "main", Target: target, Gates: []string{gate}, Outputs: outputs, Baseline: map[string][]string{"main": baseline}})
	p, problem := r.provider(r.Config.Gates[gate], d)
	if problem != "" {
		t.Fatal(problem)
	}
	return p
}

// answer serves an HTTP stand-in as the scenario says: ok and bad are the healthy and unhealthy
// answers; a bad answer is a server error echoing the request's credentials.
func answer(sc conformance.Scenario, ok, bad, none string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch sc {
		case conformance.Hang:
			_, _ = io.Copy(io.Discard, r.Body) // the server sees the client go only once the body is read
			<-r.Context().Done()
		case conformance.BadAnswer:
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, `{"status":"error","error":"confused; you sent Authorization: %s to %s"}`, r.Header.Get("Authorization"), r.URL)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, map[conformance.Scenario]string{conformance.Healthy: ok, conformance.Unhealthy: bad, conformance.NoData: none}[sc])
		}
	}
}

func httpSubject(t *testing.T) conformance.Subject {
	t.Setenv("CONF_HTTP_TOKEN", "hdr-secret-9999")
	return conformance.Subject{
		Secrets: []string{"PASS-1234", "TOK-5678", "hdr-secret-9999"},
		Provider: func(t *testing.T, sc conformance.Scenario) (measure.Provider, bool) {
			if sc == conformance.NoData {
				return nil, false // an http check's answer is its data: no answer fails the target
			}
			h := answer(sc, `{"status":"ok"}`, `{"status":"down"}`, "")
			if sc == conformance.Unhealthy { // a failing status whose body echoes what it was sent
				h = func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(http.StatusServiceUnavailable)
					fmt.Fprintf(w, "down; you sent %s to %s", r.Header.Get("Authorization"), r.URL)
				}
			}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			url := strings.Replace(srv.URL, "http://", "http://admin:PASS-1234@", 1) + "/health?token=TOK-5678"
			g := &config.Gate{Name: "g", HTTP: &config.HTTPCheck{URL: url, JSONPath: "status", Expect: "ok",
				Headers: map[string]config.HeaderValue{"Authorization": {Env: "CONF_HTTP_TOKEN", Prefix: "Bearer "}}}}
			return wired(t, runnerFor(g), "g", "t1", nil), true
		},
	}
}

func commandSubject() conformance.Subject {
	scripts := map[conformance.Scenario]string{conformance.Healthy: "echo fine", conformance.Unhealthy: "echo broken; exit 1",
		conformance.BadAnswer: `printf '\000\377 garbage'; exit 2`, conformance.Hang: "sleep 30"}
	return conformance.Subject{Provider: func(t *testing.T, sc conformance.Scenario) (measure.Provider, bool) {
		if sc == conformance.NoData {
			return nil, false // a command's exit code is its answer
		}
		g := &config.Gate{Name: "g", Command: &config.CommandCheck{Run: []string{"sh", "-c", scripts[sc]}}}
		return wired(t, runnerFor(g), "g", "t1", nil), true
	}}
}

func outputSubject() conformance.Subject {
	outputs := map[conformance.Scenario]map[string]any{conformance.Healthy: {"health": map[string]any{"status": "ok"}},
		conformance.Unhealthy: {"health": map[string]any{"status": "degraded"}}, conformance.NoData: {},
		conformance.BadAnswer: {"health": "not an object"}}
	return conformance.Subject{Provider: func(t *testing.T, sc conformance.Scenario) (measure.Provider, bool) {
		if sc == conformance.Hang {
			return nil, false // it asks nobody
		}
		c, err := config.CompileCondition(`result.status == "ok"`, false)
		if err != nil {
			t.Fatal(err)
		}
		g := &config.Gate{Name: "g", TerraformOutput: &config.OutputCheck{Output: "health"}, Success: c, SuccessCondition: `result.status == "ok"`}
		return wired(t, runnerFor(g), "g", "t1", outputs[sc]), true
	}}
}

func prometheusSubject(t *testing.T, compare bool) conformance.Subject {
	t.Setenv("CONF_PROM_TOKEN", "prom-token-4242")
	vector := func(v string) string {
		if v == "" {
			return `{"status":"success","data":{"resultType":"vector","result":[]}}`
		}
		return `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"` + v + `"]}]}}`
	}
	return conformance.Subject{Secrets: []string{"prom-token-4242"}, Provider: func(t *testing.T, sc conformance.Scenario) (measure.Provider, bool) {
		healthy, unhealthy := vector("0.001"), vector("0.5")
		h := answer(sc, healthy, unhealthy, vector(""))
		if compare { // the baseline answers 0.001 whatever the canary does
			canary := h
			h = func(w http.ResponseWriter, r *http.Request) {
				if sc != conformance.Hang && sc != conformance.BadAnswer && strings.Contains(r.FormValue("query"), "base") {
					fmt.Fprint(w, healthy)
					return
				}
				canary(w, r)
			}
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		check := &config.PrometheusCheck{Address: srv.URL, Query: `app_error_ratio{target="{{ .Target.Name }}"}`, BearerTokenEnv: "CONF_PROM_TOKEN"}
		g := &config.Gate{Name: "g", Prometheus: check, SuccessCondition: "result < 0.01"}
		g.Success, _ = config.CompileCondition("result < 0.01", true)
		if compare {
			g = &config.Gate{Name: "g", Compare: &config.CompareCheck{Prometheus: check, MaxRatio: 1.5, MinSamples: 1}}
		}
		r := runnerFor(g)
		r.Config.Targets = append(r.Config.Targets, &config.Target{Name: "base"})
		return wired(t, r, "g", "t1", nil, "base"), true
	}}
}

func cloudwatchSubject(alarms bool) conformance.Subject {
	return conformance.Subject{Secrets: []string{"gov-secret"}, Provider: func(t *testing.T, sc conformance.Scenario) (measure.Provider, bool) {
		cw := newCloudWatch(t)
		cw.hang, cw.garbage = sc == conformance.Hang, sc == conformance.BadAnswer
		check := &config.CloudWatchCheck{Metric: &config.CloudWatchMetric{Namespace: "AWS/ApplicationELB", Name: "HTTPCode_Target_5XX_Count",
			Stat: "Sum", Period: config.Duration(time.Minute), Range: config.Duration(5 * time.Minute)}}
		var cond string
		switch {
		case alarms && sc == conformance.NoData:
			return nil, false // an alarm has a state; a missing one is reported as no data by name, not by its answer
		case alarms:
			check = &config.CloudWatchCheck{Alarms: []string{"gov-w1-5xx"}}
			cw.alarms["gov-w1-5xx"] = [2]string{map[bool]string{true: "OK", false: "ALARM"}[sc == conformance.Healthy], "state"}
		default:
			cond = "all(result, {# < 5})"
			cw.values = map[conformance.Scenario][]float64{conformance.Healthy: {1, 2}, conformance.Unhealthy: {9}}[sc]
		}
		g := cwGate(check, func(g *config.Gate) {
			if cond != "" {
				g.SuccessCondition = cond
				g.Success, _ = config.CompileCondition(cond, true)
			}
		})
		return wired(t, govCloudRunner(t, cw.URL, g), g.Name, "gov-w1", nil), true
	}}
}

func azureSubject(alerts bool) conformance.Subject {
	return conformance.Subject{Secrets: []string{"the-right-secret"}, Provider: func(t *testing.T, sc conformance.Scenario) (measure.Provider, bool) {
		srv := azuretest.New(t, "tenant-sov", "aud")
		series := func(vals string) string {
			return `{"timespan":"x","interval":"PT1M","value":[{"id":"m","type":"Microsoft.Insights/metrics","name":{"value":"Http5xx"},"unit":"Count","errorCode":"Success","timeseries":[{"metadatavalues":[],"data":[` + vals + `]}]}]}`
		}
		if alerts {
			if sc == conformance.NoData {
				return nil, false // the alerts of a group are a list: empty is healthy
			}
			srv.Mux.HandleFunc("/subscriptions/sub-1/providers/Microsoft.AlertsManagement/alerts", answer(sc, `{"value":[]}`,
				`{"value":[{"name":"5xx spike","properties":{"essentials":{"severity":"Sev1","monitorCondition":"Fired","alertState":"New"}}}]}`, ""))
			return wired(t, azureRunner(t, srv, azGate(&config.AzureMonitorCheck{ResourceGroup: "rg-{{ .Target.Name }}"}, "")), "azmon", "sov-1", nil), true
		}
		srv.Mux.HandleFunc("/subscriptions/sub-1/resourceGroups/rg-sov-1/providers/Microsoft.Web/sites/app-sov-1/providers/Microsoft.Insights/metrics",
			answer(sc, series(`{"timeStamp":"2026-11-27T12:00:00Z","total":1}`), series(`{"timeStamp":"2026-11-27T12:00:00Z","total":9}`), series("")))
		g := azGate(&config.AzureMonitorCheck{Resource: "/subscriptions/sub-1/resourceGroups/rg-{{ .Target.Name }}/providers/Microsoft.Web/sites/app-{{ .Target.Name }}",
			Metric: "Http5xx", Aggregation: "Total", Interval: config.Duration(time.Minute), Range: config.Duration(5 * time.Minute)}, "all(result, {# < 5})")
		return wired(t, azureRunner(t, srv, g), "azmon", "sov-1", nil), true
	}}
}

func gcpSubject(policies bool) conformance.Subject {
	var token atomic.Value
	token.Store("ya29.conformance-token-7777")
	return conformance.Subject{Secrets: []string{"ya29.conformance-token-7777"}, Provider: func(t *testing.T, sc conformance.Scenario) (measure.Provider, bool) {
		tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, token.Load())
		}))
		t.Cleanup(tokens.Close)
		svc := &metricService{hang: sc == conformance.Hang, garbage: sc == conformance.BadAnswer}
		svc.series = map[conformance.Scenario][][]float64{conformance.Healthy: {{0.001}}, conformance.Unhealthy: {{0.5}}}[sc]
		threshold := &monitoringpb.AlertPolicy_Condition{DisplayName: "5xx ratio > 5%", Condition: &monitoringpb.AlertPolicy_Condition_ConditionThreshold{
			ConditionThreshold: &monitoringpb.AlertPolicy_Condition_MetricThreshold{Filter: `metric.type="custom.googleapis.com/error_ratio"`,
				Comparison: monitoringpb.ComparisonType_COMPARISON_GT, ThresholdValue: 0.05}}}
		ap := &alertPolicies{policies: map[string]*monitoringpb.AlertPolicy{"projects/acme-prod/alertPolicies/1": {DisplayName: "errors",
			Conditions: []*monitoringpb.AlertPolicy_Condition{threshold}}}}
		addr, trust := startMetricService(t, svc, func(s *grpc.Server) { monitoringpb.RegisterAlertPolicyServiceServer(s, ap) })
		check := &config.GCPMonitoringCheck{Filter: `metric.type="run.googleapis.com/request_latencies"`, Range: config.Duration(5 * time.Minute),
			AlignmentPeriod: config.Duration(time.Minute), Aligner: "ALIGN_MEAN"}
		if policies {
			check = &config.GCPMonitoringCheck{AlertPolicies: []string{"projects/acme-prod/alertPolicies/1"}}
		}
		cond, _ := config.CompileCondition("all(result, {# < 0.01})", true)
		g := &config.Gate{Name: "gcm", GCPMonitoring: check, SuccessCondition: "all(result, {# < 0.01})", Success: cond}
		cfg := &config.Config{Gates: map[string]*config.Gate{"gcm": g},
			Boundaries: map[string]*config.Boundary{"gcp": {Name: "gcp", Cloud: "gcp", Endpoints: map[string]string{"monitoring": addr},
				Identity: map[string]string{"credentialsFile": gcptest.ServiceAccountFile(t, tokens.URL, ""), "project": "acme-prod"}}},
			Targets: []*config.Target{{Name: "svc-1", Boundary: "gcp", Region: "europe-west4"}}}
		r := &Runner{Config: cfg, Clouds: &clouds.Manager{Catalog: catalog.All, Config: cfg}, GoogleOptions: GRPCOptions{trust}}
		t.Cleanup(r.Close)
		return wired(t, r, "gcm", "svc-1", nil), true
	}}
}
