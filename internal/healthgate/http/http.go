// Package http is the http gate provider: a URL's status, a JSON field and a latency limit.
package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/internal/healthgate/measure"
	"github.com/rollout-dev/rollout/internal/redact"
	"github.com/rollout-dev/rollout/internal/rings"
)

// HTTP checks a URL: status code, optionally a JSON field, optionally a latency limit.
type HTTP struct {
	Client       *http.Client
	URL          string
	ExpectStatus int
	JSONPath     string
	Expect       string
	MaxLatency   time.Duration
	Header       http.Header
	Redirects    string // same-host (default), any, none
}

// gateClient is http gates' client when none is given: http.DefaultTransport's settings, but
// keeping an idle connection to each endpoint for every gate polling it (the default keeps 100
// in all and 2 per host), so 1,000 targets measured every second reuse their connections
// instead of opening, and over TLS handshaking, a new one for most measurements.
var gateClient = &http.Client{Transport: func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0 // no limit in all; IdleConnTimeout (90 s) closes what is no longer polled
	t.MaxIdleConnsPerHost = 1024
	return t
}()}

func (h *HTTP) Measure(ctx context.Context) rings.Measurement {
	start := time.Now()
	m := rings.Measurement{At: start, Outcome: rings.Failed}
	shown := redact.URL(h.URL) // a URL's credentials and query values are never printed
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		m.Message = fmt.Sprintf("bad url %q: %v", shown, redact.URLsIn(err.Error()))
		return m
	}
	maps.Copy(req.Header, h.Header)
	client := h.Client
	if client == nil {
		client = gateClient
	}
	c := *client
	c.CheckRedirect = h.checkRedirect
	resp, err := c.Do(req)
	if err != nil {
		m.Message = fmt.Sprintf("GET %s: no data: %v", shown, redact.URLsIn(err.Error()))
		return m
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	took := time.Since(start)
	want := h.ExpectStatus
	if want == 0 {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		m.Message = fmt.Sprintf("GET %s: HTTP %d, want %d: %s", shown, resp.StatusCode, want, measure.Snippet(body))
		return m
	}
	if h.MaxLatency > 0 && took > h.MaxLatency {
		m.Message = fmt.Sprintf("GET %s: took %s, over maxLatency %s", shown, took.Round(time.Millisecond), h.MaxLatency)
		return m
	}
	if h.JSONPath != "" {
		got, err := jsonField(body, h.JSONPath)
		if err != nil {
			m.Message = fmt.Sprintf("GET %s: %v", shown, err)
			return m
		}
		if got != h.Expect {
			m.Message = fmt.Sprintf("GET %s: %s is %q, want %q", shown, h.JSONPath, got, h.Expect)
			return m
		}
	}
	m.Outcome = rings.OK
	m.Message = fmt.Sprintf("GET %s: HTTP %d in %s", shown, resp.StatusCode, took.Round(time.Millisecond))
	return m
}

// checkRedirect follows a redirect within the gate's own host (same-host, the default), to any
// host (any), or never (none): an unfollowed redirect's own answer is what the gate judges, so a
// compromised endpoint cannot send the gate to judge somebody else's healthy page.
func (h *HTTP) checkRedirect(req *http.Request, via []*http.Request) error {
	switch {
	case len(via) >= 10:
		return errors.New("stopped after 10 redirects")
	case h.Redirects == "none":
		return http.ErrUseLastResponse
	case h.Redirects == "any":
		return nil
	case req.URL.Host != via[0].URL.Host:
		return http.ErrUseLastResponse
	}
	return nil
}

// jsonField reads a dotted path (a.b.0.c) from a JSON document and formats it as a string.
func jsonField(body []byte, path string) (string, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("body is not JSON: %v", err)
	}
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[part]; !ok {
				return "", fmt.Errorf("no field %q in the body (path %s)", part, path)
			}
		case []any:
			var i int
			if _, err := fmt.Sscanf(part, "%d", &i); err != nil || i < 0 || i >= len(x) {
				return "", fmt.Errorf("no element %q in the body (path %s)", part, path)
			}
			v = x[i]
		default:
			return "", fmt.Errorf("nothing at %s in the body", path)
		}
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case nil:
		return "null", nil
	default:
		b, _ := json.Marshal(x)
		return string(b), nil
	}
}

var (
	_ measure.Provider = (*HTTP)(nil)
)
