package demo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rollout-dev/rollout/internal/temporal/devserver"
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
		if addr, err = devserver.FreeAddr(); err != nil {
			return stop, err
		}
		logPath := filepath.Join(logs, "temporal.log")
		fmt.Fprintf(sc.Notes, "Temporal development server at %s (log: %s)\n", addr, logPath)
		log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return stop, err
		}
		cmd, err := devserver.Start(t.CLI, addr, filepath.Join(logs, "temporal.db"), log)
		log.Close()
		if err != nil {
			return stop, fmt.Errorf("temporal server: %w", err)
		}
		procs = append(procs, cmd)
	}
	if err := devserver.Wait(ctx, addr, time.Minute); err != nil {
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
