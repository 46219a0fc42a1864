// Package devserver runs the Temporal CLI's development server (a real Temporal server on SQLite)
// on loopback, for the demo on Temporal and the tests.
package devserver

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"time"

	"go.temporal.io/sdk/client"
)

// Start starts the development server of the Temporal CLI at cli on addr (a loopback host:port):
// its database the SQLite file db, no UI, errors only to log. Wait tells when it answers.
func Start(cli, addr, db string, log io.Writer) (*exec.Cmd, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(cli, "server", "start-dev", "--headless", "--ip", host, "--port", port,
		"--db-filename", db, "--log-level", "error")
	cmd.Stdout, cmd.Stderr = log, log
	return cmd, cmd.Start()
}

// Wait waits up to timeout for the frontend at addr to answer.
func Wait(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := client.DialContext(dctx, client.Options{HostPort: addr, Logger: quiet{}})
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the Temporal server at %s did not answer within %s: %w", addr, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// FreeAddr is a loopback address no one listens on now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// quiet is a logger of nothing: a server that is not up yet is expected here.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
