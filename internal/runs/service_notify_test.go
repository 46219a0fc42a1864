package runs

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rollout-dev/rollout/internal/rings"
)

// A run's webhooks hear that a ring waits for approval and how the run ends; the webhook's URL,
// a secret, is never in the journal; a webhook whose URL variable is not set stops the start
// before anything is journaled.
func TestServiceNotifiesWebhooks(t *testing.T) {
	var mu sync.Mutex
	var got []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	s := newService(t, true)
	s.edit("rings:\n", "notify:\n  - {name: oncall, urlEnv: ONCALL_HOOK, on: [approval]}\nrings:\n")

	t.Setenv("TF_CLI_CONFIG_FILE", "")
	if f, err := Open(context.Background(), Options{Config: s.dir, TFBin: fakeBinary(t)}); err == nil {
		_, err = f.Start(context.Background(), StartRequest{Release: "v1"})
		f.Close()
		if err == nil || !strings.Contains(err.Error(), "ONCALL_HOOK") {
			t.Fatalf("start without the hook's variable: %v", err)
		}
	} else if !strings.Contains(err.Error(), "ONCALL_HOOK") {
		t.Fatalf("open without the hook's variable: %v", err)
	}
	t.Setenv("ONCALL_HOOK", hook.URL+"/hooks/T0SECRET")
	if lines, _ := s.history(); len(lines) != 0 {
		t.Fatalf("a start refused for its environment journaled a run: %+v", lines)
	}
	id, err := s.start("v1")
	if err != nil || s.phase(id) != rings.PhaseWaiting {
		t.Fatalf("start: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.Contains(got[0], "main") || !strings.Contains(got[0], "approv") {
		t.Fatalf("the hook heard %q", got)
	}
	f := s.open()
	defer f.Close()
	evs, err := f.EventsAfter(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(evs)
	if strings.Contains(string(b), "T0SECRET") {
		t.Fatal("the webhook's URL is in the journal")
	}
}

// A secret release variable (ROLLOUT_VAR_<name>, or declared sensitive) reaches the run but is
// never kept: the release records a marker, and neither the journal nor a report holds the value;
// a release whose module requires a variable nothing sets is refused before anything is journaled.
func TestServiceKeepsNoSecretVariable(t *testing.T) {
	s := newService(t, false)
	if err := os.WriteFile(filepath.Join(s.dir, "terraform", "stamp", "main.tf"), []byte("variable \"db_password\" {\n  type      = string\n  sensitive = true\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.start("v1"); err == nil || !strings.Contains(err.Error(), "db_password") {
		t.Fatalf("a required variable nothing sets: %v", err)
	}
	if lines, _ := s.history(); len(lines) != 0 {
		t.Fatalf("a refused start journaled a run: %+v", lines)
	}
	t.Setenv("ROLLOUT_VAR_db_password", "hunter2-Zq9")
	id, err := s.start("v1")
	if err != nil || s.phase(id) != rings.PhaseSucceeded {
		t.Fatalf("start: %v", err)
	}
	f := s.open()
	defer f.Close()
	rel, err := f.releases.Release(context.Background(), "v1")
	if err != nil || rel.Vars["db_password"] != secretMarker {
		t.Fatalf("the release recorded %v (%v)", rel.Vars["db_password"], err)
	}
	evs, _ := f.EventsAfter(context.Background(), id, 0)
	_, report, _ := f.Report(context.Background(), id, NeedAll)
	b, _ := json.Marshal(evs)
	if strings.Contains(string(b)+string(report), "hunter2") {
		t.Fatal("the secret is in the journal or the report")
	}
}
