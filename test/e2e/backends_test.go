//go:build e2e

package e2e

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/testsupport/azuretest"
	"github.com/rollout-dev/rollout/internal/testsupport/azuritetest"
	"github.com/rollout-dev/rollout/internal/testsupport/gcptest"
	"github.com/rollout-dev/rollout/internal/testsupport/gcstest"
	"github.com/rollout-dev/rollout/internal/testsupport/s3test"
	"github.com/rollout-dev/rollout/internal/testsupport/ststest"
)

// Each cloud's own state backend, for real: Terraform's s3 backend (use_lockfile) on versitygw,
// one server per AWS partition, and its gcs backend on fake-gcs-server, all on loopback. Every
// boundary keeps its targets' state in its own bucket through the boundaries.B.backend
// convention, with its own credentials.

// clouds is the object storage and identity endpoints of four boundaries: AWS commercial and
// AWS GovCloud (each its own S3 server, knowing only that partition's key, and one STS stand-in),
// Google Cloud (a GCS server; a token endpoint for its service account), and a sovereign Azure
// cloud (Entra on loopback TLS; Azurite reached through the cloud's metadata and a proxy, with
// an account of its own and another boundary's).
type clouds struct {
	com, gov       *s3test.Server
	comKey, govKey s3test.Key
	gcs            *gcstest.Server
	sts            *ststest.Server
	serviceAccount string
	entra          *azuretest.Cloud
	az             *azuritetest.Server
	azAccount      azuritetest.Account // the sovereign Azure boundary's state account
	azOther        azuritetest.Account // an account of another boundary, on the same server
	trust          string              // SSL_CERT_FILE: Entra's and Azurite's certificates
}

const comSecret, govSecret = "com-secret-0b7e21-state", "gov-secret-5f3a9c-state"

func startClouds(t *testing.T) *clouds {
	t.Helper()
	c := &clouds{com: s3test.Start(t, "us-east-1"), gov: s3test.Start(t, "us-gov-west-1"), gcs: gcstest.Start(t), sts: ststest.New(t),
		comKey: s3test.Key{ID: "AKIACOMMERCIAL0001", Secret: comSecret}, govKey: s3test.Key{ID: "AKIAGOVCLOUD000001", Secret: govSecret}}
	c.sts.Set(c.comKey.ID, "arn:aws:iam::111111111111:user/deployer")
	c.sts.Set(c.govKey.ID, "arn:aws-us-gov:iam::222222222222:user/deployer")
	c.com.Account(t, c.comKey)
	c.gov.Account(t, c.govKey)
	c.com.Bucket(t, c.comKey, "state-commercial")
	c.gov.Bucket(t, c.govKey, "state-govcloud")
	c.gcs.Bucket(t, "state-gcp")
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"ya29.state-test","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(tokens.Close)
	c.serviceAccount = gcptest.ServiceAccountFile(t, tokens.URL+"/token", "")
	c.startAzure(t)
	return c
}

const azureAudience = "https://management.core.sovcloud.example/"

// startAzure starts the sovereign Azure cloud: Entra, and Azurite with two accounts.
func (c *clouds) startAzure(t *testing.T) {
	c.entra = azuretest.New(t, "tenant-sov", azureAudience)
	c.azAccount = azuritetest.Account{Name: "sovstate", Key: azuritetest.Key()}
	c.azOther = azuritetest.Account{Name: "otherstate", Key: azuritetest.Key()}
	c.az = azuritetest.Start(t, "custom", "https://management.sovcloud.example/", c.entra.URL+"/", c.azAccount, c.azOther)
	c.az.Container(t, c.azAccount, "tfstate")
	c.az.Container(t, c.azOther, "tfstate")
	ca, err := os.ReadFile(c.az.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	entra := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.entra.Certificate().Raw})
	c.trust = filepath.Join(t.TempDir(), "trust.pem")
	if err := os.WriteFile(c.trust, append(ca, entra...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// boundaries is the fleet's boundaries, each with its backend convention.
func (c *clouds) boundaries() string {
	return fmt.Sprintf(`
  aws:
    cloud: aws
    partition: aws
    identity: {accessKeyIdEnv: COM_KEY, secretAccessKeyEnv: COM_SECRET, accountId: "111111111111"}
    endpoints: {sts: %q, s3: %q}
    backend:
      type: s3
      config: {bucket: state-commercial, key: "{{ .Target.Name }}.tfstate", region: "{{ .Target.Region }}", use_path_style: true, use_lockfile: true}
  aws-us-gov:
    cloud: aws
    partition: aws-us-gov
    identity: {accessKeyIdEnv: GOV_KEY, secretAccessKeyEnv: GOV_SECRET, accountId: "222222222222"}
    endpoints: {sts: %q, s3: %q}
    backend:
      type: s3
      config: {bucket: state-govcloud, key: "{{ .Target.Name }}.tfstate", region: "{{ .Target.Region }}", use_path_style: true, use_lockfile: true}
  gcp:
    cloud: gcp
    identity: {credentialsFile: %q, project: svc-prod}
    backend:
      type: gcs
      config: {bucket: state-gcp, prefix: "{{ .Target.Name }}", storage_custom_endpoint: %q}
  azure-sov:
    cloud: azure
    environment: custom
    endpoints: {authorityHost: %q, resourceManager: "https://management.sovcloud.example/", audience: %q, metadataHost: %q}
    regions: [sovcentral]
    identity: {tenantId: tenant-sov, clientId: app-1, clientSecretEnv: AZ_SECRET, storageAccessKeyEnv: AZ_STORAGE_KEY}
    backend:
      type: azurerm
      config: {storage_account_name: sovstate, container_name: tfstate, key: "{{ .Target.Name }}.tfstate", environment: custom, metadata_host: %q}
`, c.sts.URL, c.com.URL, c.sts.URL, c.gov.URL, c.serviceAccount, c.gcs.Endpoint(), c.entra.URL+"/", azureAudience, c.az.MetadataHost, c.az.MetadataHost)
}

func (c *clouds) env() []string {
	return []string{"COM_KEY=" + c.comKey.ID, "COM_SECRET=" + comSecret, "GOV_KEY=" + c.govKey.ID, "GOV_SECRET=" + govSecret,
		"AZ_SECRET=the-right-secret", "AZ_STORAGE_KEY=" + c.azAccount.Key, "HTTPS_PROXY=" + c.az.Proxy, "SSL_CERT_FILE=" + c.trust}
}

// where says in which bucket a target's state lives, by the boundary its name starts with.
func (c *clouds) state(t *testing.T) func(target string) ([]byte, bool) {
	return func(target string) ([]byte, bool) {
		switch {
		case strings.HasPrefix(target, "gov-"):
			return c.gov.Read(t, c.govKey, "state-govcloud", target+".tfstate")
		case strings.HasPrefix(target, "gcp-"):
			return c.gcs.Object(t, "state-gcp", target+"/default.tfstate")
		case strings.HasPrefix(target, "az-"):
			return c.az.Blob(t, c.azAccount, "tfstate", target+".tfstate")
		}
		return c.com.Read(t, c.comKey, "state-commercial", target+".tfstate")
	}
}

// TestStateLivesInEachBoundarysOwnBucket runs three rings over four boundaries whose targets
// keep their state in their own boundary's bucket: the state is there and nowhere else, no lock
// is left, a second release reads and replaces it, and no boundary's key opens another's bucket
// (so each Terraform was given its own boundary's credentials, or its backend would have failed).
func TestStateLivesInEachBoundarysOwnBucket(t *testing.T) {
	t.Parallel()
	c := startClouds(t)
	f := newFleet(t, fleetSpec{
		boundaries: c.boundaries(),
		rings: `  - name: canary
    targets: {labels: {tier: canary}}
    gates: [healthz]
  - name: commercial
    targets: {labels: {tier: main}}
    maxParallel: 2
  - name: sovereign
    targets: {labels: {tier: sovereign}}
`,
		targets: `targets:
  - {name: use1-canary, boundary: aws, region: us-east-1, labels: {tier: canary}}
  - {name: use1-main, boundary: aws, region: us-east-1, labels: {tier: main}}
  - {name: gcp-usc1, boundary: gcp, region: us-central1, labels: {tier: main}}
  - {name: gov-w1, boundary: aws-us-gov, region: us-gov-west-1, labels: {tier: sovereign}}
  - {name: az-sov1, boundary: azure-sov, region: sovcentral, labels: {tier: sovereign}}
`,
	})
	f.env, f.state = c.env(), c.state(t)
	f.must(0, "validate")
	for _, rel := range []string{"v1", "v2"} {
		r := f.must(0, "start", "--release", rel)
		for _, s := range []string{comSecret, govSecret} {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Fatalf("a boundary's secret was printed:\n%s\n%s", r.stdout, r.stderr)
			}
		}
		for _, target := range []string{"use1-canary", "use1-main", "gcp-usc1", "gov-w1", "az-sov1"} {
			if got, ok := f.stateRelease(target); !ok || got != rel {
				t.Fatalf("%s: its bucket's state says %q (%v), want %s", target, got, ok, rel)
			}
		}
	}
	// Only in the buckets: no local state, and no lock left behind.
	if m, _ := filepath.Glob(filepath.Join(f.dir, ".rollout", "tfstate", "*")); len(m) > 0 {
		t.Fatalf("local state files: %v", m)
	}
	for bucket, srv := range map[string]*s3test.Server{"state-commercial": c.com, "state-govcloud": c.gov} {
		for _, key := range []string{"use1-canary.tfstate.tflock", "use1-main.tfstate.tflock", "gov-w1.tfstate.tflock"} {
			if srv.Exists(t, bucket, key) {
				t.Fatalf("a state lock was left: s3://%s/%s", bucket, key)
			}
		}
	}
	if _, ok := c.gcs.Object(t, "state-gcp", "gcp-usc1/default.tflock"); ok {
		t.Fatal("a state lock was left: gs://state-gcp/gcp-usc1/default.tflock")
	}
	if c.az.Leased(t, c.azAccount, "tfstate", "az-sov1.tfstate") {
		t.Fatal("a state lock was left: the lease on sovstate/tfstate/az-sov1.tfstate")
	}
	// Another boundary's account key does not open the sovereign account.
	if code, body := c.az.Do(t, azuritetest.Account{Name: c.azAccount.Name, Key: c.azOther.Key}, http.MethodGet, "/tfstate/az-sov1.tfstate"); code != http.StatusForbidden {
		t.Fatalf("another account's key read sovstate/tfstate/az-sov1.tfstate: %d\n%s", code, body)
	}
	// Each server knows its own partition's key only, and an account sees its own buckets only.
	ctx := context.Background()
	intruder := s3test.Key{ID: "AKIAINTRUDER000001", Secret: "intruder-secret"}
	c.com.Account(t, intruder)
	for _, probe := range []struct {
		srv  *s3test.Server
		key  s3test.Key
		path string
	}{{c.gov, c.comKey, "/state-govcloud/gov-w1.tfstate"}, {c.com, c.govKey, "/state-commercial/use1-main.tfstate"},
		{c.com, intruder, "/state-commercial/use1-main.tfstate"}} {
		code, body, err := probe.srv.Do(ctx, probe.key, http.MethodGet, probe.path, nil)
		if err != nil || code != http.StatusForbidden {
			t.Fatalf("%s read %s%s: %d %v, want 403\n%s", probe.key.ID, probe.srv.URL, probe.path, code, err, body)
		}
	}
}

// TestAStaleLockOfAKilledRunIsReleasedAndAForeignOneIsNot kills rollout (SIGKILL) while its
// Terraform applies against the S3 backend; the resumed run reaps the orphaned Terraform, whose
// lock stays in the bucket, proves from the journal that the lock is its dead predecessor's,
// releases it (target.lock_released, with the evidence) and finishes. Then a person runs `tofu
// apply` by hand on the same state, as the same user on the same machine, and leaves it waiting
// at its prompt, holding the lock: the next release fails on that target, names the holder and
// the command to release it, and leaves the lock alone.
func TestAStaleLockOfAKilledRunIsReleasedAndAForeignOneIsNot(t *testing.T) {
	t.Parallel()
	c := startClouds(t)
	f := newFleet(t, fleetSpec{
		boundaries: c.boundaries(),
		rings:      "  - name: all\n    targets: {boundaries: [aws]}\n    maxParallel: 2\n",
		targets: `targets:
  - {name: use1-a, boundary: aws, region: us-east-1}
  - {name: use1-b, boundary: aws, region: us-east-1}
`,
	})
	f.env, f.state = c.env(), c.state(t)
	f.write("rollout.yaml", strings.Replace(readFile(t, filepath.Join(f.dir, "rollout.yaml")), "lockTimeout: 2m", "lockTimeout: 2s", 1))
	f.must(0, "start", "--release", "v1")

	// Kill rollout once its Terraform holds the lock; the orphan goes on applying (8 s).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := f.command(ctx, "start", "--release", "v2", "--var", "apply_seconds=8")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !c.com.Exists(t, "state-commercial", "use1-a.tfstate.tflock") {
		if time.Now().After(deadline) {
			t.Fatal("use1-a's apply never took its state lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	var r result
	for i := 0; i < 20; i++ { // the killed holder's fleet lease expires (ROLLOUT_LEASE_TTL=3s)
		if r = f.run("start", "--release", "v2", "--var", "apply_seconds=8"); r.code != 5 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r.code != 0 {
		t.Fatalf("resume after the kill: exit %d\n%s", r.code, lastLines(r.stderr, 40))
	}
	released := eventsOf(f.journalEvents(), rings.TargetLockReleased)
	var a *rings.Event
	for i, e := range released {
		if e.Target == "use1-a" && e.Lock != nil && strings.Contains(e.Message, "the journal names its holder") {
			a = &released[i]
		}
	}
	if a == nil {
		t.Fatalf("no target.lock_released for use1-a with its evidence: %+v", released)
	}
	t.Logf("released: %s", a.Message)
	if got, _ := f.stateRelease("use1-a"); got != "v2" {
		t.Fatalf("use1-a's state says %q after the resume, want v2", got)
	}

	// A person's tofu apply, waiting at its prompt, holds use1-b's lock.
	hand := handRunApplyOn(t, c, "use1-b")
	defer hand()
	r = f.run("start", "--release", "v3")
	if r.code == 0 {
		t.Fatalf("start v3 went through a lock someone else holds:\n%s", r.stderr)
	}
	out := r.stdout + r.stderr + f.run("status").stdout
	if !strings.Contains(out, "not by a dead process of this fleet") || !strings.Contains(out, "tofu force-unlock") {
		t.Fatalf("the failure does not name the holder and the command a person would run:\n%s", lastLines(out, 40))
	}
	if !c.com.Exists(t, "state-commercial", "use1-b.tfstate.tflock") {
		t.Fatal("the hand-run apply's lock was released")
	}
	if n := len(eventsOf(f.journalEvents(), rings.TargetLockReleased)); n != len(released) {
		t.Fatalf("%d locks released in all, want only the %d of the killed run", n, len(released))
	}
}

// handRunApplyOn starts `tofu apply` (without -auto-approve) on target's state in the commercial
// bucket, in a directory of its own, with the commercial boundary's key, and leaves it at its
// confirmation prompt, holding the state lock. The returned function kills it (its lock stays:
// the fleet is done with it).
func handRunApplyOn(t *testing.T, c *clouds, target string) func() {
	t.Helper()
	dir := t.TempDir()
	main := "terraform {\n  backend \"s3\" {}\n}\nresource \"terraform_data\" \"by_hand\" {\n  input = \"by hand\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID="+c.comKey.ID, "AWS_SECRET_ACCESS_KEY="+comSecret, "AWS_REGION=us-east-1",
		"AWS_ENDPOINT_URL_S3="+c.com.URL, "AWS_ENDPOINT_URL_STS="+c.sts.URL, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	tf := os.Getenv("ROLLOUT_TF_BIN")
	init := exec.Command(tf, "init", "-input=false", "-no-color", "-backend-config=bucket=state-commercial", "-backend-config=key="+target+".tfstate",
		"-backend-config=region=us-east-1", "-backend-config=use_path_style=true", "-backend-config=use_lockfile=true")
	init.Dir, init.Env = dir, env
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("hand-run init: %v\n%s", err, out)
	}
	apply := exec.Command(tf, "apply", "-no-color")
	apply.Dir, apply.Env = dir, env
	stdin, err := apply.StdinPipe() // never written: it waits for "yes"
	if err != nil {
		t.Fatal(err)
	}
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !c.com.Exists(t, "state-commercial", target+".tfstate.tflock") {
		if time.Now().After(deadline) {
			t.Fatalf("the hand-run apply never took %s's lock", target)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() {
		_ = apply.Process.Kill()
		_ = apply.Wait()
		stdin.Close()
	}
}

// eventsOf are the events of one type.
func eventsOf(evs []rings.Event, typ rings.EventType) []rings.Event {
	var out []rings.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// TestChaosKillAndResumeOnS3 is the kill-and-resume chaos run with every target's state in the
// S3 server (ROLLOUT_CHAOS_KILLS SIGKILLs of rollout, 5 by default; make chaos: 50): the locks
// that killed runs leave are released by the runs that resume them, with the journal's evidence,
// and a lock planted by a person's tofu apply is left alone. Then: every target's state holds the
// final release, the journal has no gap or duplicate, no target was applied by two processes at
// once, and no lock is left but the person's.
func TestChaosKillAndResumeOnS3(t *testing.T) {
	kills, seed, rnd := chaosParams(t, 43)
	c := startClouds(t)
	var targets strings.Builder
	targets.WriteString("targets:\n")
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&targets, "  - {name: k-%d, boundary: aws, region: us-east-1, vars: {apply_seconds: 1}}\n", i)
	}
	f, dir := chaosFleet(t, map[string][]string{}, killRings, targets.String())
	cfg := readFile(t, filepath.Join(f.dir, "rollout.yaml"))
	cfg = strings.Replace(cfg, "boundaries:", "boundaries:"+strings.TrimRight(c.boundaries(), "\n"), 1)
	cfg = strings.Replace(cfg, "lockTimeout: 2m", "lockTimeout: 2s", 1)
	f.write("rollout.yaml", strings.Replace(cfg, "consecutiveFailures: 3", "consecutiveFailures: 50", 1))
	f.env, f.state = append(f.env, c.env()...), c.state(t)

	final, done := killAndResume(t, f, rnd, kills)
	released := len(eventsOf(f.journalEvents(), rings.TargetLockReleased))
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("k-%d", i)
		if got, _ := f.stateRelease(name); got != final {
			t.Errorf("%s: its state in the bucket holds %q, want %s", name, got, final)
		}
		if c.com.Exists(t, "state-commercial", name+".tfstate.tflock") {
			t.Errorf("%s: a state lock was left", name)
		}
	}
	runs := checkJournalAndOverlaps(t, f, dir)

	// A person's tofu apply holds k-1's lock: the next release fails there and leaves it.
	hand := handRunApplyOn(t, c, "k-1")
	defer hand()
	next := fmt.Sprintf("v%d", done+2)
	if r := f.run("start", "--release", next); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "not by a dead process of this fleet") {
		t.Fatalf("start %s over a person's lock: exit %d\n%s", next, r.code, lastLines(r.stderr, 30))
	}
	foreign := 0
	if c.com.Exists(t, "state-commercial", "k-1.tfstate.tflock") && len(eventsOf(f.journalEvents(), rings.TargetLockReleased)) == released {
		foreign = 1
	} else {
		t.Error("the person's lock on k-1 was released")
	}
	fmt.Printf("\nchaos on S3: %d kills of rollout (seed %d); %d release(s) finished; journal of %d run(s) without gaps; "+
		"0 lost; 0 overlapping applies; %d lock(s) of killed runs released; %d foreign lock(s) left alone\n",
		kills, seed, done+1, runs, released, foreign)
}
