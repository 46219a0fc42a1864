package http

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

func TestHTTPProvider(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"status":"ok","checks":{"db":[true]}}`))
		case "/slow":
			time.Sleep(50 * time.Millisecond)
			w.Write([]byte(`{}`))
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		h      HTTP
		passed bool
		msg    string
	}{
		{"status", HTTP{URL: srv.URL + "/ok"}, true, "HTTP 200"},
		{"bad status", HTTP{URL: srv.URL + "/down"}, false, "HTTP 503, want 200"},
		{"json field", HTTP{URL: srv.URL + "/ok", JSONPath: "checks.db.0", Expect: "true"}, true, ""},
		{"json field differs", HTTP{URL: srv.URL + "/ok", JSONPath: "status", Expect: "green"}, false, `status is "ok", want "green"`},
		{"json field missing", HTTP{URL: srv.URL + "/ok", JSONPath: "nope", Expect: "x"}, false, `no field "nope"`},
		{"latency", HTTP{URL: srv.URL + "/slow", MaxLatency: 10 * time.Millisecond}, false, "over maxLatency"},
		{"unreachable is no data", HTTP{URL: "http://127.0.0.1:1/x"}, false, "no data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.h.Measure(context.Background())
			if (m.Outcome == rings.OK) != tc.passed || !strings.Contains(m.Message, tc.msg) {
				t.Fatalf("measurement %+v, want passed=%t containing %q", m, tc.passed, tc.msg)
			}
		})
	}
}

// Many gates polling one endpoint at once keep their connections between measurements: with
// the default client (100 idle connections in all, 2 per host) most rounds would open new
// ones, and over TLS handshake again, for every target every interval.
func TestHTTPGatesReuseConnections(t *testing.T) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	const gates, rounds = 50, 4
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		release := make(chan struct{})
		for g := 0; g < gates; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-release
				if m := (&HTTP{URL: srv.URL}).Measure(context.Background()); m.Outcome != rings.OK {
					t.Error(m.Message)
				}
			}()
		}
		close(release)
		wg.Wait()
	}
	if n := opened.Load(); n > gates+gates/5 {
		t.Fatalf("%d gates measured %d times each opened %d connections, want about %d", gates, rounds, n, gates)
	}
}
