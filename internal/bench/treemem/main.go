// Command treemem runs a command and reports the peak resident memory of its whole process tree
// (the command and every process descending from it, summed), sampled from /proc every interval.
// scripts/bench.sh uses it for rollout and for the bare OpenTofu script alike.
//
//	treemem [-every 100ms] -o FILE [-cpu FILE] -- COMMAND [ARG...]
//
// FILE gets the peak in MiB; the exit code is the command's. With -cpu, a profile of the tree by
// program: one line per command name with the processes seen and their CPU seconds (user +
// system, the last sample of each process, so a process's final interval is missed), and a
// "self" line with the command's own CPU, exact (read before it is reaped).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	every := flag.Duration("every", 100*time.Millisecond, "how often to sample")
	out := flag.String("o", "", "write the peak (MiB) to this file (required)")
	cpuOut := flag.String("cpu", "", "write CPU seconds by program of the tree to this file")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: treemem [-every D] -o FILE -- COMMAND [ARG...]")
		os.Exit(2)
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "treemem:", err)
		os.Exit(2)
	}
	done := make(chan error, 1)
	var self float64
	go func() {
		self = ownCPU(cmd.Process.Pid)
		done <- cmd.Wait()
	}()
	page := int64(os.Getpagesize())
	var peak int64
	cpu := map[int]sample{}
	t := time.NewTicker(*every)
	defer t.Stop()
	var err error
loop:
	for {
		if rss := treeRSS(cmd.Process.Pid, page, cpu); rss > peak {
			peak = rss
		}
		select {
		case err = <-done:
			break loop
		case <-t.C:
		}
	}
	if werr := os.WriteFile(*out, []byte(strconv.FormatInt(peak>>20, 10)+"\n"), 0o644); werr != nil {
		fmt.Fprintln(os.Stderr, "treemem:", werr)
		os.Exit(2)
	}
	if *cpuOut != "" {
		if werr := os.WriteFile(*cpuOut, []byte(profile(cpu, self)), 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "treemem:", werr)
			os.Exit(2)
		}
	}
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	} else if err != nil {
		os.Exit(2)
	}
}

// sample is the newest CPU reading of one process of the tree.
type sample struct {
	name string
	secs float64
}

// ticks is the kernel's clock tick (USER_HZ), 100 on Linux.
const ticks = 100

// ownCPU waits for pid to exit without reaping it, and reads its own CPU seconds (not its
// children's) from the zombie's stat; 0 when that fails.
func ownCPU(pid int) float64 {
	var info unix.Siginfo
	if unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil) != nil {
		return 0
	}
	_, f, ok := stat(fmt.Sprintf("/proc/%d/stat", pid))
	if !ok {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / ticks
}

// stat reads one /proc/PID/stat: the command name and the fields after it (f[0] is the state).
func stat(path string) (string, []string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, false // gone
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
	j := strings.IndexByte(s, '(')
	if i < 0 || j < 0 || j > i {
		return "", nil, false
	}
	f := strings.Fields(s[i+1:])
	return s[j+1 : i], f, len(f) >= 22
}

// program is the base name of the program pid runs (its argv[0]; the kernel's name, which is cut
// at 15 characters, when that cannot be read).
func program(pid int, comm string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if arg0, _, _ := strings.Cut(string(b), "\x00"); err == nil && arg0 != "" {
		return strings.ReplaceAll(filepath.Base(arg0), " ", "_")
	}
	return strings.ReplaceAll(comm, " ", "_")
}

// profile renders the CPU seconds of the tree by program, most first, then the root's own.
func profile(cpu map[int]sample, self float64) string {
	type row struct {
		name  string
		procs int
		secs  float64
	}
	by := map[string]*row{}
	for _, s := range cpu {
		r := by[s.name]
		if r == nil {
			r = &row{name: s.name}
			by[s.name] = r
		}
		r.procs++
		r.secs += s.secs
	}
	rows := make([]*row, 0, len(by))
	for _, r := range by {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].secs > rows[j].secs })
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%s %d %.2f\n", r.name, r.procs, r.secs)
	}
	fmt.Fprintf(&b, "self 1 %.2f\n", self)
	return b.String()
}

// treeRSS sums the resident memory (bytes) of root and its descendants, from one /proc scan, and
// records each one's CPU seconds in cpu.
func treeRSS(root int, page int64, cpu map[int]sample) int64 {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	parent := map[int]int{}
	rss := map[int]int64{}
	names := map[int]string{}
	secs := map[int]float64{}
	for _, p := range stats {
		name, f, ok := stat(p)
		if !ok {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		ppid, _ := strconv.Atoi(f[1])
		pages, _ := strconv.ParseInt(f[21], 10, 64) // field 24 of stat: rss in pages
		u, _ := strconv.ParseFloat(f[11], 64)       // fields 14 and 15: utime, stime in ticks
		s, _ := strconv.ParseFloat(f[12], 64)
		parent[pid], rss[pid], names[pid], secs[pid] = ppid, pages*page, name, (u+s)/ticks
	}
	var sum int64
	for pid, r := range rss {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				sum += r
				name := cpu[pid].name
				if name == "" {
					name = program(pid, names[pid])
				}
				cpu[pid] = sample{name, secs[pid]}
				break
			}
		}
	}
	return sum
}
