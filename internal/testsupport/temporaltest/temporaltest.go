// Package temporaltest runs a real Temporal server for tests: the Temporal CLI's development
// server (SQLite, loopback), built once per machine by make test-tools (ROLLOUT_TEMPORAL_CLI).
package temporaltest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rollout-dev/rollout/internal/temporal/devserver"
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
	addr, err := devserver.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &Server{Addr: addr, t: t, bin: bin, db: filepath.Join(dir, "temporal.db"), log: filepath.Join(dir, "server.log")}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	log, err := os.OpenFile(s.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close()
	if s.cmd, err = devserver.Start(s.bin, s.Addr, s.db, log); err != nil {
		s.t.Fatal(err)
	}
	if err := devserver.Wait(context.Background(), s.Addr, time.Minute); err != nil {
		b, _ := os.ReadFile(s.log)
		s.t.Fatalf("%v\n%s", err, b)
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
