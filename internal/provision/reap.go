package provision

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/internal/proc"
)

// Reaping only what is provably ours.
//
// terraform-exec starts every Terraform command in a process group of its own (Setpgid) and makes
// it die with its parent, but not Terraform's own children: a local-exec provisioner or a provider
// plugin of a killed apply can go on changing things. So before each command runs, the shim in
// front of the binary (versionshim.go) records it in the target's working directory, under
// procDir: a file named after its pid holding "PID START", START being the process's start time
// (clock ticks after boot). PID and START together name one process for the life of the machine,
// and the pid is the process group of everything Terraform starts. A record is removed when the
// operation that made it ends.
//
// A record left behind means a process of this tool died during that command. Before this
// process runs Terraform for the target, it kills the members of each recorded group that is
// still there: the leader when its start time matches the record, and the group's other members
// (a pid is never reused while a process group of that number exists). A process that merely runs
// in the working directory (an operator's shell, a `sleep` started by hand) belongs to no recorded
// group and is never touched.

// procDir is where a target's Terraform commands are recorded.
func procDir(workDir string) string { return filepath.Join(workDir, ".rollout-procs") }

type procRecord struct {
	file  string
	pid   int
	start uint64
}

// readRecords lists the records in dir; a record that does not parse is dropped with its file.
func readRecords(dir string) []procRecord {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []procRecord
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		f := strings.Fields(string(b))
		var pid int
		var start uint64
		if err == nil && len(f) == 2 {
			pid, err = strconv.Atoi(f[0])
			if err == nil {
				start, err = strconv.ParseUint(f[1], 10, 64)
			}
		}
		if err != nil || len(f) != 2 || pid <= 1 {
			_ = os.Remove(p)
			continue
		}
		out = append(out, procRecord{file: p, pid: pid, start: start})
	}
	return out
}

// clearRecords removes a target's records when the operation that made them ended by itself:
// Terraform then waited for what it started. An interrupted one (ctx ended: Terraform was
// signalled, perhaps killed) keeps them, so that the next run reaps what it left.
func clearRecords(ctx context.Context, workDir string) {
	if ctx.Err() != nil {
		return
	}
	for _, r := range readRecords(procDir(workDir)) {
		_ = os.Remove(r.file)
	}
}

// reapGrace is how long an interrupted orphan Terraform may take to stop before it is killed.
var reapGrace = 10 * time.Second

// reapOrphans kills what a dead process of this tool left running of the Terraform commands
// recorded in workDir, removes the records, and returns the pids it killed. Linux only (it reads
// /proc); elsewhere it kills nothing.
func reapOrphans(workDir string) []int {
	var victims, leaders []int
	for _, r := range readRecords(procDir(workDir)) {
		group := ours(r)
		victims = append(victims, group...)
		if slices.Contains(group, r.pid) {
			leaders = append(leaders, r.pid)
		}
		// What they started in a group of its own (Terraform's provider plugins) goes with them:
		// found before they are killed, while it is still their child.
		for _, st := range proc.Descendants(group...) {
			if st.Start >= r.start && !slices.Contains(victims, st.PID) {
				victims = append(victims, st.PID)
			}
		}
		_ = os.Remove(r.file)
	}
	// Terraform itself is interrupted first, as a person's Ctrl-C would: it stops and writes its
	// state whole. Killed while it writes a local state file, it can leave that file empty
	// (Terraform 1.11 truncates it first; seen in the kill-mid-apply test), and the target's next
	// init fails on it. What has not ended within the grace is killed.
	for _, pid := range leaders {
		_ = proc.Interrupt(pid)
	}
	graceEnd := time.Now().Add(reapGrace)
	for _, pid := range leaders {
		for proc.Alive(pid) && time.Now().Before(graceEnd) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, pid := range victims {
		if proc.Alive(pid) {
			_ = proc.Kill(pid)
		}
	}
	// Wait until they are gone (their file locks and open state go with them).
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range victims {
		for proc.Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return victims
}

// ours lists the live processes that the record proves to be of the recorded command's group.
func ours(r procRecord) []int {
	self := os.Getpid()
	var out []int
	for _, st := range proc.Group(r.pid) {
		switch {
		case st.PID == self:
			continue
		case st.PID == r.pid && st.Start != r.start:
			return nil // the pid was reused by an unrelated process that leads a group of its own
		case st.Start < r.start:
			continue // started before the recorded command: not its child
		}
		out = append(out, st.PID)
	}
	return out
}
