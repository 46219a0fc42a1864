// Command treemem runs a command and reports the peak resident memory of its whole process tree
// (the command and every process descending from it, summed), sampled from /proc every interval.
// scripts/bench.sh uses it for rollout and for the bare OpenTofu script alike.
//
//	treemem [-every 100ms] -o FILE -- COMMAND [ARG...]
//
// FILE gets the peak in MiB; the exit code is the command's.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	every := flag.Duration("every", 100*time.Millisecond, "how often to sample")
	out := flag.String("o", "", "write the peak (MiB) to this file (required)")
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
	go func() { done <- cmd.Wait() }()
	page := int64(os.Getpagesize())
	var peak int64
	t := time.NewTicker(*every)
	defer t.Stop()
	var err error
loop:
	for {
		if rss := treeRSS(cmd.Process.Pid, page); rss > peak {
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
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	} else if err != nil {
		os.Exit(2)
	}
}

// treeRSS sums the resident memory (bytes) of root and its descendants, from one /proc scan.
func treeRSS(root int, page int64) int64 {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	parent := map[int]int{}
	rss := map[int]int64{}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 22 {
			continue
		}
		pid, _ := strconv.Atoi(strings.Fields(s)[0])
		ppid, _ := strconv.Atoi(f[1])
		pages, _ := strconv.ParseInt(f[21], 10, 64) // field 24 of stat: rss in pages
		parent[pid], rss[pid] = ppid, pages*page
	}
	var sum int64
	for pid, r := range rss {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				sum += r
				break
			}
		}
	}
	return sum
}
