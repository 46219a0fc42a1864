package provision

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A process left running in a target's working directory by a dead run (its parent gone, as a
// provisioner outlives the killed Terraform) is killed; this process's own child in a working
// directory, and a process elsewhere, are left alone.
func TestReapOrphans(t *testing.T) {
	root, other := t.TempDir(), t.TempDir()
	for _, d := range []string{"t-1/sub", "t-2"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The orphan: started by a shell that exits at once, so its parent is no longer us.
	sh := exec.Command("sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!")
	sh.Dir = filepath.Join(root, "t-1", "sub")
	out, err := sh.Output()
	if err != nil {
		t.Fatal(err)
	}
	orphan, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	defer syscall.Kill(orphan, syscall.SIGKILL)
	own := exec.Command("sleep", "60") // this process's own, in t-2's working directory
	own.Dir = filepath.Join(root, "t-2")
	bystander := exec.Command("sleep", "60")
	bystander.Dir = other
	for _, c := range []*exec.Cmd{own, bystander} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Process.Kill()
	}
	killed := reapOrphans(root)
	if len(killed) != 1 || !slices.Equal(killed["t-1"], []int{orphan}) {
		t.Fatalf("killed %v; want only the orphan %d of t-1 (own child %d, bystander %d)", killed, orphan, own.Process.Pid, bystander.Process.Pid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(orphan, 0) == nil && !zombie(orphan) {
		if time.Now().After(deadline) {
			t.Fatal("the orphan is still running")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := own.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatal("this process's own child was killed")
	}
}
