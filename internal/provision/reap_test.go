package provision

import (
	"os/exec"
	"slices"
	"testing"
	"time"
)

// A process left running in a target's working directory (as a dead apply's provisioner would
// be) is killed before the target runs again; one elsewhere is left alone.
func TestReapOrphans(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	orphan := exec.Command("sleep", "60")
	orphan.Dir = dir
	bystander := exec.Command("sleep", "60")
	bystander.Dir = other
	for _, c := range []*exec.Cmd{orphan, bystander} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	defer bystander.Process.Kill()
	done := make(chan struct{})
	go func() { _ = orphan.Wait(); close(done) }()
	pids := reapOrphans(dir)
	if !slices.Contains(pids, orphan.Process.Pid) || slices.Contains(pids, bystander.Process.Pid) {
		t.Fatalf("killed %v; orphan %d, bystander %d", pids, orphan.Process.Pid, bystander.Process.Pid)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the orphan is still running")
	}
}
