package healthgate

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

// cloudWatch stands in for CloudWatch, answering the AWS SDK's rpc-v2-cbor protocol: DescribeAlarms
// (one alarm per page, so the SDK pages) and GetMetricData.
type cloudWatch struct {
	*httptest.Server
	mu       sync.Mutex
	alarms   map[string][2]string // name -> state, reason
	values   []float64
	throttle int
	scopes   []string // the SigV4 credential scope of each request
	hang     bool     // answer nothing until the request is cancelled
	garbage  bool     // answer a server error that echoes the request's Authorization
}

func newCloudWatch(t *testing.T) *cloudWatch {
	c := &cloudWatch{alarms: map[string][2]string{}}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.Close)
	return c
}

func (c *cloudWatch) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body) // the server sees a client go only once the body is read
	c.mu.Lock()
	hang := c.hang
	c.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.garbage {
		w.WriteHeader(500)
		fmt.Fprintf(w, "internal error; you sent %s", r.Header.Get("Authorization"))
		return
	}
	if _, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
		c.scopes = append(c.scopes, strings.SplitN(cred, ",", 2)[0])
	}
	v, err := cbor.Decode(body)
	in, _ := v.(cbor.Map)
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	if err != nil && len(body) > 0 {
		w.WriteHeader(400)
		return
	}
	if c.throttle > 0 {
		c.throttle--
		w.Header().Set("X-Amzn-Query-Error", "Throttling;Sender")
		w.WriteHeader(400)
		w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("com.amazonaws.cloudwatch#Throttling"), "message": cbor.String("Rate exceeded")}))
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/operation/DescribeAlarms"):
		var names []string
		if l, ok := in["AlarmNames"].(cbor.List); ok {
			for _, n := range l {
				names = append(names, string(n.(cbor.String)))
			}
		}
		prefix, _ := in["AlarmNamePrefix"].(cbor.String)
		var match []string
		for name := range c.alarms {
			if (len(names) == 0 || slices.Contains(names, name)) && strings.HasPrefix(name, string(prefix)) {
				match = append(match, name)
			}
		}
		sort.Strings(match)
		start := 0
		if tok, ok := in["NextToken"].(cbor.String); ok {
			fmt.Sscanf(string(tok), "%d", &start)
		}
		out := cbor.Map{}
		var metric cbor.List
		if start < len(match) {
			a := c.alarms[match[start]]
			metric = append(metric, cbor.Map{"AlarmName": cbor.String(match[start]), "StateValue": cbor.String(a[0]), "StateReason": cbor.String(a[1])})
			if start+1 < len(match) {
				out["NextToken"] = cbor.String(fmt.Sprint(start + 1))
			}
		}
		out["MetricAlarms"] = metric
		out["CompositeAlarms"] = cbor.List{}
		w.Write(cbor.Encode(out))
	case strings.HasSuffix(r.URL.Path, "/operation/GetMetricData"):
		var vals, stamps cbor.List
		for i, x := range c.values {
			vals = append(vals, cbor.Float64(x))
			stamps = append(stamps, &cbor.Tag{ID: 1, Value: cbor.Float64(float64(time.Now().Add(-time.Duration(i) * time.Minute).Unix()))})
		}
		w.Write(cbor.Encode(cbor.Map{"MetricDataResults": cbor.List{cbor.Map{"Id": cbor.String("m"), "Label": cbor.String("5xx"),
			"Values": vals, "Timestamps": stamps, "StatusCode": cbor.String("Complete")}}}))
	default:
		w.WriteHeader(404)
	}
}

func govCloudRunner(t *testing.T, endpoint string, g *config.Gate) *Runner {
	cfg := &config.Config{Gates: map[string]*config.Gate{g.Name: g},
		Boundaries: map[string]*config.Boundary{"aws-us-gov": {Name: "aws-us-gov", Cloud: "aws", Settings: map[string]string{"partition": "aws-us-gov"},
			Identity:  map[string]string{"accessKeyIdEnv": "GOV_KEY", "secretAccessKeyEnv": "GOV_SECRET"},
			Endpoints: map[string]string{"monitoring": endpoint}}},
		Targets: []*config.Target{{Name: "gov-w1", Boundary: "aws-us-gov", Region: "us-gov-west-1"}}}
	env := map[string]string{"GOV_KEY": "AKIAGOVKEY000001", "GOV_SECRET": "gov-secret"}
	return &Runner{Config: cfg, Clouds: &clouds.Manager{Catalog: catalog.All, Config: cfg, Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}}
}

func cwGate(c *config.CloudWatchCheck, tweak func(*config.Gate)) *config.Gate {
	g := &config.Gate{Name: "alarms", CloudWatch: c, Interval: config.Duration(20 * time.Millisecond), Timeout: config.Duration(5 * time.Second),
		Consecutive: 1, FailureLimit: 1, InconclusiveLimit: 1, ConsecutiveErrorLimit: 2, NoData: config.NoDataFail}
	if c.InsufficientData == "" {
		c.InsufficientData = config.NoDataFail
	}
	if tweak != nil {
		tweak(g)
	}
	return g
}

func measureOnce(t *testing.T, r *Runner, g *config.Gate) (rings.Verdict, []rings.Measurement) {
	t.Helper()
	var ms []rings.Measurement
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v := r.Target(ctx, rings.GateRequest{Ring: "gov", Target: "gov-w1", Gates: []string{g.Name}}, func(m rings.Measurement) { ms = append(ms, m) })
	return v, ms
}

func TestCloudWatchAlarms(t *testing.T) {
	cw := newCloudWatch(t)
	cw.alarms["gov-w1-5xx"] = [2]string{"OK", "fine"}
	cw.alarms["gov-w1-latency"] = [2]string{"OK", "fine"}
	cw.alarms["other-5xx"] = [2]string{"ALARM", "not ours"}
	prefix := &config.CloudWatchCheck{AlarmPrefix: "{{ .Target.Name }}-"}

	r := govCloudRunner(t, cw.URL, cwGate(prefix, nil))
	v, ms := measureOnce(t, r, r.Config.Gates["alarms"])
	if !v.Passed() || !strings.Contains(ms[0].Message, "cloudwatch aws-us-gov us-gov-west-1: 2 alarm(s) OK") {
		t.Fatalf("%+v %+v", v, ms)
	}
	// Signed with the boundary's own key, for GovCloud's region.
	if s := cw.scopes[0]; !strings.HasPrefix(s, "AKIAGOVKEY000001/") || !strings.Contains(s, "/us-gov-west-1/monitoring/aws4_request") {
		t.Fatalf("scope %q", s)
	}

	cw.alarms["gov-w1-latency"] = [2]string{"ALARM", "Threshold Crossed: p99 > 300"}
	v, ms = measureOnce(t, r, r.Config.Gates["alarms"])
	if v.Passed() || !strings.Contains(ms[0].Message, "in ALARM: gov-w1-latency (Threshold Crossed: p99 > 300)") {
		t.Fatalf("alarm: %+v %+v", v, ms)
	}

	cw.alarms["gov-w1-latency"] = [2]string{"INSUFFICIENT_DATA", "no datapoints"}
	if v, _ := measureOnce(t, r, r.Config.Gates["alarms"]); v.Passed() || (v.Decision == Undecided) {
		t.Fatalf("INSUFFICIENT_DATA fails by default: %+v", v)
	}
	r = govCloudRunner(t, cw.URL, cwGate(&config.CloudWatchCheck{AlarmPrefix: "{{ .Target.Name }}-", InsufficientData: "inconclusive"}, nil))
	if v, _ := measureOnce(t, r, r.Config.Gates["alarms"]); !(v.Decision == Undecided) {
		t.Fatalf("insufficientData: inconclusive: %+v", v)
	}

	r = govCloudRunner(t, cw.URL, cwGate(&config.CloudWatchCheck{Alarms: []string{"{{ .Target.Name }}-5xx", "gov-w1-missing"}}, nil))
	if v, ms := measureOnce(t, r, r.Config.Gates["alarms"]); v.Passed() || !strings.Contains(ms[0].Message, "no such alarm: gov-w1-missing") {
		t.Fatalf("missing alarm: %+v %+v", v, ms)
	}

	// Throttled: retried within the interval, then through.
	cw.alarms["gov-w1-latency"] = [2]string{"OK", "fine"}
	cw.throttle = 2
	r = govCloudRunner(t, cw.URL, cwGate(prefix, func(g *config.Gate) { g.Interval = config.Duration(2 * time.Second) }))
	if v, ms := measureOnce(t, r, r.Config.Gates["alarms"]); !v.Passed() || len(ms) != 1 {
		t.Fatalf("throttled twice: %+v %+v", v, ms)
	}
	// Throttled throughout: errors, then the consecutiveErrorLimit fails the gate.
	cw.throttle = 1000
	r = govCloudRunner(t, cw.URL, cwGate(prefix, nil))
	if v, ms := measureOnce(t, r, r.Config.Gates["alarms"]); v.Passed() || ms[0].Outcome != "error" || !strings.Contains(ms[0].Message, "Throttling") ||
		!strings.Contains(v.Message, "the provider failed 2 times in a row") {
		t.Fatalf("throttled: %+v %+v", v, ms)
	}
}

func TestCloudWatchMetric(t *testing.T) {
	cw := newCloudWatch(t)
	cw.values = []float64{0.001, 0.002, 0.004}
	c, _ := config.CompileCondition("all(result, {# < 0.01})", true)
	metric := &config.CloudWatchCheck{Metric: &config.CloudWatchMetric{Namespace: "AWS/ApplicationELB", Name: "HTTPCode_Target_5XX_Count", Stat: "Sum",
		Dimensions: map[string]string{"LoadBalancer": "app/{{ .Target.Name }}/1"}, Period: config.Duration(time.Minute), Range: config.Duration(5 * time.Minute)}}
	r := govCloudRunner(t, cw.URL, cwGate(metric, func(g *config.Gate) { g.Success, g.SuccessCondition = c, "all(result, {# < 0.01})" }))
	v, ms := measureOnce(t, r, r.Config.Gates["alarms"])
	if !v.Passed() || !strings.Contains(ms[0].Message, "Sum AWS/ApplicationELB/HTTPCode_Target_5XX_Count over 5m0s = [0.001 0.002 0.004]") {
		t.Fatalf("%+v %+v", v, ms)
	}
	cw.values = nil
	if v, ms := measureOnce(t, r, r.Config.Gates["alarms"]); v.Passed() || ms[0].Outcome != "no_data" {
		t.Fatalf("no datapoints: %+v %+v", v, ms)
	}
}
