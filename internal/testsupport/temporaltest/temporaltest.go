// Package temporaltest runs a real Temporal server for tests: the Temporal CLI's development
// server (SQLite, loopback), built once per machine by make test-tools (ROLLOUT_TEMPORAL_CLI).
package temporaltest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
)

// Server is a running development server.
type Server struct {
	Addr string // host:port of its frontend
	t    testing.TB
	bin  string
	db   string
	cmd  *exec.Cmd
	log  string
}

// Start starts a server for the test, stopped at its end; without the CLI the test is skipped,
// or fails when ROLLOUT_REQUIRE_TEMPORAL=1 (make test).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := CLI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	s := &Server{Addr: addr, t: t, bin: bin, db: filepath.Join(dir, "temporal.db"), log: filepath.Join(dir, "server.log")}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	p, _ := strconv.Atoi(port)
	log, err := os.OpenFile(s.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close()
	s.cmd = exec.Command(s.bin, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", strconv.Itoa(p),
		"--db-filename", s.db, "--log-level", "error")
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := client.DialContext(ctx, client.Options{HostPort: s.Addr})
		cancel()
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.log)
			s.t.Fatalf("the Temporal server did not answer at %s: %v\n%s", s.Addr, err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop kills the server (its database stays, for Restart).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart kills the server and starts it again on the same port and database.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Client is a client of the server's default namespace, closed at the test's end.
func (s *Server) Client() client.Client {
	s.t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.Addr})
	if err != nil {
		s.t.Fatal(fmt.Errorf("temporal at %s: %w", s.Addr, err))
	}
	s.t.Cleanup(c.Close)
	return c
}

// CLI is the Temporal CLI (ROLLOUT_TEMPORAL_CLI); without it the test is skipped, or fails when
// ROLLOUT_REQUIRE_TEMPORAL=1 (make test).
func CLI(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("ROLLOUT_TEMPORAL_CLI")
	if _, err := os.Stat(bin); bin == "" || err != nil {
		if os.Getenv("ROLLOUT_REQUIRE_TEMPORAL") == "1" {
			t.Fatalf("the Temporal CLI is not at ROLLOUT_TEMPORAL_CLI=%q (make test-tools builds it)", bin)
		}
		t.Skip("ROLLOUT_TEMPORAL_CLI is not set (make test-tools builds the Temporal CLI)")
	}
	return bin
}
