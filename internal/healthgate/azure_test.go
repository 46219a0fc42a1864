package healthgate

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/testsupport/azuretest"
)

// azureRunner: a target in a custom (sovereign) Azure cloud whose Entra and Resource Manager are
// the azuretest server; gates read Azure Monitor there with the boundary's credential.
func azureRunner(t *testing.T, srv *azuretest.Cloud, g *config.Gate) *Runner {
	cfg := &config.Config{Gates: map[string]*config.Gate{g.Name: g},
		Boundaries: map[string]*config.Boundary{"azure-sov": {Name: "azure-sov", Cloud: "azure", Settings: map[string]string{"environment": "custom"},
			Endpoints: map[string]string{"authorityHost": srv.URL + "/", "resourceManager": srv.URL + "/", "audience": srv.URL},
			Identity:  map[string]string{"tenantId": "tenant-sov", "clientId": "app-1", "clientSecretEnv": "SOV_SECRET", "subscriptionId": "sub-1"}}},
		Targets: []*config.Target{{Name: "sov-1", Boundary: "azure-sov", Region: "francecentral-sov"}}}
	env := map[string]string{"SOV_SECRET": "the-right-secret"}
	return &Runner{Config: cfg, Clouds: &clouds.Manager{Catalog: catalog.All, Config: cfg, Client: srv.Client(), Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}}
}

func azGate(a *config.AzureMonitorCheck, success string) *config.Gate {
	g := &config.Gate{Name: "azmon", AzureMonitor: a, Interval: config.Duration(time.Second), Timeout: config.Duration(5 * time.Second),
		Consecutive: 1, FailureLimit: 1, InconclusiveLimit: 1, ConsecutiveErrorLimit: 1, NoData: config.NoDataFail}
	if success != "" {
		g.SuccessCondition = success
		g.Success, _ = config.CompileCondition(success, true)
	}
	return g
}

func runAzure(t *testing.T, r *Runner) (rings.Verdict, []rings.Measurement) {
	t.Helper()
	var ms []rings.Measurement
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v := r.Target(ctx, rings.GateRequest{Ring: "sov", Target: "sov-1", Gates: []string{"azmon"}}, func(m rings.Measurement) { ms = append(ms, m) })
	return v, ms
}

func TestAzureMonitorMetric(t *testing.T) {
	srv := azuretest.New(t, "tenant-sov", "aud")
	var totals atomic.Value
	totals.Store("1, 0, 2")
	var throttle atomic.Int32
	var query atomic.Value
	srv.Mux.HandleFunc("/subscriptions/sub-1/resourceGroups/rg-sov-1/providers/Microsoft.Web/sites/app-sov-1/providers/Microsoft.Insights/metrics",
		func(w http.ResponseWriter, r *http.Request) {
			query.Store(r.URL.RawQuery)
			if throttle.Add(-1) >= 0 {
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, `{"error":{"code":"TooManyRequests","message":"throttled"}}`)
				return
			}
			var data []string
			for i, v := range strings.Split(totals.Load().(string), ", ") {
				if v == "" {
					continue
				}
				data = append(data, fmt.Sprintf(`{"timeStamp":"2026-11-27T12:0%d:00Z","total":%s}`, i, v))
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"timespan":"x","interval":"PT1M","namespace":"Microsoft.Web/sites","resourceregion":"francecentral-sov","value":[{"id":"m","type":"Microsoft.Insights/metrics",
"name":{"value":"Http5xx"},"unit":"Count","errorCode":"Success","timeseries":[{"metadatavalues":[],"data":[%s]}]}]}`, strings.Join(data, ","))
		})
	g := azGate(&config.AzureMonitorCheck{Resource: "/subscriptions/sub-1/resourceGroups/rg-{{ .Target.Name }}/providers/Microsoft.Web/sites/app-{{ .Target.Name }}",
		Metric: "Http5xx", Aggregation: "Total", Interval: config.Duration(time.Minute), Range: config.Duration(5 * time.Minute)}, "all(result, {# < 5})")
	r := azureRunner(t, srv, g)
	v, ms := runAzure(t, r)
	if !v.Passed() || !strings.Contains(ms[0].Message, "azure monitor (custom) Total Http5xx of /subscriptions/sub-1/resourceGroups/rg-sov-1") || !strings.Contains(ms[0].Message, "= [1 0 2]") {
		t.Fatalf("%+v %+v", v, ms)
	}
	if q := query.Load().(string); !strings.Contains(q, "metricnames=Http5xx") || !strings.Contains(q, "aggregation=Total") || !strings.Contains(q, "interval=PT1M") {
		t.Fatalf("query %s", q)
	}
	if srv.Tokens.Load() == 0 {
		t.Fatal("no token was asked of the boundary's own authority")
	}
	totals.Store("1, 9")
	if v, _ := runAzure(t, r); v.Passed() {
		t.Fatal("9 errors passed a limit of 5")
	}
	totals.Store("")
	if v, ms := runAzure(t, r); v.Passed() || ms[0].Outcome != "no_data" {
		t.Fatalf("empty time series: %+v %+v", v, ms)
	}
	totals.Store("0")
	throttle.Store(2)
	if v, ms := runAzure(t, r); !v.Passed() || len(ms) != 1 {
		t.Fatalf("throttled twice, retried within the interval: %+v %+v", v, ms)
	}
}

func TestAzureMonitorAlerts(t *testing.T) {
	srv := azuretest.New(t, "tenant-sov", "aud")
	var fired atomic.Bool
	srv.Mux.HandleFunc("/subscriptions/sub-1/providers/Microsoft.AlertsManagement/alerts", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("targetResourceGroup") != "rg-sov-1" || r.URL.Query().Get("monitorCondition") != "Fired" {
			w.WriteHeader(400)
			return
		}
		if r.URL.Query().Get("page") == "" { // first page: a closed alert, and a link to the next
			fmt.Fprintf(w, `{"value":[{"name":"old","properties":{"essentials":{"severity":"Sev3","monitorCondition":"Fired","alertState":"Closed"}}}],"nextLink":"%s"}`,
				srv.URL+r.URL.Path+"?"+r.URL.RawQuery+"&page=2")
			return
		}
		if fired.Load() {
			fmt.Fprint(w, `{"value":[{"name":"5xx spike","properties":{"essentials":{"severity":"Sev1","monitorCondition":"Fired","alertState":"New"}}}]}`)
			return
		}
		fmt.Fprint(w, `{"value":[]}`)
	})
	r := azureRunner(t, srv, azGate(&config.AzureMonitorCheck{ResourceGroup: "rg-{{ .Target.Name }}"}, ""))
	if v, ms := runAzure(t, r); !v.Passed() || !strings.Contains(ms[0].Message, "alerts of resource group rg-sov-1: none fired") {
		t.Fatalf("%+v %+v", v, ms)
	}
	fired.Store(true)
	if v, ms := runAzure(t, r); v.Passed() || !strings.Contains(ms[0].Message, "fired: 5xx spike (Sev1, New)") {
		t.Fatalf("%+v %+v", v, ms)
	}
}
