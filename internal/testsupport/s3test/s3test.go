// Package s3test runs a real S3-compatible server on loopback (versitygw, built by `make tools`
// into .tools/) with the accounts and buckets a test asks for, so that Terraform's own s3 backend,
// with use_lockfile's conditional writes, keeps state in it exactly as it would in a boundary's
// bucket. Requests of the test itself are signed with the AWS SDK's SigV4 signer.
package s3test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/rollout-dev/rollout/internal/testsupport/servertest"
)

// Key is an access key pair.
type Key struct{ ID, Secret string }

// Server is a running versitygw with a posix backend in a temporary directory, in one region.
type Server struct {
	URL    string
	Region string
	Data   string // the posix backend's root: one directory per bucket
	bin    string
	root   Key
}

// Start runs a server for region on a free loopback port; it stops when the test ends. The binary
// is $ROLLOUT_VERSITYGW (the Makefile sets it from .tools/).
func Start(t testing.TB, region string) *Server {
	t.Helper()
	bin := servertest.Binary(t, "ROLLOUT_VERSITYGW", "versitygw")
	dir := t.TempDir()
	s := &Server{Region: region, Data: filepath.Join(dir, "data"), bin: bin, root: Key{"ROOTACCESSKEY" + strings.ToUpper(strings.ReplaceAll(region, "-", "")), "root-secret-" + region}}
	for _, d := range []string{s.Data, filepath.Join(dir, "iam")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	addr := servertest.FreeAddr(t)
	s.URL = "http://" + addr
	servertest.Start(t, exec.Command(bin, "--access", s.root.ID, "--secret", s.root.Secret, "--region", region, "--port", addr,
		"--iam-dir", filepath.Join(dir, "iam"), "posix", s.Data), dir, "versitygw", addr)
	return s
}

// Account creates a user account with key k: it sees only the buckets it owns.
func (s *Server) Account(t testing.TB, k Key) {
	t.Helper()
	out, err := exec.Command(s.bin, "admin", "-a", s.root.ID, "-s", s.root.Secret, "--region", s.Region, "-er", s.URL,
		"create-user", "-a", k.ID, "-s", k.Secret, "-r", "user").CombinedOutput()
	if err != nil || strings.Contains(strings.ToLower(string(out)), "error") {
		t.Fatalf("versitygw admin create-user %s: %v\n%s", k.ID, err, out)
	}
}

// Bucket creates bucket name, as an administrator does, and makes k its owner.
func (s *Server) Bucket(t testing.TB, k Key, name string) {
	t.Helper()
	code, body, err := s.Do(context.Background(), s.root, http.MethodPut, "/"+name, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("create bucket %s: %d %v\n%s", name, code, err, body)
	}
	out, err := exec.Command(s.bin, "admin", "-a", s.root.ID, "-s", s.root.Secret, "--region", s.Region, "-er", s.URL,
		"change-bucket-owner", "-b", name, "-o", k.ID).CombinedOutput()
	if err != nil || strings.Contains(strings.ToLower(string(out)), "error") {
		t.Fatalf("versitygw admin change-bucket-owner %s %s: %v\n%s", name, k.ID, err, out)
	}
}

// Do sends one request signed with k (path-style: /bucket/key...) and returns the status and body.
func (s *Server) Do(ctx context.Context, k Key, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	req.ContentLength = int64(len(body))
	creds := aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "s3", s.Region, time.Now()); err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Read reads bucket/key as k; ok is false when it does not exist.
func (s *Server) Read(t testing.TB, k Key, bucket, key string) (data []byte, ok bool) {
	t.Helper()
	code, body, err := s.Do(context.Background(), k, http.MethodGet, "/"+bucket+"/"+key, nil)
	switch {
	case err != nil:
		t.Fatal(err)
	case code == http.StatusNotFound:
		return nil, false
	case code != http.StatusOK:
		t.Fatalf("get s3://%s/%s as %s: %d\n%s", bucket, key, k.ID, code, body)
	}
	return body, true
}

// Exists says whether bucket/key exists, read with the root account.
func (s *Server) Exists(t testing.TB, bucket, key string) bool {
	t.Helper()
	code, body, err := s.Do(context.Background(), s.root, http.MethodHead, "/"+bucket+"/"+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch code {
	case http.StatusOK:
		return true
	case http.StatusNotFound:
		return false
	}
	t.Fatalf("head s3://%s/%s: %d\n%s", bucket, key, code, body)
	return false
}

// String names the server for messages.
func (s *Server) String() string { return fmt.Sprintf("versitygw %s (%s)", s.URL, s.Region) }
