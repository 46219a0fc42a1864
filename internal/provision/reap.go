package provision

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// reapOrphans kills what an earlier, dead process of this tool left running in a target's working
// directory. terraform-exec makes Terraform die with its parent, but not Terraform's own children:
// a local-exec provisioner or a provider plugin of a killed apply can go on changing things. They
// all run in the working directory, which belongs to this tool alone, so before the first
// Terraform run of a target in this process, anything running there is an orphan of a dead one.
// Linux only (it reads /proc); elsewhere it does nothing. It returns the PIDs it killed.
func reapOrphans(dir string) []int {
	dir = filepath.Clean(dir)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var victims []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil {
			continue
		}
		if cwd == dir || strings.HasPrefix(cwd, dir+string(filepath.Separator)) {
			victims = append(victims, pid)
		}
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
	return victims
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
