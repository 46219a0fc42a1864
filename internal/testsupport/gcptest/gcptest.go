// Package gcptest gives Google Cloud tests a service account key of a chosen universe, whose
// token endpoint can be a loopback server, and a TLS certificate for loopback gRPC stand-ins.
package gcptest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// ServiceAccountFile writes a service account key (a fresh RSA key) for project svc-prod whose
// token endpoint is tokenURI; universe "" is the default universe.
func ServiceAccountFile(t testing.TB, tokenURI, universe string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	f := map[string]any{"type": "service_account", "project_id": "svc-prod", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "deployer@svc-prod.iam.gserviceaccount.com", "client_id": "1", "token_uri": tokenURI}
	if universe != "" {
		f["universe_domain"] = universe
	}
	b, _ := json.Marshal(f)
	p := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// LoopbackTLS is a certificate for 127.0.0.1 (the one net/http/httptest uses) and a pool that
// trusts it, for a gRPC server on loopback.
func LoopbackTLS(t testing.TB) (tls.Certificate, *x509.CertPool) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	defer ts.Close()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return ts.TLS.Certificates[0], pool
}

// TokenServer stands in for a universe's OAuth 2.0 token endpoint (the JWT bearer grant a
// service account key uses).
type TokenServer struct {
	*httptest.Server
	Status   atomic.Int32 // answer with this status and invalid_grant (0: issue tokens)
	Throttle atomic.Int32 // answer this many requests with 429 first
}

// Token starts a token endpoint; it stops when the test ends.
func Token(t testing.TB) *TokenServer {
	s := &TokenServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if s.Throttle.Add(-1) >= 0 {
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":"rate_limit_exceeded"}`)
			return
		}
		if code := s.Status.Load(); code != 0 {
			w.WriteHeader(int(code))
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
			return
		}
		if r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.Form.Get("assertion") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, `{"access_token":"ya29.test","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(s.Close)
	return s
}
