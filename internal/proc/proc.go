// Package proc answers questions about this machine's processes from /proc (Linux): whether a
// process is alive (a zombie is not), when it started, and which processes belong to a process
// group. Elsewhere it knows only what kill(pid, 0) tells.
package proc

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stat is what /proc/PID/stat says of a process that this package needs.
type Stat struct {
	PID, PPID, PGID int
	State           byte   // R, S, D, Z (zombie), T, ...
	Start           uint64 // clock ticks after boot: with PID, names one process for the life of the machine
}

// ErrGone is returned for a process that does not exist (or whose /proc entry cannot be read).
var ErrGone = errors.New("no such process")

// Read returns a process's stat.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return Stat{}, ErrGone
	}
	return parse(string(b))
}

// parse reads "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
// utime stime cutime cstime priority nice threads itrealvalue starttime ...": comm may hold
// spaces and parentheses, so the fields after it are found from its last ')'.
func parse(s string) (Stat, error) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return Stat{}, errors.New("malformed stat")
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, errors.New("malformed stat")
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(s[:open]))
	ppid, err2 := strconv.Atoi(f[1])
	pgid, err3 := strconv.Atoi(f[2])
	start, err4 := strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Stat{}, errors.New("malformed stat")
	}
	return Stat{PID: pid, PPID: ppid, PGID: pgid, State: f[0][0], Start: start}, nil
}

// Alive says whether pid names a running process: it exists and is not a zombie (a process that
// exited and only waits for its parent to collect it holds nothing any more).
func Alive(pid int) bool {
	if pid <= 0 || !exists(pid) {
		return false
	}
	st, err := Read(pid)
	if err != nil {
		return !procMounted() // no /proc to ask: kill(pid, 0) is all there is
	}
	return st.State != 'Z' && st.State != 'X'
}

// Group lists the live processes whose process group is pgid.
func Group(pgid int) []Stat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []Stat
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := Read(pid)
		if err != nil || st.PGID != pgid || st.State == 'Z' || st.State == 'X' {
			continue
		}
		out = append(out, st)
	}
	return out
}

// Descendants lists the live processes whose chain of parents leads to one of pids (children in a
// process group or a session of their own included, which Group does not see: a Terraform's
// provider plugins).
func Descendants(pids ...int) []Stat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]Stat{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := Read(pid); err == nil && st.State != 'Z' && st.State != 'X' {
			children[st.PPID] = append(children[st.PPID], st)
		}
	}
	var out []Stat
	for queue := pids; len(queue) > 0; {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c.PID)
		}
	}
	return out
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// BootID names this boot of the machine ("" where unknown): a PID and start time name one
// process only within one boot.
func BootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
