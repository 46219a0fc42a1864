// Package jaegertest runs a real trace collector on loopback for tests: Jaeger's all-in-one
// (built by `make tools` from the Go module proxy), in memory, receiving OTLP over HTTP, and reads
// back what it holds through its query API.
package jaegertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rollout-dev/rollout/internal/testsupport/servertest"
)

// Server is a running Jaeger.
type Server struct {
	OTLP  string // the OTLP/HTTP receiver's base URL (spans go to OTLP+"/v1/traces")
	query string
}

// Start runs Jaeger ($ROLLOUT_JAEGER, which the Makefile sets from .tools/) on free loopback
// ports; it stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := servertest.Binary(t, "ROLLOUT_JAEGER", "jaeger")
	otlp, query := servertest.FreeAddr(t), servertest.FreeAddr(t)
	args := []string{"--collector.otlp.http.host-port=" + otlp, "--query.http-server.host-port=" + query}
	for _, flag := range []string{"collector.otlp.grpc.host-port", "collector.grpc-server.host-port", "collector.http-server.host-port",
		"query.grpc-server.host-port", "admin.http.host-port"} {
		args = append(args, "--"+flag+"="+servertest.FreeAddr(t))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"SPAN_STORAGE_TYPE=memory"}
	dir := t.TempDir()
	servertest.Start(t, cmd, dir, "jaeger", otlp)
	servertest.WaitListen(t, "jaeger's query API", query, filepath.Join(dir, "jaeger.log"))
	return &Server{OTLP: "http://" + otlp, query: "http://" + query}
}

// Span is a span as the query API returns it.
type Span struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

// Tag is the value of a span's tag ("" when it has none).
func (s Span) Tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// Spans are every span of service's traces that Jaeger holds.
func (s *Server) Spans(t testing.TB, service string) []Span {
	t.Helper()
	resp, err := http.Get(s.query + "/api/traces?limit=100&service=" + url.QueryEscape(service))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data []struct {
			Spans []Span `json:"spans"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("jaeger query: %v", err)
	}
	var spans []Span
	for _, tr := range out.Data {
		spans = append(spans, tr.Spans...)
	}
	return spans
}
