package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/resilience"
	"github.com/rollout-dev/rollout/internal/rings"
)

// receiver records the bodies it accepts; it answers 503 to the first fail requests.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
	fail   atomic.Int32
	tries  atomic.Int32
}

func newReceiver(t *testing.T, fail int32) *receiver {
	r := &receiver{}
	r.fail.Store(fail)
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.tries.Add(1)
		if r.fail.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

var fast = resilience.Policy{Attempts: 8, Initial: time.Millisecond, Max: 5 * time.Millisecond}

// aRun is the events of a run that waited for an approval and a person, then rolled back.
func aRun() []rings.Event {
	rel := &rings.ReleaseRef{Name: "v7"}
	return []rings.Event{
		{Type: rings.RunStarted, RunID: "v7-1", Release: rel},
		{Type: rings.RingStarted, RunID: "v7-1", Ring: "canary"},
		{Type: rings.RingApprovalNeeded, RunID: "v7-1", Ring: "canary", Message: "approvers: ops-lead"},
		{Type: rings.RingGateInconclusive, RunID: "v7-1", Ring: "canary", Message: "no data"},
		{Type: rings.RunFinished, RunID: "v7-1", Phase: rings.PhaseRolledBack, Message: "gate healthz failed"},
	}
}

func TestEachKindArrivesOnceInOrder(t *testing.T) {
	r := newReceiver(t, 0)
	n := New([]Receiver{{Name: "ops", URL: r.URL}}, Options{Retry: fast})
	for _, ev := range aRun() {
		n.Publish("svc", ev)
	}
	n.Close(context.Background())
	var kinds []string
	for _, b := range r.got() {
		var m Message
		if err := json.Unmarshal([]byte(b), &m); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, string(m.Kind))
		if m.Fleet != "svc" || m.Run != "v7-1" {
			t.Errorf("message %s", b)
		}
	}
	if got := strings.Join(kinds, " "); got != "started approval inconclusive rolled_back finished" {
		t.Fatalf("kinds %q", got)
	}
}

func TestAReceiverThatFailsFiveTimesStillGetsIt(t *testing.T) {
	r := newReceiver(t, 5)
	var failures []Failure
	n := New([]Receiver{{Name: "ops", URL: r.URL, On: []Kind{Finished}}}, Options{Retry: fast, Failed: func(f Failure) { failures = append(failures, f) }})
	n.Publish("svc", aRun()[4])
	n.Close(context.Background())
	if len(r.got()) != 1 || r.tries.Load() != 6 || len(failures) > 0 {
		t.Fatalf("delivered %d after %d tries, failures %v", len(r.got()), r.tries.Load(), failures)
	}
}

// A receiver that never answers blocks neither Publish nor, past its deadline, Close; what it
// did not get is reported, without its URL.
func TestADeadReceiverDoesNotBlock(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client hanging up
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	secretURL := hang.URL + "/hooks/T0/B0/s3cr3t-token"
	var mu sync.Mutex
	var failures []Failure
	n := New([]Receiver{{Name: "dead", URL: secretURL}}, Options{Retry: fast, Failed: func(f Failure) { mu.Lock(); failures = append(failures, f); mu.Unlock() }})
	start := time.Now()
	for _, ev := range aRun() {
		n.Publish("svc", ev)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("Publish took %s", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	n.Close(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %s past its deadline", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) != 5 {
		t.Fatalf("%d failures reported, want the 5 messages", len(failures))
	}
	for _, f := range failures {
		if strings.Contains(f.Err.Error(), "s3cr3t") || f.Receiver != "dead" {
			t.Fatalf("failure %v (receiver %s) names the secret URL or not the receiver", f.Err, f.Receiver)
		}
	}
}

func TestSlackAndTeamsBodies(t *testing.T) {
	m := Of("svc", aRun()[4])[0]
	slack, _ := Body("slack", m)
	var s map[string]string
	if json.Unmarshal(slack, &s) != nil || !strings.Contains(s["text"], "rolled back") {
		t.Fatalf("slack: %s", slack)
	}
	teams, _ := Body("teams", m)
	var card struct {
		Type        string
		Attachments []struct {
			ContentType string
			Content     struct {
				Type string
				Body []map[string]any
			}
		}
	}
	if json.Unmarshal(teams, &card) != nil || card.Type != "message" || len(card.Attachments) != 1 ||
		card.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" || card.Attachments[0].Content.Type != "AdaptiveCard" {
		t.Fatalf("teams: %s", teams)
	}
	if _, err := Body("pager", m); err == nil {
		t.Fatal("an unknown format was accepted")
	}
}

// A receiver that redirects to another host does not get the payload sent there: the delivery
// fails instead (a 307 made the client POST the whole message to the other host).
func TestAWebhookFollowsNoRedirectToAnotherHost(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	var failures []Failure
	n := New([]Receiver{{Name: "ops", URL: redirect.URL, On: []Kind{Finished}}}, Options{Retry: fast, Failed: func(f Failure) { failures = append(failures, f) }})
	n.Publish("svc", aRun()[4])
	n.Close(context.Background())
	if elsewhere.Load() != 0 || len(failures) != 1 || !strings.Contains(failures[0].Err.Error(), "307") {
		t.Fatalf("another host got %d requests; failures %v", elsewhere.Load(), failures)
	}
}
