package healthgate

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/testsupport/gcptest"
)

// metricService stands in for Cloud Monitoring's MetricService over gRPC with TLS: ListTimeSeries
// answers one series per page, so the client pages.
type metricService struct {
	monitoringpb.UnimplementedMetricServiceServer
	mu       sync.Mutex
	series   [][]float64
	throttle int
	requests []*monitoringpb.ListTimeSeriesRequest
	auth     []string
	hang     bool // answer nothing until the call is cancelled
	garbage  bool // fail the call with a message that echoes its credentials
}

func (m *metricService) ListTimeSeries(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest) (*monitoringpb.ListTimeSeriesResponse, error) {
	m.mu.Lock()
	hang := m.hang
	m.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	md, _ := metadata.FromIncomingContext(ctx)
	m.auth = append(m.auth, strings.Join(md.Get("authorization"), ""))
	if m.garbage {
		return nil, status.Error(codes.Internal, "backend confused; your credentials were "+strings.Join(md.Get("authorization"), ""))
	}
	m.requests = append(m.requests, req)
	if m.throttle > 0 {
		m.throttle--
		return nil, status.Error(codes.ResourceExhausted, "Quota exceeded for quota metric 'Time series queries'")
	}
	i := 0
	fmt.Sscanf(req.PageToken, "%d", &i)
	if i >= len(m.series) {
		return &monitoringpb.ListTimeSeriesResponse{}, nil
	}
	ts := &monitoringpb.TimeSeries{}
	for _, v := range m.series[i] {
		ts.Points = append(ts.Points, &monitoringpb.Point{Value: &monitoringpb.TypedValue{Value: &monitoringpb.TypedValue_DoubleValue{DoubleValue: v}}})
	}
	resp := &monitoringpb.ListTimeSeriesResponse{TimeSeries: []*monitoringpb.TimeSeries{ts}}
	if i+1 < len(m.series) {
		resp.NextPageToken = fmt.Sprint(i + 1)
	}
	return resp, nil
}

// alertPolicies stands in for AlertPolicyService: policies by name.
type alertPolicies struct {
	monitoringpb.UnimplementedAlertPolicyServiceServer
	mu       sync.Mutex
	policies map[string]*monitoringpb.AlertPolicy
}

func (a *alertPolicies) GetAlertPolicy(_ context.Context, req *monitoringpb.GetAlertPolicyRequest) (*monitoringpb.AlertPolicy, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.policies[req.Name]
	if !ok {
		return nil, status.Error(codes.NotFound, "no alert policy "+req.Name)
	}
	return p, nil
}

func startMetricService(t *testing.T, svc *metricService, more ...func(*grpc.Server)) (string, option.ClientOption) {
	cert, pool := gcptest.LoopbackTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	monitoringpb.RegisterMetricServiceServer(s, svc)
	for _, register := range more {
		register(s)
	}
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String(), option.WithGRPCDialOption(grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
}

func TestGCPMonitoring(t *testing.T) {
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"ya29.boundary","token_type":"Bearer","expires_in":3600}`)
	}))
	defer tokens.Close()
	svc := &metricService{series: [][]float64{{0.001, 0.002}, {0.003}}}
	policies := &alertPolicies{policies: map[string]*monitoringpb.AlertPolicy{}}
	addr, trust := startMetricService(t, svc, func(s *grpc.Server) { monitoringpb.RegisterAlertPolicyServiceServer(s, policies) })

	runner := func(universe, keyUniverse string, alertPolicies ...string) *Runner {
		success := "all(result, {# < 0.01})"
		cond, _ := config.CompileCondition(success, true)
		g := &config.Gate{Name: "gcm", GCPMonitoring: &config.GCPMonitoringCheck{Filter: `metric.type="run.googleapis.com/request_latencies" AND resource.labels.service_name="{{ .Target.Name }}"`,
			Range: config.Duration(5 * time.Minute), AlignmentPeriod: config.Duration(time.Minute), Aligner: "ALIGN_MEAN", Reducer: "REDUCE_MEAN", AlertPolicies: alertPolicies},
			SuccessCondition: success, Success: cond, Interval: config.Duration(2 * time.Second), Timeout: config.Duration(5 * time.Second),
			Consecutive: 1, FailureLimit: 1, InconclusiveLimit: 1, ConsecutiveErrorLimit: 1, NoData: config.NoDataFail}
		cfg := &config.Config{Gates: map[string]*config.Gate{"gcm": g},
			Boundaries: map[string]*config.Boundary{"gcp": {Name: "gcp", Cloud: "gcp", Settings: map[string]string{"universeDomain": universe}, Endpoints: map[string]string{"monitoring": addr},
				Identity: map[string]string{"credentialsFile": gcptest.ServiceAccountFile(t, tokens.URL, keyUniverse), "project": "acme-prod"}}},
			Targets: []*config.Target{{Name: "svc-1", Boundary: "gcp", Region: "europe-west4"}}}
		r := &Runner{Config: cfg, Clouds: &clouds.Manager{Catalog: catalog.All, Config: cfg}, GoogleOptions: GRPCOptions{trust}}
		t.Cleanup(r.Close)
		return r
	}
	run := func(r *Runner) (rings.Verdict, []rings.Measurement) {
		var ms []rings.Measurement
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v := r.Target(ctx, rings.GateRequest{Ring: "main", Target: "svc-1", Gates: []string{"gcm"}}, func(m rings.Measurement) { ms = append(ms, m) })
		return v, ms
	}

	r := runner("", "")
	v, ms := run(r)
	if !v.Passed() || !strings.Contains(ms[0].Message, "= [0.001 0.002 0.003] (2 series)") {
		t.Fatalf("%+v %+v", v, ms)
	}
	req := svc.requests[0]
	if req.Name != "projects/acme-prod" || !strings.Contains(req.Filter, `service_name="svc-1"`) || req.Aggregation.GetCrossSeriesReducer() != monitoringpb.Aggregation_REDUCE_MEAN ||
		req.Aggregation.GetPerSeriesAligner() != monitoringpb.Aggregation_ALIGN_MEAN || req.Interval.EndTime.AsTime().Sub(req.Interval.StartTime.AsTime()) != 5*time.Minute {
		t.Fatalf("request %v", req)
	}
	if svc.auth[0] != "Bearer ya29.boundary" {
		t.Fatalf("authorization %q: want the boundary's credential", svc.auth[0])
	}

	svc.series = [][]float64{{0.001}, {0.5}}
	if v, _ := run(r); v.Passed() {
		t.Fatal("0.5 passed a 0.01 limit")
	}
	svc.series = nil
	if v, ms := run(r); v.Passed() || ms[0].Outcome != "no_data" {
		t.Fatalf("no series: %+v %+v", v, ms)
	}
	svc.series = [][]float64{{0.001}}
	svc.throttle = 2
	if v, ms := run(r); !v.Passed() || len(ms) != 1 {
		t.Fatalf("quota exceeded twice, retried: %+v %+v", v, ms)
	}
	// A key of the commercial universe in a boundary of another: refused before any query.
	before := len(svc.requests)
	v, ms = run(runner("s3nsapis.fr", ""))
	if v.Passed() || !strings.Contains(ms[0].Message, "universe") || len(svc.requests) != before {
		t.Fatalf("universe mismatch: %+v %+v", v, ms)
	}
}

func TestGCPAlertPolicyState(t *testing.T) {
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"ya29.boundary","token_type":"Bearer","expires_in":3600}`)
	}))
	defer tokens.Close()
	svc := &metricService{series: [][]float64{{0.01}}}
	threshold := &monitoringpb.AlertPolicy_Condition{DisplayName: "5xx ratio > 5%", Condition: &monitoringpb.AlertPolicy_Condition_ConditionThreshold{
		ConditionThreshold: &monitoringpb.AlertPolicy_Condition_MetricThreshold{Filter: `metric.type="custom.googleapis.com/error_ratio"`,
			Comparison: monitoringpb.ComparisonType_COMPARISON_GT, ThresholdValue: 0.05}}}
	policies := &alertPolicies{policies: map[string]*monitoringpb.AlertPolicy{
		"projects/acme-prod/alertPolicies/1": {DisplayName: "errors", Conditions: []*monitoringpb.AlertPolicy_Condition{threshold}},
		"projects/acme-prod/alertPolicies/2": {DisplayName: "absent", Conditions: []*monitoringpb.AlertPolicy_Condition{{DisplayName: "no traffic",
			Condition: &monitoringpb.AlertPolicy_Condition_ConditionAbsent{ConditionAbsent: &monitoringpb.AlertPolicy_Condition_MetricAbsence{Filter: "x"}}}}},
	}}
	addr, trust := startMetricService(t, svc, func(s *grpc.Server) { monitoringpb.RegisterAlertPolicyServiceServer(s, policies) })
	run := func(names ...string) (rings.Verdict, []rings.Measurement) {
		g := &config.Gate{Name: "gcm", GCPMonitoring: &config.GCPMonitoringCheck{AlertPolicies: names}, Interval: config.Duration(time.Second),
			Timeout: config.Duration(5 * time.Second), Consecutive: 1, FailureLimit: 1, InconclusiveLimit: 1, ConsecutiveErrorLimit: 1, NoData: config.NoDataFail}
		cfg := &config.Config{Gates: map[string]*config.Gate{"gcm": g},
			Boundaries: map[string]*config.Boundary{"gcp": {Name: "gcp", Cloud: "gcp", Endpoints: map[string]string{"monitoring": addr},
				Identity: map[string]string{"credentialsFile": gcptest.ServiceAccountFile(t, tokens.URL, ""), "project": "acme-prod"}}},
			Targets: []*config.Target{{Name: "svc-1", Boundary: "gcp", Region: "europe-west4"}}}
		r := &Runner{Config: cfg, Clouds: &clouds.Manager{Catalog: catalog.All, Config: cfg}, GoogleOptions: GRPCOptions{trust}}
		defer r.Close()
		var ms []rings.Measurement
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v := r.Target(ctx, rings.GateRequest{Ring: "main", Target: "svc-1", Gates: []string{"gcm"}}, func(m rings.Measurement) { ms = append(ms, m) })
		return v, ms
	}
	if v, ms := run("projects/acme-prod/alertPolicies/1"); !v.Passed() || !strings.Contains(ms[0].Message, "alert conditions not met: errors / 5xx ratio > 5%") {
		t.Fatalf("%+v %+v", v, ms)
	}
	if f := svc.requests[len(svc.requests)-1].Filter; f != `metric.type="custom.googleapis.com/error_ratio"` {
		t.Fatalf("the condition's own filter was not used: %s", f)
	}
	svc.series = [][]float64{{0.2}}
	if v, ms := run("projects/acme-prod/alertPolicies/1"); v.Passed() || !strings.Contains(ms[0].Message, "alert conditions met: errors / 5xx ratio > 5%: 0.2 > 0.05") {
		t.Fatalf("%+v %+v", v, ms)
	}
	if v, ms := run("projects/acme-prod/alertPolicies/2"); v.Passed() || ms[0].Outcome != "error" || !strings.Contains(ms[0].Message, "not a metric threshold") {
		t.Fatalf("%+v %+v", v, ms)
	}
	policies.policies["projects/acme-prod/alertPolicies/1"].Enabled = wrapperspb.Bool(false)
	if v, ms := run("projects/acme-prod/alertPolicies/1"); v.Passed() || ms[0].Outcome != "no_data" || !strings.Contains(ms[0].Message, "is disabled") {
		t.Fatalf("%+v %+v", v, ms)
	}
}
