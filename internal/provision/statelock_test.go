package provision

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/proc"
	"github.com/rollout-dev/rollout/internal/rings"
)

const lockError = `Error: Error acquiring the state lock

Error message: operation error S3: PutObject, https response error StatusCode: 412, PreconditionFailed
Lock Info:
  ID:        5b7c2d1e-0f3a-4e0c-9f1d-2a6b8c4d0e11
  Path:      state-aws/pub-1.tfstate
  Operation: OperationTypeApply
  Who:       deployer@agent-7
  Version:   1.10.10
  Created:   2026-11-30 13:20:11.123456789 +0000 UTC
  Info:

Terraform acquires a state lock to protect the state from being written
by multiple users at the same time.`

func TestParseHeldLockReadsTerraformsLockInfo(t *testing.T) {
	want := heldLock{ID: "5b7c2d1e-0f3a-4e0c-9f1d-2a6b8c4d0e11", Who: "deployer@agent-7", Operation: "OperationTypeApply",
		Created: time.Date(2026, 11, 30, 13, 20, 11, 123456789, time.UTC)}
	folded := "apply target pub-1: Error acquiring the state lock: " + strings.Join(strings.Fields(lockError), " ")
	for name, text := range map[string]string{"as printed": lockError, "folded from a JSON diagnostic": folded} {
		got, ok := parseHeldLock(text)
		if !ok || got.ID != want.ID || got.Who != want.Who || got.Operation != want.Operation || !got.Created.Equal(want.Created) {
			t.Errorf("%s: got %+v, %v; want %+v", name, got, ok, want)
		}
	}
	if _, ok := parseHeldLock("Error: Invalid reference"); ok {
		t.Error("a diagnostic without Lock Info parsed as a held lock")
	}
}

func ptr[T any](v T) *T { return &v }

// deadPID is the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestOnlyADeadHolderOfThisFleetsLockIsReleased: a lock is released only when the journal names
// its holder, the lock was created while that holder's command could take it, and the holder is
// provably dead (gone from this host, fenced by a newer lease, or an ended command of this
// process); every other lock is someone else's.
func TestOnlyADeadHolderOfThisFleetsLockIsReleased(t *testing.T) {
	host, _ := os.Hostname()
	boot := proc.BootID()
	parent, err := proc.Read(os.Getppid())
	if err != nil {
		t.Fatal(err)
	}
	me := (&Terraform{}).lockHolder("apply")
	at := time.Date(2026, 11, 30, 13, 20, 0, 0, time.UTC)
	lock := heldLock{ID: "L1", Who: "deployer@" + host, Operation: "OperationTypeApply", Created: at.Add(3 * time.Second)}
	holder := func(mut func(*rings.StateLock)) rings.StateLock {
		h := rings.StateLock{Who: "deployer@" + host, Host: host, Boot: boot, PID: deadPID(t), Start: 1, Token: 7, Operation: "apply"}
		if mut != nil {
			mut(&h)
		}
		return h
	}
	cases := []struct {
		name    string
		rec     rings.StateLock
		recAt   time.Time
		lock    heldLock
		fence   int64
		endedAt *time.Time // the attempt journaled its end then
		release string     // a word of the evidence; "" when the lock must be left alone
	}{
		{"its process is gone from this host", holder(nil), at, lock, 7, nil, "is gone from"},
		{"its lease was taken over", holder(func(h *rings.StateLock) { h.Host, h.PID = "agent-9", 1 }), at, lock, 8, nil, "taken over"},
		{"the host restarted", holder(func(h *rings.StateLock) { h.Boot = "another-boot" }), at, lock, 7, nil, "restarted"},
		{"an ended command of this process", holder(func(h *rings.StateLock) { h.PID, h.Start = me.PID, me.Start }), at, lock, 7, nil, "earlier command"},
		{"its holder is alive", holder(func(h *rings.StateLock) { h.PID, h.Start = parent.PID, parent.Start }), at, lock, 7, nil, ""},
		{"its holder on this machine is alive, its lease taken over", holder(func(h *rings.StateLock) { h.PID, h.Start = parent.PID, parent.Start }), at, lock, 8, nil, ""},
		{"another host's live holder, same lease", holder(func(h *rings.StateLock) { h.Host = "agent-9" }), at, lock, 7, nil, ""},
		{"someone else's lock (another Who)", holder(nil), at, heldLock{ID: "L1", Who: "alice@laptop", Operation: "OperationTypeApply", Created: lock.Created}, 7, nil, ""},
		{"created long after the journaled command", holder(nil), at, heldLock{ID: "L1", Who: lock.Who, Operation: "OperationTypeApply", Created: at.Add(time.Hour)}, 7, nil, ""},
		// The same user on the same host ran Terraform by hand after the journaled command ended.
		{"created after the journaled attempt ended", holder(nil), at, lock, 7, ptr(at.Add(2 * time.Second)), ""},
		{"no record before the lock was created", holder(nil), at.Add(time.Minute), lock, 7, nil, ""},
		// A person's lock taken just before this process's earlier command, which then waited for it.
		{"journaled just after the lock was taken", holder(func(h *rings.StateLock) { h.PID, h.Start = me.PID, me.Start }), lock.Created.Add(300 * time.Millisecond), lock, 7, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := c.rec
			p := &Terraform{Config: &config.Config{Defaults: config.Defaults{LockTimeout: config.Duration(30 * time.Second)}},
				Fence: func() int64 { return c.fence },
				TargetEvents: func(context.Context, string) ([]rings.Event, error) {
					evs := []rings.Event{{Type: rings.TargetLockHolder, At: c.recAt, Lock: &rec}}
					if c.endedAt != nil {
						evs = append(evs, rings.Event{Type: rings.TargetApplied, At: *c.endedAt})
					}
					return evs, nil
				}}
			evidence, err := p.staleOwnLock(context.Background(), "pub-1", c.lock, at.Add(time.Hour+time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if c.release == "" && evidence != "" {
				t.Fatalf("released a lock that is not proven a dead holder's of this fleet: %s", evidence)
			}
			if c.release != "" && !strings.Contains(evidence, c.release) {
				t.Fatalf("evidence %q, want it to say %q", evidence, c.release)
			}
		})
	}
}
