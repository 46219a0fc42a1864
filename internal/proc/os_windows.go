//go:build windows

package proc

import (
	"os"
	"os/exec"
	"syscall"
)

// exists: the process can be opened.
func exists(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}

// Interrupt: Windows has no SIGINT to send to another process; it is ended.
func Interrupt(pid int) error { return Kill(pid) }

// Kill ends a process at once.
func Kill(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// OwnGroup runs cmd in a process group of its own; it is killed when cmd's context ends.
func OwnGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// Detach runs cmd in a process group of its own, outliving this process.
func Detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// Umask: Windows has none (files' access is by their ACLs).
func Umask(int) {}

// OpenRegular opens path for reading.
func OpenRegular(path string) (*os.File, error) { return os.Open(path) }
