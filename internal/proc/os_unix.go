//go:build unix

package proc

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// exists: kill(pid, 0) finds the process (one of another user's counts).
func exists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Interrupt asks a process to stop as Ctrl-C would (SIGINT).
func Interrupt(pid int) error { return syscall.Kill(pid, syscall.SIGINT) }

// Kill ends a process at once (SIGKILL).
func Kill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// OwnGroup runs cmd in a process group of its own, killed whole when cmd's context ends: a
// shell's children too.
func OwnGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// Detach runs cmd in a session of its own: it outlives this process and its terminal.
func Detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }

// Umask sets this process's file mode creation mask.
func Umask(mask int) { syscall.Umask(mask) }

// OpenRegular opens path for reading without waiting on a FIFO in its place (O_NONBLOCK): the
// caller checks that it is a regular file.
func OpenRegular(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
