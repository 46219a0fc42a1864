package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"regexp"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/internal/proc"
	"github.com/rollout-dev/rollout/internal/rings"
)

// A remote backend's state lock (an object in a bucket) outlives a Terraform process that dies
// holding it: a SIGKILLed rollout, or its Terraform child killed when the next process reaps it.
// Nobody releases such a lock, and every later command on that state fails on it. So, before each
// Terraform command that takes a target's lock in a remote backend, rollout journals who is about
// to hold it (target.lock_holder: host, boot, process and its start, the fleet lease's fencing
// token, the operation, and the lock's Who as Terraform will write it). When an operation then
// fails on a held lock, the lock is released (`force-unlock`) only when the journal proves it is
// this fleet's own and its holder is dead:
//
//   - a target.lock_holder record has the lock's Who, and the lock was created while that
//     record's command could take it (from the record to the lock timeout and a margin after);
//   - that record's process cannot hold anything now: on this machine, it is gone (its PID is dead
//     or names another process, or the machine restarted) or it is this process's own earlier
//     command, which has ended (a target's commands run one at a time); on another machine, its
//     fleet lease was taken over by this process (its fencing token is older).
//
// The release is journaled (target.lock_released, with the evidence) and the operation runs once
// more. Any other lock (a person's `tofu apply`, another tool, a live holder) is left alone: the
// operation fails with a message that names the holder and the command a person would run.

// lockMargin is how long after its lock timeout a command may still take its lock: reading the
// backend's configuration and state before the lock is tried.
const lockMargin = 2 * time.Minute

// heldLock is a state lock as Terraform reports it when it cannot take it.
type heldLock struct {
	ID, Who, Operation string
	Created            time.Time
}

var (
	lockIDRE      = regexp.MustCompile(`Lock Info:\s+ID:\s*(\S+)`)
	lockWhoRE     = regexp.MustCompile(`\bWho:\s*(\S+)`)
	lockOpRE      = regexp.MustCompile(`\bOperation:\s*(\S+)`)
	lockCreatedRE = regexp.MustCompile(`\bCreated:\s*(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? [+-]\d{4} [A-Z]+)`)
)

// parseHeldLock reads the "Lock Info" of Terraform's "Error acquiring the state lock", as it
// prints it or as a JSON diagnostic whose whitespace was folded.
func parseHeldLock(text string) (heldLock, bool) {
	m := lockIDRE.FindStringSubmatch(text)
	if m == nil {
		return heldLock{}, false
	}
	info := text[strings.Index(text, "Lock Info:"):]
	l := heldLock{ID: m[1]}
	if w := lockWhoRE.FindStringSubmatch(info); w != nil {
		l.Who = w[1]
	}
	if o := lockOpRE.FindStringSubmatch(info); o != nil {
		l.Operation = o[1]
	}
	if c := lockCreatedRE.FindStringSubmatch(info); c != nil {
		l.Created, _ = time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", c[1])
	}
	return l, true
}

// remoteLock says whether target's state lives in a backend whose lock outlives its holder (all
// but local state, whose lock is a file lock that dies with the process).
func (p *Terraform) remoteLock(target string) bool {
	t := p.Config.Target(baseTarget(target))
	return t != nil && t.Backend != nil && t.Backend.Type != "local"
}

// lockHolder is this process as the holder of a state lock for op.
func (p *Terraform) lockHolder(op string) rings.StateLock {
	host, _ := os.Hostname()
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	h := rings.StateLock{Who: name + "@" + host, Host: host, Boot: proc.BootID(), PID: os.Getpid(), Operation: op}
	if st, err := proc.Read(h.PID); err == nil {
		h.Start = st.Start
	}
	if p.Fence != nil {
		h.Token = p.Fence()
	}
	return h
}

// noteLockHolder journals, before a Terraform command that takes target's state lock, that this
// process is about to hold it.
func (p *Terraform) noteLockHolder(ctx context.Context, target, op string) {
	if !p.remoteLock(target) {
		return
	}
	h := p.lockHolder(op)
	rings.Note(ctx, rings.Event{Type: rings.TargetLockHolder, Target: target, Lock: &h,
		Message: fmt.Sprintf("%s (pid %d, lease token %d) takes the state lock to %s", h.Who, h.PID, h.Token, op)})
}

// unlocking runs op (an operation of Terraform commands on target) and, when it fails on a state
// lock that a dead holder of this fleet left behind, releases that lock and runs op once more.
// A lock of anyone else fails op with a message that names its holder.
func unlocking[T any](ctx context.Context, p *Terraform, target, what string, op func() (T, error)) (T, error) {
	started := time.Now()
	res, err := op()
	if err == nil || ctx.Err() != nil || !p.remoteLock(target) {
		return res, err
	}
	lock, ok := parseHeldLock(err.Error())
	if !ok {
		return res, err
	}
	evidence, ferr := p.staleOwnLock(ctx, target, lock, started)
	if ferr != nil {
		return res, errors.Join(err, ferr)
	}
	if evidence == "" {
		return res, &Failure{Class: Transient, Reason: "state lock held", Err: fmt.Errorf("%w\n%s", err, foreignLock(lock, p.WorkDir(target)))}
	}
	if uerr := p.forceUnlock(ctx, target, lock.ID); uerr != nil {
		return res, fmt.Errorf("%s target %s: release the stale state lock %s: %w", what, target, lock.ID, uerr)
	}
	released := p.lockHolder(what)
	released.ID, released.Created, released.Who = lock.ID, lock.Created, lock.Who
	rings.Note(ctx, rings.Event{Type: rings.TargetLockReleased, Target: target, Lock: &released,
		Message: fmt.Sprintf("released state lock %s (%s, %s since %s): %s", lock.ID, lock.Who, lock.Operation, lock.Created.Format(time.RFC3339), evidence)})
	return op()
}

// foreignLock says whose lock it is and what a person may do about it.
func foreignLock(l heldLock, dir string) string {
	return fmt.Sprintf("the state lock is held by %s (%s since %s, lock ID %s), not by a dead process of this fleet: rollout leaves it alone. "+
		"If nobody is running Terraform on this state, release it by hand: cd %s && tofu force-unlock %s",
		l.Who, l.Operation, l.Created.Format(time.RFC3339), l.ID, dir, l.ID)
}

// staleOwnLock returns the evidence that lock was left by a dead holder of this fleet, or "" when
// that is not proven. started is when the failed operation began: records from then on are its own.
func (p *Terraform) staleOwnLock(ctx context.Context, target string, lock heldLock, started time.Time) (string, error) {
	if p.TargetEvents == nil || lock.Who == "" || lock.Created.IsZero() {
		return "", nil
	}
	evs, err := p.TargetEvents(ctx, baseTarget(target)) // a stack component's commands are journaled under its target
	if err != nil {
		return "", fmt.Errorf("read the journal's state lock holders of %s: %w", target, err)
	}
	rec, until := lockAttempt(evs, lock.Created, started)
	if rec == nil || rec.Lock.Who != lock.Who {
		return "", nil
	}
	if latest := rec.At.Add(p.lockWait() + lockMargin); latest.Before(until) {
		until = latest // a command takes its lock when it starts, or within its lock timeout
	}
	if lock.Created.After(until) {
		return "", nil // created after that command could have taken it: someone else's
	}
	gone := p.holderGone(*rec.Lock, p.lockHolder(""))
	if gone == "" {
		return "", nil
	}
	return fmt.Sprintf("the journal names its holder: %s, pid %d on %s, lease token %d, %s at %s; %s",
		rec.Lock.Who, rec.Lock.PID, rec.Lock.Host, rec.Lock.Token, rec.Lock.Operation, rec.At.Format(time.RFC3339), gone), nil
}

// lockAttempt finds, among a target's events (oldest first), the journaled command that may have
// created a lock at created: the newest target.lock_holder record before it and before started
// (no grace: the record's time and the lock's come from the same machine's clock, the holder's,
// and a record journaled just after a lock was taken is of a command that waited for that lock),
// and the time its attempt ended (the target's next event: a command that went on to journal
// anything had taken its lock by then), or started.
func lockAttempt(evs []rings.Event, created, started time.Time) (*rings.Event, time.Time) {
	var rec *rings.Event
	until := started
	for i := range evs {
		e := &evs[i]
		if !e.At.Before(started) {
			break
		}
		if e.Type == rings.TargetLockHolder && e.Lock != nil && !e.At.After(created) {
			rec, until = e, started
			continue
		}
		if rec != nil && until.Equal(started) {
			until = e.At
		}
	}
	return rec, until
}

// holderGone says why the journaled holder h can hold nothing any more, seen from this process me
// ("" when it may still be alive). On this machine only the process itself tells: a live holder
// whose lease was taken over is stopping its Terraform, which releases the lock itself. Of
// another machine, its lease taken over by this process says it.
func (p *Terraform) holderGone(h, me rings.StateLock) string {
	switch {
	case h.Host == me.Host && h.Boot != "" && me.Boot != "" && h.Boot != me.Boot:
		return fmt.Sprintf("host %s has restarted since", h.Host)
	case h.Host == me.Host && h.PID == me.PID && h.Start == me.Start:
		return "it was an earlier command of this process, which has ended"
	case h.Host == me.Host:
		st, err := proc.Read(h.PID)
		if err != nil || st.State == 'Z' || st.State == 'X' || st.Start != h.Start {
			return fmt.Sprintf("its process %d is gone from %s", h.PID, h.Host)
		}
		return ""
	case h.Token > 0 && me.Token > h.Token:
		return fmt.Sprintf("its fleet lease was taken over by this process on %s (its fencing token %d, this process holds %d)", me.Host, h.Token, me.Token)
	}
	return ""
}

// forceUnlock releases target's state lock id with `force-unlock`, in the target's working
// directory and with its boundary's environment.
func (p *Terraform) forceUnlock(ctx context.Context, target, id string) error {
	env, secrets, err := p.targetEnv(ctx, target)
	if err != nil {
		return err
	}
	rc, err := p.targetCLIConfig()
	if err != nil {
		return err
	}
	dir := p.WorkDir(target)
	tf, err := p.newTF(ctx, dir, nil, env, p.targetExtraEnv(dir, rc))
	if err != nil {
		return err
	}
	uctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return redactErr(p.command(target, "force-unlock", func() error { return tf.ForceUnlock(uctx, id) }), secrets)
}
