// Package oidctest runs a real OpenID Connect issuer on loopback TLS (mockoidc: discovery, JWKS,
// the code flow, RS256 tokens) and mints ID tokens with any claims, as a pipeline's issuer
// (GitHub Actions, Azure DevOps, GitLab) would give them.
package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// Issuer is a running issuer.
type Issuer struct {
	*mockoidc.MockOIDC
	CAFile string       // the PEM of the certificate it serves (SSL_CERT_FILE for a process)
	Client *http.Client // trusts it
}

// Start runs an issuer on 127.0.0.1 over TLS until the test ends.
func Start(t *testing.T) *Issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "oidctest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	// mockoidc's RunTLS serves plain HTTP under an https issuer URL: the TLS is the listener's here.
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(tls.NewListener(ln, cfg), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	ca := filepath.Join(t.TempDir(), "issuer-ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return &Issuer{MockOIDC: m, CAFile: ca, Client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
}

// Token is an ID token of this issuer for audience and subject, valid from issued for ttl, with
// more claims.
func (i *Issuer) Token(t *testing.T, audience, subject string, issued time.Time, ttl time.Duration, more map[string]any) string {
	t.Helper()
	claims := jwt.MapClaims{"iss": i.Issuer(), "aud": audience, "sub": subject, "iat": issued.Unix(), "nbf": issued.Unix(), "exp": issued.Add(ttl).Unix()}
	for k, v := range more {
		claims[k] = v
	}
	tok, err := i.Keypair.SignJWT(claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
