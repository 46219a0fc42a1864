//go:build unix

package proc

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestParseKeepsCommWithSpacesAndParens(t *testing.T) {
	st, err := parse("4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 0 0")
	if err != nil || st.PID != 4242 || st.PPID != 1 || st.PGID != 4242 || st.State != 'S' || st.Start != 98765 {
		t.Fatalf("parse = %+v, %v", st, err)
	}
	if _, err := parse("garbage"); err == nil {
		t.Fatal("garbage parsed")
	}
}

// A child that exited but was not waited for is a zombie: it exists in /proc, kill(pid, 0)
// succeeds, and yet it holds nothing any more. Before, the journal's lease counted it alive.
func TestAZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := Read(pid)
		if err == nil && st.State == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child did not become a zombie: %+v %v", st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if syscall.Kill(pid, 0) != nil {
		t.Fatal("kill(pid, 0) fails on a zombie here; the test proves nothing")
	}
	if Alive(pid) {
		t.Fatal("a zombie counts as alive")
	}
	if !Alive(os.Getpid()) {
		t.Fatal("this process is not alive")
	}
}

func TestGroupListsTheMembersOfAProcessGroup(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & sleep 30 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for len(Group(cmd.Process.Pid)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("group %d: %+v", cmd.Process.Pid, Group(cmd.Process.Pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, st := range Group(cmd.Process.Pid) {
		if st.PGID != cmd.Process.Pid {
			t.Fatalf("%+v is not in the group", st)
		}
	}
	if len(Group(os.Getpid())) != 0 && os.Getpid() != syscall.Getpgrp() {
		t.Fatal("a pid that leads no group has members")
	}
}
