package clouds_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/clouds/azure"
	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/testsupport/azuretest"
	"github.com/rollout-dev/rollout/internal/testsupport/gcptest"
)

func sovereignAzure(authority string) *config.Config {
	c := fleet()
	b := c.Boundaries["azure-sov"]
	b.Endpoints["authorityHost"] = authority + "/"
	b.Identity = map[string]string{"tenantId": "tenant-sov", "clientId": "app-1", "clientSecretEnv": "SOV_SECRET"}
	return c
}

func TestAzurePreflight(t *testing.T) {
	srv := azuretest.New(t, "tenant-sov", "https://management.core.sovcloud.example/")
	ctx := context.Background()
	m := &clouds.Manager{Catalog: catalog.All, Config: sovereignAzure(srv.URL), Lookup: lookupIn(map[string]string{"SOV_SECRET": "the-right-secret"}), Client: srv.Client(), Retry: fastRetry}
	id, err := m.Preflight(ctx, "azure-sov", "")
	if err != nil {
		t.Fatal(err)
	}
	if id.Account != "tenant-sov" || id.Principal != "app-1 (object obj-1)" || id.Scope != "custom" {
		t.Fatalf("identity %+v", id)
	}

	t.Run("token of another tenant", func(t *testing.T) {
		srv.Tenant.Store("tenant-commercial")
		defer srv.Tenant.Store("tenant-sov")
		_, err := m.Preflight(ctx, "azure-sov", "")
		if err == nil || !strings.Contains(err.Error(), `issued by tenant "tenant-commercial", but boundary azure-sov is configured for tenant tenant-sov`) {
			t.Fatal(err)
		}
	})
	t.Run("expired secret fails at once and is not shown", func(t *testing.T) {
		// The endpoint echoes the secret URL-encoded: masked in that form too (it was printed and
		// journaled before).
		m := &clouds.Manager{Catalog: catalog.All, Config: sovereignAzure(srv.URL), Lookup: lookupIn(map[string]string{"SOV_SECRET": "Az+Sec/ret=LEAK~1"}), Client: srv.Client(), Retry: fastRetry}
		_, err := m.Preflight(ctx, "azure-sov", "")
		if err == nil || !strings.Contains(err.Error(), "AADSTS7000222") || strings.Contains(err.Error(), "LEAK") || strings.Contains(err.Error(), "after") {
			t.Fatal(err)
		}
	})
	t.Run("missing secret", func(t *testing.T) {
		m := &clouds.Manager{Catalog: catalog.All, Config: sovereignAzure(srv.URL), Lookup: lookupIn(nil), Client: srv.Client(), Retry: fastRetry}
		_, err := m.Preflight(ctx, "azure-sov", "")
		if err == nil || !strings.Contains(err.Error(), "identity.clientSecretEnv names SOV_SECRET, which is not set") {
			t.Fatal(err)
		}
	})
	t.Run("throttled, then through", func(t *testing.T) {
		srv.Throttle.Store(2)
		id, err := m.Preflight(ctx, "azure-sov", "")
		if err != nil || id.Attempts != 3 {
			t.Fatalf("%v, attempts %d", err, id.Attempts)
		}
	})
	t.Run("workload identity from a federated token file", func(t *testing.T) {
		c := sovereignAzure(srv.URL)
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte("federated-jwt"), 0o600); err != nil {
			t.Fatal(err)
		}
		c.Boundaries["azure-sov"].Identity = map[string]string{"tenantId": "tenant-sov", "clientId": "app-2", "federatedTokenFile": tokenFile}
		srv.Secret.Store("") // a client assertion, not a secret
		defer srv.Secret.Store("the-right-secret")
		m := &clouds.Manager{Catalog: catalog.All, Config: c, Client: srv.Client(), Retry: fastRetry}
		id, err := m.Preflight(ctx, "azure-sov", "")
		if err != nil || !strings.HasPrefix(id.Principal, "app-2") {
			t.Fatalf("%v, %+v", err, id)
		}
	})
}

func TestAzureCloudsUseTheirOwnAuthority(t *testing.T) {
	for env, host := range map[string]string{"public": "https://login.microsoftonline.com/", "usgovernment": "https://login.microsoftonline.us/", "china": "https://login.chinacloudapi.cn/"} {
		cc, err := azure.CloudConfig(&config.Boundary{Name: "b", Settings: map[string]string{"environment": env}})
		if err != nil || cc.ActiveDirectoryAuthorityHost != host {
			t.Errorf("%s: %v %s", env, err, cc.ActiveDirectoryAuthorityHost)
		}
	}
	cc, _ := azure.CloudConfig(&config.Boundary{Name: "b", Settings: map[string]string{"environment": "usgovernment"}})
	if a := cc.Services["resourceManager"].Audience; a != "https://management.core.usgovcloudapi.net/" {
		t.Errorf("usgovernment audience %s", a)
	}
}

func TestGooglePreflight(t *testing.T) {
	srv := gcptest.Token(t)
	ctx := context.Background()
	c := fleet()
	c.Boundaries["gcp"].Identity = map[string]string{"credentialsFile": gcptest.ServiceAccountFile(t, srv.URL, "")}
	m := &clouds.Manager{Catalog: catalog.All, Config: c, Retry: fastRetry}
	id, err := m.Preflight(ctx, "gcp", "")
	if err != nil {
		t.Fatal(err)
	}
	if id.Scope != "googleapis.com" || id.Principal != "deployer@svc-prod.iam.gserviceaccount.com" || id.Account != "svc-prod" {
		t.Fatalf("identity %+v", id)
	}
	t.Run("credential of another universe", func(t *testing.T) {
		c := fleet()
		c.Boundaries["gcp"].Identity = map[string]string{"credentialsFile": gcptest.ServiceAccountFile(t, srv.URL, "s3nsapis.fr")}
		_, err := (&clouds.Manager{Catalog: catalog.All, Config: c, Retry: fastRetry}).Preflight(ctx, "gcp", "")
		if err == nil || !strings.Contains(err.Error(), "the credential belongs to universe s3nsapis.fr, but boundary gcp is universe googleapis.com") {
			t.Fatal(err)
		}
		c.Boundaries["gcp-s3ns"].Identity = map[string]string{"credentialsFile": gcptest.ServiceAccountFile(t, srv.URL, "")}
		_, err = (&clouds.Manager{Catalog: catalog.All, Config: c, Retry: fastRetry}).Preflight(ctx, "gcp-s3ns", "")
		if err == nil || !strings.Contains(err.Error(), "the credential belongs to universe googleapis.com, but boundary gcp-s3ns is universe s3nsapis.fr") {
			t.Fatal(err)
		}
	})
	t.Run("a sovereign universe's own key", func(t *testing.T) {
		c := fleet()
		c.Boundaries["gcp-s3ns"].Identity = map[string]string{"credentialsFile": gcptest.ServiceAccountFile(t, "https://oauth2.s3nsapis.fr/token", "s3nsapis.fr")}
		id, err := (&clouds.Manager{Catalog: catalog.All, Config: c, Retry: fastRetry}).Preflight(ctx, "gcp-s3ns", "")
		if err != nil || id.Scope != "s3nsapis.fr" {
			t.Fatalf("%v %+v", err, id)
		}
	})
	t.Run("rejected key fails at once", func(t *testing.T) {
		srv.Status.Store(400)
		defer srv.Status.Store(0)
		_, err := m.Preflight(ctx, "gcp", "")
		if err == nil || !strings.Contains(err.Error(), "invalid_grant") || strings.Contains(err.Error(), "attempts") {
			t.Fatal(err)
		}
	})
	t.Run("throttled, then through", func(t *testing.T) {
		srv.Throttle.Store(2)
		m := &clouds.Manager{Catalog: catalog.All, Config: c, Retry: fastRetry} // a fresh credential: no cached token
		id, err := m.Preflight(ctx, "gcp", "")
		if err != nil || id.Attempts != 3 {
			t.Fatalf("%v, attempts %d", err, id.Attempts)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		c := fleet()
		c.Boundaries["gcp"].Identity = map[string]string{"credentialsFile": "/nonexistent/sa.json"}
		_, err := (&clouds.Manager{Catalog: catalog.All, Config: c, Retry: fastRetry}).Preflight(ctx, "gcp", "")
		if err == nil || !strings.Contains(err.Error(), "identity.credentialsFile: open /nonexistent/sa.json") {
			t.Fatal(err)
		}
	})
}

// Workload identity federation: an external_account file whose subject token (a CI system's OIDC
// token, in a file) is exchanged at the universe's STS.
func TestGoogleWorkloadIdentityFederation(t *testing.T) {
	var exchanged atomic.Int32
	sts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.Form.Get("subject_token") != "ci-oidc-token" || r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"subject token rejected"}`)
			return
		}
		exchanged.Add(1)
		fmt.Fprint(w, `{"access_token":"federated","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3600}`)
	}))
	defer sts.Close()
	dir := t.TempDir()
	subject := filepath.Join(dir, "oidc-token")
	if err := os.WriteFile(subject, []byte("ci-oidc-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	wif, _ := json.Marshal(map[string]any{"type": "external_account", "universe_domain": "s3nsapis.fr",
		"audience":           "//iam.s3nsapis.fr/locations/global/workforcePools/ci/providers/github",
		"subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": sts.URL + "/v1/token",
		"credential_source": map[string]any{"file": subject}})
	file := filepath.Join(dir, "wif.json")
	if err := os.WriteFile(file, wif, 0o600); err != nil {
		t.Fatal(err)
	}
	c := fleet()
	c.Boundaries["gcp-s3ns"].Identity = map[string]string{"credentialsFile": file, "project": "s3ns:acme"}
	id, err := (&clouds.Manager{Catalog: catalog.All, Config: c, Retry: fastRetry}).Preflight(context.Background(), "gcp-s3ns", "")
	if err != nil || id.Scope != "s3nsapis.fr" || id.Account != "s3ns:acme" || exchanged.Load() != 1 {
		t.Fatalf("%v %+v, exchanges %d", err, id, exchanged.Load())
	}
	if err := os.WriteFile(subject, []byte("someone-else"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (&clouds.Manager{Catalog: catalog.All, Config: c, Retry: fastRetry}).Preflight(context.Background(), "gcp-s3ns", ""); err == nil || !strings.Contains(err.Error(), "subject token rejected") {
		t.Fatalf("rejected subject token: %v", err)
	}
}
