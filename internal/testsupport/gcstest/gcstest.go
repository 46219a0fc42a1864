// Package gcstest runs a real Google Cloud Storage server on loopback (fake-gcs-server, built by
// `make tools` into .tools/) with a filesystem backend, so that Terraform's own gcs backend keeps
// state in it (storage_custom_endpoint) and locks it with its conditional create, exactly as in a
// boundary's bucket. It checks no credential: a test of who may read a bucket needs the S3 server.
package gcstest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rollout-dev/rollout/internal/testsupport/servertest"
)

// Server is a running fake-gcs-server.
type Server struct {
	URL string // e.g. http://127.0.0.1:PORT
}

// Endpoint is the JSON API's base, what the gcs backend takes as storage_custom_endpoint.
func (s *Server) Endpoint() string { return s.URL + "/storage/v1/" }

// Start runs a server on a free loopback port; it stops when the test ends. The binary is
// $ROLLOUT_FAKE_GCS (the Makefile sets it from .tools/).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := servertest.Binary(t, "ROLLOUT_FAKE_GCS", "fake-gcs-server")
	dir := t.TempDir()
	addr := servertest.FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	s := &Server{URL: "http://" + addr}
	servertest.Start(t, exec.Command(bin, "-scheme", "http", "-host", host, "-port", port, "-backend", "filesystem",
		"-filesystem-root", filepath.Join(dir, "data"), "-external-url", s.URL, "-public-host", addr, "-log-level", "warn"),
		dir, "fake-gcs-server", addr)
	return s
}

// Bucket creates a bucket.
func (s *Server) Bucket(t testing.TB, name string) {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q}`, name)
	resp, err := http.Post(s.URL+"/storage/v1/b?project=test", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("create gcs bucket %s: %s\n%s", name, resp.Status, b)
	}
}

// Object reads bucket/name; ok is false when it does not exist.
func (s *Server) Object(t testing.TB, bucket, name string) ([]byte, bool) {
	t.Helper()
	resp, err := http.Get(s.URL + "/storage/v1/b/" + bucket + "/o/" + url.PathEscape(name) + "?alt=media")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		return b, true
	case http.StatusNotFound:
		return nil, false
	}
	t.Fatalf("get gs://%s/%s: %s\n%s", bucket, name, resp.Status, b)
	return nil, false
}
