package clouds_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/testsupport/ststest"
)

var fastRetry = clouds.RetryPolicy{Attempts: 4, Initial: time.Millisecond, MaxElapsed: 5 * time.Second}

func govFleet(sts string) *config.Config {
	c := fleet()
	b := c.Boundaries["aws-us-gov"]
	b.Identity = map[string]string{"accessKeyIdEnv": "GOV_KEY", "secretAccessKeyEnv": "GOV_SECRET", "accountId": "123456789012"}
	b.Endpoints = map[string]string{"sts": sts}
	return c
}

var govEnv = map[string]string{"GOV_KEY": "AKIAGOVKEY000001", "GOV_SECRET": "gov-secret-value-1"}

func TestAWSPreflight(t *testing.T) {
	srv := ststest.New(t)
	srv.Arns["AKIAGOVKEY000001"] = "arn:aws-us-gov:iam::123456789012:user/deployer"
	srv.Arns["AKIACOMMERCIAL01"] = "arn:aws:iam::123456789012:user/deployer"
	srv.Arns["AKIAOTHERACCOUNT"] = "arn:aws-us-gov:iam::999999999999:user/deployer"
	ctx := context.Background()

	m := &clouds.Manager{Catalog: catalog.All, Config: govFleet(srv.URL), Lookup: lookupIn(govEnv), Retry: fastRetry}
	id, err := m.Preflight(ctx, "aws-us-gov", "")
	if err != nil {
		t.Fatal(err)
	}
	if id.Principal != "arn:aws-us-gov:iam::123456789012:user/deployer" || id.Account != "123456789012" || id.Scope != "aws-us-gov" || id.Region != "us-gov-west-1" {
		t.Fatalf("identity %+v", id)
	}
	// Signed for GovCloud's own region, with the boundary's key, not the runner's.
	if got := srv.Requests[len(srv.Requests)-1]; !strings.Contains(got, "/us-gov-west-1/sts/aws4_request") {
		t.Fatalf("request scope %q", got)
	}

	t.Run("wrong partition", func(t *testing.T) {
		m := &clouds.Manager{Catalog: catalog.All, Config: govFleet(srv.URL), Lookup: lookupIn(map[string]string{"GOV_KEY": "AKIACOMMERCIAL01", "GOV_SECRET": "x-secret"}), Retry: fastRetry}
		_, err := m.Preflight(ctx, "aws-us-gov", "")
		if err == nil || !strings.Contains(err.Error(), "the credentials are of partition aws (arn:aws:iam::123456789012:user/deployer), but boundary aws-us-gov is partition aws-us-gov") {
			t.Fatal(err)
		}
	})
	t.Run("wrong account", func(t *testing.T) {
		m := &clouds.Manager{Catalog: catalog.All, Config: govFleet(srv.URL), Lookup: lookupIn(map[string]string{"GOV_KEY": "AKIAOTHERACCOUNT", "GOV_SECRET": "x-secret"}), Retry: fastRetry}
		_, err := m.Preflight(ctx, "aws-us-gov", "")
		if err == nil || !strings.Contains(err.Error(), "account 999999999999") || !strings.Contains(err.Error(), "configured for account 123456789012") {
			t.Fatal(err)
		}
	})
	t.Run("missing credentials", func(t *testing.T) {
		m := &clouds.Manager{Catalog: catalog.All, Config: govFleet(srv.URL), Lookup: lookupIn(nil), Retry: fastRetry}
		_, err := m.Preflight(ctx, "aws-us-gov", "")
		if err == nil || !strings.Contains(err.Error(), "GOV_KEY and GOV_SECRET must be set") {
			t.Fatal(err)
		}
	})
	t.Run("expired credentials fail at once, secret not shown", func(t *testing.T) {
		srv.Fail = "ExpiredToken"
		defer func() { srv.Fail = "" }()
		before := len(srv.Requests)
		_, err := m.Preflight(ctx, "aws-us-gov", "")
		if err == nil || !strings.Contains(err.Error(), "ExpiredToken") || len(srv.Requests)-before != 1 {
			t.Fatalf("%v after %d requests", err, len(srv.Requests)-before)
		}
		if strings.Contains(err.Error(), govEnv["GOV_SECRET"]) {
			t.Fatal("secret in the error")
		}
	})
	t.Run("throttled, then through", func(t *testing.T) {
		srv.Throttle = 2
		id, err := m.Preflight(ctx, "aws-us-gov", "")
		if err != nil || id.Attempts != 3 {
			t.Fatalf("%v, attempts %d", err, id.Attempts)
		}
	})
	t.Run("throttled throughout", func(t *testing.T) {
		srv.Throttle = 100
		defer func() { srv.Throttle = 0 }()
		_, err := m.Preflight(ctx, "aws-us-gov", "")
		if err == nil || !strings.Contains(err.Error(), "still failing after 4 attempts") || !strings.Contains(err.Error(), "Throttling") {
			t.Fatal(err)
		}
	})
}

func TestAWSRoleChain(t *testing.T) {
	srv := ststest.New(t)
	srv.Arns["AKIACHINAKEY0001"] = "arn:aws-cn:iam::210987654321:user/ci"
	c := fleet()
	c.Boundaries["aws-cn"].Endpoints = map[string]string{"sts": srv.URL}
	m := &clouds.Manager{Catalog: catalog.All, Config: c, Lookup: lookupIn(runner), Retry: fastRetry}
	id, err := m.Preflight(context.Background(), "aws-cn", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id.Principal, "arn:aws-cn:sts::210987654321:assumed-role/deployer/rollout") || srv.Externals[0] != "x" {
		t.Fatalf("identity %+v, external ids %v", id, srv.Externals)
	}
	// Terraform gets the chain's temporary credentials, and only those.
	e, err := m.Env(context.Background(), "cn-nw1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.Vars["AWS_ACCESS_KEY_ID"], "ASIA") || !strings.HasPrefix(e.Vars["AWS_SESSION_TOKEN"], "chain-token-") || e.Vars["AWS_REGION"] != "cn-northwest-1" {
		t.Fatalf("env %v", e.List())
	}
	if len(e.Secrets) < 3 {
		t.Fatalf("secrets %v", e.Secrets)
	}
}

// recorder answers every request with an STS identity and records where it was sent: the SDK's
// own endpoint resolution for each partition, with no override configured.
type recorder struct {
	mu   sync.Mutex
	urls []string
	arn  string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.Host)
	r.mu.Unlock()
	body := fmt.Sprintf(`<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>%s</Arn><UserId>U</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`, r.arn)
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/xml"}}, Body: io.NopCloser(bytes.NewBufferString(body)), Request: req}, nil
}

func TestAWSPreflightUsesThePartitionsRegionalSTS(t *testing.T) {
	for _, tc := range []struct{ partition, region, host string }{
		{"aws-us-gov", "us-gov-east-1", "sts.us-gov-east-1.amazonaws.com"},
		{"aws-cn", "cn-north-1", "sts.cn-north-1.amazonaws.com.cn"},
		{"aws-eusc", "eusc-de-east-1", "sts.eusc-de-east-1.amazonaws.eu"},
		{"aws-iso-b", "us-isob-east-1", "sts.us-isob-east-1.sc2s.sgov.gov"},
		{"aws", "eu-central-1", "sts.eu-central-1.amazonaws.com"},
	} {
		c := fleet()
		b := &config.Boundary{Name: "b", Cloud: "aws", Settings: map[string]string{"partition": tc.partition}, Identity: map[string]string{"accessKeyIdEnv": "K", "secretAccessKeyEnv": "S"}}
		c.Boundaries["b"] = b
		rec := &recorder{arn: "arn:" + tc.partition + ":iam::123456789012:user/u"}
		m := &clouds.Manager{Catalog: catalog.All, Config: c, Lookup: lookupIn(map[string]string{"K": "AKIAK", "S": "secret"}), Client: &http.Client{Transport: rec}, Retry: fastRetry}
		if _, err := m.Preflight(context.Background(), "b", tc.region); err != nil {
			t.Fatalf("%s: %v", tc.partition, err)
		}
		if len(rec.urls) != 1 || rec.urls[0] != tc.host {
			t.Errorf("%s: STS reached at %v, want %s", tc.partition, rec.urls, tc.host)
		}
	}
}

func TestAWSWebIdentityAndProfile(t *testing.T) {
	srv := ststest.New(t)
	srv.WebIdentityToken = "oidc-token-from-ci"
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("oidc-token-from-ci"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := fleet()
	b := c.Boundaries["aws-us-gov"]
	b.Endpoints = map[string]string{"sts": srv.URL}
	b.Identity["webIdentityTokenFile"] = tokenFile
	m := &clouds.Manager{Catalog: catalog.All, Config: c, Lookup: lookupIn(nil), Retry: fastRetry}
	id, err := m.Preflight(context.Background(), "aws-us-gov", "")
	if err != nil || id.Principal != "arn:aws-us-gov:sts::123456789012:assumed-role/deployer/rollout" {
		t.Fatalf("%v %+v", err, id)
	}
	if err := os.WriteFile(tokenFile, []byte("a-token-sts-does-not-trust"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Preflight(context.Background(), "aws-us-gov", ""); err == nil || !strings.Contains(err.Error(), "InvalidIdentityToken") {
		t.Fatalf("untrusted token: %v", err)
	}

	// A profile from the boundary's own config file, not the runner's default one.
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgFile, []byte("[profile gov-ci]\nregion = us-gov-west-1\naws_access_key_id = AKIAPROFILE00001\naws_secret_access_key = profile-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv.Set("AKIAPROFILE00001", "arn:aws-us-gov:iam::123456789012:user/ci")
	b.Identity = map[string]string{"profile": "gov-ci", "configFile": cfgFile, "sharedCredentialsFile": filepath.Join(dir, "none")}
	id, err = m.Preflight(context.Background(), "aws-us-gov", "")
	if err != nil || id.Principal != "arn:aws-us-gov:iam::123456789012:user/ci" {
		t.Fatalf("%v %+v", err, id)
	}
}

func TestPreflightStaleIdentityStandsInForAThrottledEndpoint(t *testing.T) {
	srv := ststest.New(t)
	srv.Arns["AKIAGOVKEY000001"] = "arn:aws-us-gov:iam::123456789012:user/deployer"
	m := &clouds.Manager{Catalog: catalog.All, Config: govFleet(srv.URL), Lookup: lookupIn(govEnv), Retry: fastRetry, CacheDir: t.TempDir(), MaxStaleness: time.Hour}
	if _, err := m.Preflight(context.Background(), "aws-us-gov", ""); err != nil {
		t.Fatal(err)
	}
	srv.Throttle = 1000
	id, err := m.Preflight(context.Background(), "aws-us-gov", "")
	if err != nil || !strings.Contains(id.Stale, "still failing after 4 attempts") || id.Principal != "arn:aws-us-gov:iam::123456789012:user/deployer" ||
		!strings.Contains(clouds.Describe("aws-us-gov", id), "STALE: proven") {
		t.Fatalf("%v %+v", err, id)
	}
	// Older than maxStaleness: the error stands.
	m.MaxStaleness = time.Nanosecond
	if _, err := m.Preflight(context.Background(), "aws-us-gov", ""); err == nil {
		t.Fatal("a stale identity beyond maxStaleness was used")
	}
	// A permanent failure is never covered by the cache.
	srv.Throttle, srv.Fail, m.MaxStaleness = 0, "ExpiredToken", time.Hour
	if _, err := m.Preflight(context.Background(), "aws-us-gov", ""); err == nil {
		t.Fatal("expired credentials were covered by a cached identity")
	}
}
