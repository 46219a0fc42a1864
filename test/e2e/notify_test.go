//go:build e2e

package e2e

import (
	"encoding/json"
	"io"
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

// TestWebhooksAreToldWhatRunsNeed: a receiver on loopback is told, in order, that a run started,
// that it waits for an approval, and how it ended (finished; rolled back, then finished), though
// it refuses its first two requests; a dead receiver's failures are journaled, naming the webhook
// and never its URL, and cost the command at most the final flush.
func TestWebhooksAreToldWhatRunsNeed(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var kinds []string
	var refused atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refused.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var m struct{ Kind, Run, Fleet string }
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &m); err != nil || m.Run == "" {
			t.Errorf("webhook body %s: %v", b, err)
		}
		mu.Lock()
		kinds = append(kinds, m.Kind)
		mu.Unlock()
	}))
	defer recv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port nobody answers on
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/hooks/T0/s3cr3t-token"
	ln.Close()

	f := newFleet(t, oneRing(1, "0", "    approval: {required: true}\n"))
	cfg := readFile(t, f.dir+"/rollout.yaml") + `notify:
  - {name: oncall, urlEnv: ONCALL_HOOK}
  - {name: dead, urlEnv: DEAD_HOOK, format: slack, on: [finished]}
`
	f.write("rollout.yaml", cfg)
	f.env = []string{"ONCALL_HOOK=" + recv.URL + "/hook"}
	// A webhook whose URL is not in the environment is an error of the environment: nothing runs.
	if r := f.must(1, "start", "--release", "v1"); !strings.Contains(r.stderr, "notify dead: urlEnv names DEAD_HOOK, which is not set") {
		t.Fatalf("start without DEAD_HOOK: %s", r.stderr)
	}
	f.env = append(f.env, "DEAD_HOOK="+dead)
	f.must(0, "validate")

	f.must(3, "start", "--release", "v1") // waits for its approval
	run := f.status().Run
	f.must(0, "approve", run, "--ring", "only", "--as", "ops", "--reason", "ok")
	began := time.Now()
	r := f.must(0, "start", "--release", "v1")
	if d := time.Since(began); d > 20*time.Second {
		t.Fatalf("the run with a dead webhook took %s", d)
	}
	f.must(3, "start", "--release", "v2", "--var", "fault_tier=main")
	run2 := f.status().Run
	f.must(0, "approve", run2, "--ring", "only", "--as", "ops", "--reason", "ok")
	r2 := f.must(2, "start", "--release", "v2", "--var", "fault_tier=main")

	mu.Lock()
	got := strings.Join(kinds, " ")
	mu.Unlock()
	if want := "started approval finished started approval rolled_back finished"; got != want {
		t.Fatalf("the webhook was told %q, want %q", got, want)
	}
	var failed []rings.Event
	for _, e := range f.journalEvents() {
		if e.Type == rings.NotifyFailed {
			failed = append(failed, e)
		}
	}
	if len(failed) != 2 {
		t.Fatalf("%d notify.failed records, want the dead webhook's two 'finished': %+v", len(failed), failed)
	}
	for _, e := range append(failed, rings.Event{Message: r.stdout + r.stderr + r2.stdout + r2.stderr}) {
		if strings.Contains(e.Message, "s3cr3t") {
			t.Fatalf("the dead webhook's URL was shown: %s", e.Message)
		}
	}
	if !strings.Contains(failed[0].Message, "webhook dead") {
		t.Fatalf("notify.failed does not name the webhook: %s", failed[0].Message)
	}
}
