// Package azuremonitor is the azureMonitor gate provider: a resource's metric, or the alerts of a
// resource group, in the boundary's own Azure cloud.
package azuremonitor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	azpolicy "github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/monitor/azquery"
	"github.com/rollout-dev/rollout/internal/healthgate/measure"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Metric reads one metric of a resource through the Azure Monitor query module, from the
// boundary's own cloud (Resource Manager endpoint and audience of that cloud).
type Metric struct {
	Client      *azquery.MetricsClient
	Where       string // the Azure environment, for messages
	Resource    string
	Metric      string
	Namespace   string
	Aggregation string
	Interval    time.Duration
	Range       time.Duration
	Judge       measure.Conditions
}

// NewMetricsClient is an azquery metrics client for a cloud: its Resource Manager endpoint,
// with tokens for that cloud's own audience.
func NewMetricsClient(cred azcore.TokenCredential, cc cloud.Configuration, client *http.Client) (*azquery.MetricsClient, error) {
	rm := cc.Services[cloud.ResourceManager]
	services := map[cloud.ServiceName]cloud.ServiceConfiguration{}
	for k, v := range cc.Services {
		services[k] = v
	}
	services[azquery.ServiceNameMetrics] = cloud.ServiceConfiguration{Endpoint: strings.TrimSuffix(rm.Endpoint, "/"), Audience: strings.TrimSuffix(rm.Endpoint, "/")}
	cc.Services = services
	return azquery.NewMetricsClient(cred, &azquery.MetricsClientOptions{ClientOptions: azcore.ClientOptions{Cloud: cc, Transport: client,
		Retry: azpolicy.RetryOptions{MaxRetries: -1}}})
}

func (a *Metric) Measure(ctx context.Context) rings.Measurement {
	now := time.Now()
	m := rings.Measurement{At: now, Outcome: rings.Error}
	agg := azquery.AggregationType(a.Aggregation)
	opts := &azquery.MetricsClientQueryResourceOptions{MetricNames: &a.Metric, Aggregation: []*azquery.AggregationType{&agg},
		Interval: ptr(isoDuration(a.Interval)), Timespan: ptr(azquery.NewTimeInterval(now.Add(-a.Range).UTC(), now.UTC()))}
	if a.Namespace != "" {
		opts.MetricNamespace = &a.Namespace
	}
	what := fmt.Sprintf("azure monitor (%s) %s %s of %s over %s", a.Where, a.Aggregation, a.Metric, a.Resource, a.Range)
	resp, err := a.Client.QueryResource(ctx, a.Resource, opts)
	if err != nil {
		m.Message = fmt.Sprintf("%s: %s", what, measure.OneLine(err))
		return m
	}
	var vals []float64
	for _, metric := range resp.Value {
		if metric.ErrorCode != nil && *metric.ErrorCode != "Success" {
			m.Message = fmt.Sprintf("%s: %s: %s", what, *metric.ErrorCode, deref(metric.ErrorMessage))
			return m
		}
		for _, ts := range metric.TimeSeries {
			for _, d := range ts.Data {
				var v *float64
				switch a.Aggregation {
				case "Total":
					v = d.Total
				case "Maximum":
					v = d.Maximum
				case "Minimum":
					v = d.Minimum
				case "Count":
					v = d.Count
				default:
					v = d.Average
				}
				if v != nil { // a time grain without data has no value: not a zero
					vals = append(vals, *v)
				}
			}
		}
	}
	m.Outcome, m.Message = a.Judge.Judged(what, vals)
	return m
}

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// isoDuration writes a time grain as ISO 8601 (PT1M, PT5M, PT1H).
func isoDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("PT%dH", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("PT%dM", d/time.Minute)
	}
	return fmt.Sprintf("PT%dS", max(int64(d/time.Second), 1))
}

// Alerts reads the alerts fired on a resource group (Azure Monitor's Alerts Management API,
// through the SDK's Resource Manager pipeline): any alert fired and not closed fails.
type Alerts struct {
	Pipeline       runtime.Pipeline
	Endpoint       string // the cloud's Resource Manager endpoint
	Where          string
	SubscriptionID string
	ResourceGroup  string
}

// NewPipeline is a Resource Manager pipeline for a cloud: bearer tokens for its audience.
func NewPipeline(cred azcore.TokenCredential, cc cloud.Configuration, client *http.Client) (runtime.Pipeline, string, error) {
	rm := cc.Services[cloud.ResourceManager]
	c, err := azcore.NewClient("rollout.healthgate", "v1.0.0", runtime.PipelineOptions{
		PerRetry: []azpolicy.Policy{runtime.NewBearerTokenPolicy(cred, []string{strings.TrimSuffix(rm.Audience, "/") + "/.default"}, nil)},
	}, &azcore.ClientOptions{Cloud: cc, Transport: client, Retry: azpolicy.RetryOptions{MaxRetries: -1}})
	if err != nil {
		return runtime.Pipeline{}, "", err
	}
	return c.Pipeline(), strings.TrimSuffix(rm.Endpoint, "/"), nil
}

func (a *Alerts) Measure(ctx context.Context) rings.Measurement {
	m := rings.Measurement{At: time.Now(), Outcome: rings.Error}
	what := fmt.Sprintf("azure monitor (%s) alerts of resource group %s", a.Where, a.ResourceGroup)
	q := url.Values{"api-version": {"2019-05-05-preview"}, "targetResourceGroup": {a.ResourceGroup}, "monitorCondition": {"Fired"}}
	next := fmt.Sprintf("%s/subscriptions/%s/providers/Microsoft.AlertsManagement/alerts?%s", a.Endpoint, url.PathEscape(a.SubscriptionID), q.Encode())
	var fired []string
	for pages := 0; next != "" && pages < 50; pages++ {
		req, err := runtime.NewRequest(ctx, http.MethodGet, next)
		if err != nil {
			m.Message = fmt.Sprintf("%s: %v", what, err)
			return m
		}
		resp, err := a.Pipeline.Do(req)
		if err != nil {
			m.Message = fmt.Sprintf("%s: %s", what, measure.OneLine(err))
			return m
		}
		if !runtime.HasStatusCode(resp, http.StatusOK) {
			m.Message = fmt.Sprintf("%s: %s", what, measure.OneLine(runtime.NewResponseError(resp)))
			return m
		}
		var page struct {
			Value []struct {
				Name       string `json:"name"`
				Properties struct {
					Essentials struct {
						Severity         string `json:"severity"`
						MonitorCondition string `json:"monitorCondition"`
						AlertState       string `json:"alertState"`
						AlertRule        string `json:"alertRule"`
					} `json:"essentials"`
				} `json:"properties"`
			} `json:"value"`
			NextLink string `json:"nextLink"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			m.Message = fmt.Sprintf("%s: unreadable answer: %v", what, err)
			return m
		}
		for _, al := range page.Value {
			e := al.Properties.Essentials
			if e.MonitorCondition == "Fired" && e.AlertState != "Closed" {
				fired = append(fired, fmt.Sprintf("%s (%s, %s)", al.Name, e.Severity, e.AlertState))
			}
		}
		next = page.NextLink
	}
	if len(fired) > 0 {
		m.Outcome, m.Message = rings.Failed, fmt.Sprintf("%s: fired: %s", what, strings.Join(fired, "; "))
		return m
	}
	m.Outcome, m.Message = rings.OK, what+": none fired"
	return m
}

var (
	_ measure.Provider = (*Metric)(nil)
	_ measure.Provider = (*Alerts)(nil)
)
