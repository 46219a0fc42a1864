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
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Server is a running fake-gcs-server.
type Server struct {
	URL string // e.g. http://127.0.0.1:PORT
}

// Endpoint is the JSON API's base, what the gcs backend takes as storage_custom_endpoint.
func (s *Server) Endpoint() string { return s.URL + "/storage/v1/" }

// Binary is the fake-gcs-server binary ($ROLLOUT_FAKE_GCS, which the Makefile sets), or "" (then
// Start skips the test, or fails it when ROLLOUT_REQUIRE_OBJECT_STORES=1, as make test sets).
func Binary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("ROLLOUT_FAKE_GCS")
	if _, err := os.Stat(p); p == "" || err != nil {
		if os.Getenv("ROLLOUT_REQUIRE_OBJECT_STORES") == "1" {
			t.Fatalf("fake-gcs-server is not built (ROLLOUT_FAKE_GCS=%q): `make tools` builds it into .tools/", p)
		}
		t.Skip("fake-gcs-server is not built (make tools builds it; ROLLOUT_FAKE_GCS names it)")
	}
	return p
}

// Start runs a server on a free loopback port; it stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	log, err := os.Create(filepath.Join(dir, "fake-gcs-server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-scheme", "http", "-host", "127.0.0.1", "-port", strconv.Itoa(port),
		"-backend", "filesystem", "-filesystem-root", filepath.Join(dir, "data"), "-external-url", s.URL,
		"-public-host", fmt.Sprintf("127.0.0.1:%d", port), "-log-level", "warn")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(s.URL + "/storage/v1/b"); err == nil {
			resp.Body.Close()
			return s
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("fake-gcs-server did not answer on %s within 20s; its log:\n%s", s.URL, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
