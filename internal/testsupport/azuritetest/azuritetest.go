// Package azuritetest runs Azure Blob Storage on loopback for Terraform's azurerm backend: Azurite
// (built by `make tools` into .tools/ from the npm registry), over TLS, reached the way the
// backend reaches a sovereign cloud's storage. The backend builds every blob URL as
// https://ACCOUNT.blob.SUFFIX/ from its cloud's metadata and cannot take an endpoint, so the
// package serves a custom cloud's metadata (its storage suffix is "blob.azurite.test"'s parent),
// and an HTTPS proxy that carries every ACCOUNT.blob.SUFFIX to Azurite, which reads the account
// from the host name. Its CA signs both, for SSL_CERT_FILE. Nothing in /etc/hosts changes.
package azuritetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/testsupport/servertest"
)

// Suffix is the storage suffix of the stand-in cloud: accounts are ACCOUNT.blob.Suffix.
const Suffix = "azurite.test"

// Account is a storage account and its shared key.
type Account struct{ Name, Key string }

// Server is a running Azurite with its cloud metadata and proxy.
type Server struct {
	MetadataHost string // host:port of the cloud metadata endpoint (the backend's metadata_host)
	Proxy        string // http://host:port: HTTPS_PROXY for whatever reaches the accounts
	CAFile       string // PEM of the CA that signed Azurite's and the metadata's certificates
	Environment  string // the cloud's name in its metadata
	blob         string // Azurite's own address
	client       *http.Client
}

// Start runs Azurite ($ROLLOUT_AZURITE, which the Makefile sets from .tools/) with accounts, the
// metadata of a custom cloud named environment whose Resource Manager and Entra are
// resourceManager and login (URLs), and the proxy; all stop when the test ends.
func Start(t testing.TB, environment, resourceManager, login string, accounts ...Account) *Server {
	t.Helper()
	bin := servertest.Binary(t, "ROLLOUT_AZURITE", "azurite")
	dir := t.TempDir()
	ca := newCA(t)
	s := &Server{CAFile: filepath.Join(dir, "ca.pem"), Environment: environment}
	if err := os.WriteFile(s.CAFile, ca.certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := ca.issue(t, dir, "azurite", "*.blob."+Suffix, "127.0.0.1")
	s.blob = servertest.FreeAddr(t)
	var list []string
	for _, a := range accounts {
		list = append(list, a.Name+":"+a.Key)
	}
	host, port, _ := net.SplitHostPort(s.blob)
	cmd := exec.Command(bin, "--blobHost", host, "--blobPort", port, "--location", filepath.Join(dir, "data"),
		"--cert", certFile, "--key", keyFile, "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent")
	cmd.Env = append(os.Environ(), "AZURITE_ACCOUNTS="+strings.Join(list, ";"))
	servertest.Start(t, cmd, dir, "azurite", s.blob)
	s.MetadataHost = s.serveMetadata(t, ca, environment, resourceManager, login)
	s.Proxy = s.serveProxy(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.certPEM)
	s.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool},
		Proxy: http.ProxyURL(mustURL(s.Proxy))}}
	return s
}

// serveMetadata serves the custom cloud's metadata (GET /metadata/endpoints) over TLS.
func (s *Server) serveMetadata(t testing.TB, ca *authority, environment, resourceManager, login string) string {
	srv := httptest.NewUnstartedServer(MetadataHandler(Cloud{Name: environment, ResourceManager: resourceManager, Login: login, StorageSuffix: Suffix}))
	cert, key := ca.issue(t, t.TempDir(), "metadata", "127.0.0.1")
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

// Cloud is what a custom cloud's metadata endpoint tells of it.
type Cloud struct{ Name, ResourceManager, Login, StorageSuffix string }

// MetadataHandler answers GET /metadata/endpoints?api-version=V as Azure Resource Manager does for
// each version its clients send: 2022-09-01 (Terraform's azurerm backend, through go-azure-sdk)
// gets the serving cloud as one object; 2019-05-01 and 2020-06-01 (OpenTofu's backend, and the
// Azure CLI) get a list of clouds; 2015-01-01 and 1.0 the first format (galleryEndpoint,
// graphEndpoint, portalEndpoint, authentication). Any other version is refused with 400, as Azure
// refuses an api-version it does not serve, so a client asking for a version this stand-in does
// not know fails here rather than reading a body meant for another.
func MetadataHandler(c Cloud) http.Handler {
	cloud := map[string]any{
		"name": c.Name, "resourceManager": c.ResourceManager, "portal": "", "gallery": "", "graph": "", "batch": "",
		"authentication": map[string]any{"loginEndpoint": c.Login, "audiences": []string{c.ResourceManager}, "tenant": "common", "identityProvider": "AAD"},
		"suffixes":       map[string]any{"storage": c.StorageSuffix, "keyVaultDns": "vault." + c.StorageSuffix},
	}
	first := map[string]any{"galleryEndpoint": "", "graphEndpoint": "", "portalEndpoint": "",
		"authentication": map[string]any{"loginEndpoint": c.Login, "audiences": []string{c.ResourceManager}}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metadata/endpoints" {
			http.NotFound(w, r)
			return
		}
		var body any
		switch v := r.URL.Query().Get("api-version"); v {
		case "2022-09-01": // this version added the resource IDs of the cloud's other services
			one := maps.Clone(cloud)
			for k, host := range map[string]string{"microsoftGraphResourceId": "graph", "logAnalyticsResourceId": "loganalytics",
				"appInsightsResourceId": "applicationinsights", "attestationResourceId": "attest", "synapseAnalyticsResourceId": "synapse",
				"ossrDbmsResourceId": "ossrdbms", "sqlManagement": "sqlmanagement"} {
				one[k] = "https://" + host + "." + c.StorageSuffix + "/"
			}
			body = one
		case "2019-05-01", "2020-06-01":
			body = []any{cloud}
		case "2015-01-01", "1.0":
			body = first
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "InvalidApiVersionParameter",
				"message": fmt.Sprintf("The api-version '%s' is invalid. The supported versions are '2022-09-01,2020-06-01,2019-05-01,2015-01-01,1.0'.", v)}})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	})
}

// serveProxy answers CONNECT for ACCOUNT.blob.Suffix:443 with a tunnel to Azurite, and refuses
// every other destination.
func (s *Server) serveProxy(t testing.TB) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.Host)
		if r.Method != http.MethodConnect || !strings.HasSuffix(host, ".blob."+Suffix) {
			http.Error(w, "this proxy reaches "+Suffix+" storage accounts only", http.StatusForbidden)
			return
		}
		up, err := net.Dial("tcp", s.blob)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		_, _ = rw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
		_ = rw.Flush()
		go func() { _, _ = io.Copy(up, rw); up.Close() }()
		_, _ = io.Copy(conn, up)
		conn.Close()
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Container creates a container in account, signed with the account's shared key.
func (s *Server) Container(t testing.TB, a Account, name string) {
	t.Helper()
	code, body := s.Do(t, a, http.MethodPut, "/"+name+"?restype=container")
	if code != http.StatusCreated {
		t.Fatalf("create container %s/%s: %d\n%s", a.Name, name, code, body)
	}
}

// Do sends one request to account a signed with key's account (a's own, or another's: its key
// then signs for a's name) and returns the status and body.
func (s *Server) Do(t testing.TB, a Account, method, pathAndQuery string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+a.Name+".blob."+Suffix+pathAndQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := signSharedKey(req, a); err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Blob reads account/container/name with the account's key; ok is false when it does not exist.
func (s *Server) Blob(t testing.TB, a Account, container, name string) ([]byte, bool) {
	t.Helper()
	code, body := s.Do(t, a, http.MethodGet, "/"+container+"/"+name)
	switch code {
	case http.StatusOK:
		return body, true
	case http.StatusNotFound:
		return nil, false
	}
	t.Fatalf("get %s/%s/%s: %d\n%s", a.Name, container, name, code, body)
	return nil, false
}

// Leased says whether a blob holds a lease (the azurerm backend's state lock).
func (s *Server) Leased(t testing.TB, a Account, container, name string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "https://"+a.Name+".blob."+Suffix+"/"+container+"/"+name, nil)
	if err := signSharedKey(req, a); err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && resp.Header.Get("x-ms-lease-state") == "leased"
}

// Key is a fresh account key, as Azure gives them (64 random bytes, base64).
func Key() string {
	b := make([]byte, 64)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// authority is a throw-away CA.
type authority struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newCA(t testing.TB) *authority {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rollout test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &authority{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a certificate for names (DNS names or IP addresses) and its key into dir.
func (ca *authority) issue(t testing.TB, dir, base string, names ...string) (string, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, base+".pem"), filepath.Join(dir, base+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
