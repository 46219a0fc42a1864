package provision

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// reapOrphans kills what an earlier, dead process of this tool left running in the targets'
// working directories (work/<target>/ under root). terraform-exec makes Terraform die with its
// parent, but not Terraform's own children: a local-exec provisioner or a provider plugin of a
// killed apply can go on changing things. They run in the working directory, which belongs to this
// tool alone, so before this process runs any Terraform there, anything running there is an
// orphan of a dead one. Linux only (it reads /proc); elsewhere it does nothing. It returns the PIDs
// it killed, by target.
func reapOrphans(root string) map[string][]int {
	root = filepath.Clean(root)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var victims []int
	byTarget := map[string][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil {
			continue
		}
		rest, ok := strings.CutPrefix(cwd, root+string(filepath.Separator))
		if !ok || rest == "" {
			continue
		}
		if descends(pid, self) {
			continue // this process's own Terraform (an output read for a gate) and its children
		}
		target, _, _ := strings.Cut(rest, string(filepath.Separator))
		victims = append(victims, pid)
		byTarget[target] = append(byTarget[target], pid)
	}
	for _, pid := range victims {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	// Wait until they are gone (their file locks and open state go with them).
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range victims {
		for time.Now().Before(deadline) {
			if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err != nil || zombie(pid) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return byTarget
}

// descends says whether pid is a descendant of ancestor, by its chain of parents.
func descends(pid, ancestor int) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return false
		}
		s := string(b)
		j := strings.LastIndexByte(s, ')')
		if j < 0 {
			return false
		}
		fields := strings.Fields(s[j+1:]) // state, ppid, ...
		if len(fields) < 2 {
			return false
		}
		if pid, err = strconv.Atoi(fields[1]); err != nil {
			return false
		}
		if pid == ancestor {
			return true
		}
	}
	return false
}

// zombie says whether pid has exited and only waits to be reaped by its parent.
func zombie(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}
