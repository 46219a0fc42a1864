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
	"net/http/httptest"
	"os"
	"path/filepath"
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
