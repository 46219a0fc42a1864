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

	"github.com/rollout-dev/rollout/internal/clouds"
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
}

func (m *metricService) ListTimeSeries(ctx context.Context, req *monitoringpb.ListTimeSeriesRequest) (*monitoringpb.ListTimeSeriesResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	md, _ := metadata.FromIncomingContext(ctx)
	m.auth = append(m.auth, strings.Join(md.Get("authorization"), ""))
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

func startMetricService(t *testing.T, svc *metricService) (string, option.ClientOption) {
	cert, pool := gcptest.LoopbackTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	monitoringpb.RegisterMetricServiceServer(s, svc)
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
	addr, trust := startMetricService(t, svc)

	runner := func(universe, keyUniverse string) *Runner {
		success := "all(result, {# < 0.01})"
		cond, _ := config.CompileCondition(success, true)
		g := &config.Gate{Name: "gcm", GCPMonitoring: &config.GCPMonitoringCheck{Filter: `metric.type="run.googleapis.com/request_latencies" AND resource.labels.service_name="{{ .Target.Name }}"`,
			Range: config.Duration(5 * time.Minute), AlignmentPeriod: config.Duration(time.Minute), Aligner: "ALIGN_MEAN", Reducer: "REDUCE_MEAN"},
			SuccessCondition: success, Success: cond, Interval: config.Duration(2 * time.Second), Timeout: config.Duration(5 * time.Second),
			Consecutive: 1, FailureLimit: 1, InconclusiveLimit: 1, ConsecutiveErrorLimit: 1, NoData: config.NoDataFail}
		cfg := &config.Config{Gates: map[string]*config.Gate{"gcm": g},
			Boundaries: map[string]*config.Boundary{"gcp": {Name: "gcp", Cloud: "gcp", UniverseDomain: universe, Endpoints: map[string]string{"monitoring": addr},
				Identity: map[string]string{"credentialsFile": gcptest.ServiceAccountFile(t, tokens.URL, keyUniverse), "project": "acme-prod"}}},
			Targets: []*config.Target{{Name: "svc-1", Boundary: "gcp", Region: "europe-west4"}}}
		r := &Runner{Config: cfg, Clouds: &clouds.Manager{Config: cfg}, GoogleOptions: GRPCOptions{trust}}
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
	if !v.Passed || !strings.Contains(ms[0].Message, "= [0.001 0.002 0.003] (2 series)") {
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
	if v, _ := run(r); v.Passed {
		t.Fatal("0.5 passed a 0.01 limit")
	}
	svc.series = nil
	if v, ms := run(r); v.Passed || ms[0].Outcome != "no_data" {
		t.Fatalf("no series: %+v %+v", v, ms)
	}
	svc.series = [][]float64{{0.001}}
	svc.throttle = 2
	if v, ms := run(r); !v.Passed || len(ms) != 1 {
		t.Fatalf("quota exceeded twice, retried: %+v %+v", v, ms)
	}
	// A key of the commercial universe in a boundary of another: refused before any query.
	before := len(svc.requests)
	v, ms = run(runner("s3nsapis.fr", ""))
	if v.Passed || !strings.Contains(ms[0].Message, "universe") || len(svc.requests) != before {
		t.Fatalf("universe mismatch: %+v %+v", v, ms)
	}
}
