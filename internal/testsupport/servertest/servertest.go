// Package servertest is what the packages that run a real server for tests share: finding its
// binary, a free loopback address, and starting it with its log kept and waiting until it listens.
package servertest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Binary is the server binary that the variable env names (the Makefile sets it from .tools/);
// when it is not there the test is skipped, or failed when ROLLOUT_REQUIRE_OBJECT_STORES=1 (as
// make test sets): what names the server for the message.
func Binary(t testing.TB, env, what string) string {
	t.Helper()
	p := os.Getenv(env)
	if _, err := os.Stat(p); p == "" || err != nil {
		if os.Getenv("ROLLOUT_REQUIRE_OBJECT_STORES") == "1" {
			t.Fatalf("%s is not installed (%s=%q): `make tools` puts it into .tools/", what, env, p)
		}
		t.Skipf("%s is not installed (make tools puts it into .tools/; %s names it)", what, env)
	}
	return p
}

// FreeAddr is a loopback address nobody listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs cmd with its output in dir/name.log, kills it when the test ends, and returns once
// addr accepts connections (failing the test, with the log, after 30 s).
func Start(t testing.TB, cmd *exec.Cmd, dir, name, addr string) {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	WaitListen(t, name, addr, log.Name())
}

// WaitListen returns once addr accepts connections, failing the test after 30 s with the log of
// the server name.
func WaitListen(t testing.TB, name, addr, logFile string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile)
			t.Fatalf("%s did not listen on %s within 30s; its log:\n%s", name, addr, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
