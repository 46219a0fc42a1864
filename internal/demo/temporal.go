package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rollout-dev/rollout/internal/temporal"
)

// Temporal runs the demo on the engine on Temporal: a workflow per run, a worker per boundary.
type Temporal struct {
	Address string // a Temporal frontend ("": start the CLI's development server)
	CLI     string // the Temporal CLI, for the development server
	Rollout string // this rollout binary, to start the workers
}

// onTemporal makes the demo fleet's runs Temporal workflows: the development server when no
// address is given, a journal worker and one worker per boundary. stop ends them all.
func (t *Temporal) onTemporal(ctx context.Context, sc Scenario, dir string) (stop func(), err error) {
	var procs []*exec.Cmd
	stop = func() {
		for i := len(procs) - 1; i >= 0; i-- {
			_ = procs[i].Process.Signal(syscall.SIGTERM)
			_ = procs[i].Wait()
		}
	}
	logs := filepath.Join(dir, ".rollout")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return stop, err
	}
	start := func(name string, args ...string) error {
		log, err := os.OpenFile(filepath.Join(logs, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer log.Close()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		procs = append(procs, cmd)
		return nil
	}
	addr := t.Address
	if addr == "" {
		if addr, err = freeAddr(); err != nil {
			return stop, err
		}
		fmt.Fprintf(sc.Notes, "Temporal development server at %s (log: %s)\n", addr, filepath.Join(logs, "temporal.log"))
		_, port, _ := net.SplitHostPort(addr)
		if err := start("temporal", t.CLI, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", port,
			"--db-filename", filepath.Join(logs, "temporal.db"), "--log-level", "error"); err != nil {
			return stop, err
		}
	}
	if err := waitForServer(ctx, addr); err != nil {
		return stop, err
	}
	cfg, err := os.OpenFile(filepath.Join(dir, "rollout.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return stop, err
	}
	_, err = fmt.Fprintf(cfg, "engine: temporal\ntemporal: {address: %q, taskQueuePrefix: demo}\n", addr)
	if cerr := cfg.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return stop, err
	}
	for _, w := range [][]string{{"--journal"}, {"--boundary", "local-public"}, {"--boundary", "local-eu"}, {"--boundary", "local-gov"}} {
		name := "worker-" + strings.TrimPrefix(w[len(w)-1], "--")
		fmt.Fprintf(sc.Notes, "rollout worker %s (log: %s)\n", strings.Join(w, " "), filepath.Join(logs, name+".log"))
		if err := start(name, append([]string{t.Rollout, "--config", dir, "worker"}, w...)...); err != nil {
			return stop, err
		}
	}
	return stop, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

// waitForServer waits up to a minute for the frontend to answer.
func waitForServer(ctx context.Context, addr string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := temporal.Dial(dctx, temporal.Cluster{Address: addr, Namespace: "default"})
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.Join(fmt.Errorf("the Temporal server at %s did not answer within a minute", addr), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
