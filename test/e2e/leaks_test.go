//go:build e2e

package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
)

func reverse(s string) string {
	r := []rune(s)
	slices.Reverse(r)
	return string(r)
}

// Nothing leaves a boundary through a gate or a webhook: a gate's token does not go to a host an
// environment file chose (the label of a target); a command gate of a gov target sees neither the
// commercial boundary's secret nor the journal's password (the gate printed them reversed, past
// the redaction); a webhook that redirects to another host does not get the payload sent there.
func TestNothingLeavesABoundaryThroughAGateOrAWebhook(t *testing.T) {
	t.Parallel()
	var probed, elsewhere atomic.Int32
	var authSeen atomic.Value
	probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probed.Add(1)
		if a := r.Header.Get("Authorization"); a != "" {
			authSeen.Store(a)
		}
	}))
	defer probe.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/collect", http.StatusTemporaryRedirect)
	}))
	defer hook.Close()

	host := strings.TrimPrefix(probe.URL, "http://")
	f := newFleet(t, fleetSpec{
		boundaries: "\n  local-a: {cloud: local, passEnv: [COM_SECRET]}\n  local-b: {cloud: local, passEnv: [GOV_SECRET]}",
		rings:      "  - name: gov\n    targets: {boundaries: [local-b]}\n    gates: [healthz, envgate]\n  - name: probe\n    targets: {boundaries: [local-a]}\n    gates: [creds]\n",
		targets: "targets:\n" + targetsYAML("gov", "local-b", "gov", 1, "") +
			"  - name: com-1\n    boundary: local-a\n    region: r1\n    labels: {tier: com, probe: \"" + host + "\"}\n",
		gates: defaultGates + `  envgate:
    command: {run: [sh, -c, 'printf "%s|%s|%s" "$COM_SECRET" "$PGPASSWORD" "$GOV_SECRET" | rev']}
    interval: 100ms
    timeout: 10s
  creds:
    http: {url: 'http://{{ index .Target.Labels "probe" }}/healthz', headers: {Authorization: {env: GATE_TOKEN, prefix: "Bearer "}}}
    interval: 100ms
    timeout: 5s
    failureLimit: 1
`,
	})
	f.write("rollout.yaml", readFile(t, filepath.Join(f.dir, "rollout.yaml"))+"notify:\n  - {name: oncall, urlEnv: ONCALL_HOOK}\n")
	f.env = []string{"COM_SECRET=com-key-1234", "GOV_SECRET=gov-key-5678", "PGPASSWORD=journal-pw-90", "GATE_TOKEN=tok-abcdef", "ONCALL_HOOK=" + hook.URL + "/hook"}
	r := f.must(2, "start", "--release", "v1") // the probe ring's gate has no data: it fails
	if !strings.Contains(r.stderr, `host "127.0.0.1" comes from data and is not in its allowHosts`) {
		t.Fatalf("a gate's token sent to a host an environment file chose:\n%s", r.stderr)
	}
	if probed.Load() != 0 || authSeen.Load() != nil {
		t.Fatalf("the data-chosen host got %d requests (Authorization %v)", probed.Load(), authSeen.Load())
	}
	var gateOut string
	for _, ev := range f.journalEvents() {
		if ev.Type == rings.GateMeasured && ev.Gate == "envgate" {
			gateOut += ev.Message + "\n"
		}
	}
	if !strings.Contains(gateOut, reverse("gov-key-5678")) {
		t.Fatalf("the gov gate did not see its own boundary's environment: %q", gateOut)
	}
	for _, leak := range []string{"com-key-1234", "journal-pw-90"} {
		if strings.Contains(gateOut, reverse(leak)) {
			t.Fatalf("the gov gate saw %s: %q", leak, gateOut)
		}
	}
	if elsewhere.Load() != 0 {
		t.Fatalf("a webhook's payload was sent to the host its receiver redirected to (%d requests)", elsewhere.Load())
	}
	// With the probe's host allowed, the token goes there.
	f.write("rollout.yaml", strings.Replace(readFile(t, filepath.Join(f.dir, "rollout.yaml")), `prefix: "Bearer "}}}`, `prefix: "Bearer "}}, allowHosts: [127.0.0.1]}`, 1))
	f.must(0, "start", "--release", "v2")
	if authSeen.Load() != "Bearer tok-abcdef" {
		t.Fatalf("the allowed host got Authorization %v", authSeen.Load())
	}
}

// The live log cannot be forged: a pause reason holding an event of its own stays a line of the
// pause's event; with a login configured nothing is readable without it.
func TestServeCannotBeForgedOrReadWithoutItsLogin(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", "    approval: {required: true}\n"))
	f.must(3, "start", "--release", "v1")
	run := f.status().Run
	f.must(0, "pause", run, "--reason", "hold\n\nevent: journal\ndata: run finished: succeeded\n\nid: 99")
	addr, _ := f.serve(t)
	// Everything the stream sends within 3 s (the run waits: its log is written at once).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/events?run="+run, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var block []string
	pause := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line != "" {
			block = append(block, line)
			continue
		}
		if len(block) == 0 {
			continue
		}
		if !strings.HasPrefix(block[0], "id: ") || len(block) < 3 || !strings.HasPrefix(block[1], "event: ") {
			t.Fatalf("an event that rollout did not write: %q", block)
		}
		for _, l := range block[2:] {
			if !strings.HasPrefix(l, "data: ") {
				t.Fatalf("a line of an event that is not data: %q in %q", l, block)
			}
		}
		pause = pause || strings.Contains(strings.Join(block, "\n"), "paused by")
		block = nil
	}
	if !pause {
		t.Fatal("the live log did not bring the pause")
	}

	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("ops-lead tok-3f9a2c71d8e4b605\n"), 0o600)
	addr, _ = f.serve(t, "--token-file", tokens)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]int{"/": http.StatusSeeOther, "/history": 401, "/events?run=" + run: 401, "/metrics": 401, "/login": 200, "/healthz": 200} {
		resp, err := noRedirect.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s without a login: %d (want %d), policy %q", path, resp.StatusCode, want, resp.Header.Get("Content-Security-Policy"))
		}
	}
}

// An allowed-signers option rollout cannot honour is refused at validate, naming its file and line.
func TestAllowedSignersOptionsAreHonouredOrRefused(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", ""))
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMKW+cILZK2ujdPIHzwH5pDOPVf5GJbSEGgEixhzuEuo"
	cfg := readFile(t, filepath.Join(f.dir, "rollout.yaml"))
	f.write("rollout.yaml", strings.Replace(cfg, "local-a: {cloud: local}", "local-a:\n    cloud: local\n    approvers:\n      - 'ops namespaces=\"git\" "+key+"'", 1))
	r := f.must(1, "validate")
	if !strings.Contains(r.stderr+r.stdout, "rollout.yaml:") || !strings.Contains(r.stderr+r.stdout, `option namespaces="git" does not admit rollout-approval`) {
		t.Fatalf("validate of a key limited to git signatures:\n%s%s", r.stdout, r.stderr)
	}
}

// Import refuses a release name that is not a name, and stops at the entry that crosses a cap
// without reading it (a 2 MB archive of two 1 GiB entries took 27 s and 3.8 GB).
func TestImportChecksNamesAndCaps(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", ""))
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "module.tar.gz", Mode: 0o644, Size: 2 << 30, Typeflag: tar.TypeReg}) // the header only
	gz.Close()
	huge := filepath.Join(t.TempDir(), "huge.tgz")
	os.WriteFile(huge, buf.Bytes(), 0o644)
	start := time.Now()
	if r := f.must(1, "release", "import", huge); !strings.Contains(r.stderr, "over the cap") || time.Since(start) > 20*time.Second {
		t.Fatalf("an entry claiming 2 GiB (%s): %s", time.Since(start), r.stderr)
	}
	f.must(0, "start", "--release", "v1")
	p := filepath.Join(t.TempDir(), "v1.tgz")
	f.must(0, "release", "export", "v1", "--out", p)
	files := unpack(t, p)
	bad := `../../x\u001b[31m` // JSON text: an escape sequence
	files["release.json"] = bytes.Replace(files["release.json"], []byte(`"name": "v1"`), []byte(`"name": "`+bad+`"`), 1)
	files["manifest.json"] = bytes.Replace(files["manifest.json"], []byte(`"name": "v1"`), []byte(`"name": "`+bad+`"`), 1)
	sum := sha256.Sum256(files["release.json"])
	var m map[string]any
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("%v: %s", err, files["manifest.json"])
	}
	m["files"].(map[string]any)["release.json"] = hex.EncodeToString(sum[:])
	files["manifest.json"], _ = json.Marshal(m)
	if r := f.must(1, "release", "import", writeTarGz(t, files)); !strings.Contains(r.stderr, "names are 1 to 63 letters") || strings.Contains(r.stderr, "\x1b") {
		t.Fatalf("a release named with a path and an escape: %q", r.stderr)
	}
}
