// Package command is the command gate provider: a program's exit code decides.
package command

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/rollout-dev/rollout/internal/healthgate/measure"
	"github.com/rollout-dev/rollout/internal/proc"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Command runs a program: its exit code decides, its output is kept in the message.
type Command struct {
	Args       []string
	Env        []string // the program's whole environment (nil: none but PATH)
	Dir        string
	ExpectExit int
}

func (c *Command) Measure(ctx context.Context) rings.Measurement {
	m := rings.Measurement{At: time.Now(), Outcome: rings.Failed}
	if len(c.Args) == 0 {
		m.Message = "no command"
		return m
	}
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	// Its own process group, killed whole when the gate is cancelled: sh's children too.
	proc.OwnGroup(cmd)
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		m.Message = fmt.Sprintf("%s: no data: %v", c.Args[0], err)
		return m
	}
	text := measure.Snippet(out.Bytes())
	if code != c.ExpectExit {
		m.Message = fmt.Sprintf("exit %d, want %d: %s", code, c.ExpectExit, text)
		return m
	}
	m.Outcome = rings.OK
	m.Message = fmt.Sprintf("exit %d: %s", code, text)
	return m
}

var (
	_ measure.Provider = (*Command)(nil)
)
