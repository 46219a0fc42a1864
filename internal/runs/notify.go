package runs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rollout-dev/rollout/internal/notify"
	"github.com/rollout-dev/rollout/internal/rings"
)

// notifyFlush is how long a finishing command waits for its last notifications to go out.
const notifyFlush = 5 * time.Second

// startNotifier starts the fleet's webhooks (notify: in rollout.yaml) for a process that drives
// runs: every event it journals goes to them, without waiting. A webhook whose URL variable is not
// set is an error of the environment. The URLs join the secrets the journal never shows.
func (f *Fleet) startNotifier() error {
	if len(f.cfg.Notify) == 0 {
		return nil
	}
	var rs []notify.Receiver
	for _, n := range f.cfg.Notify {
		u := n.URL
		if n.URLEnv != "" {
			var ok bool
			if u, ok = os.LookupEnv(n.URLEnv); !ok || u == "" {
				return fmt.Errorf("notify %s: urlEnv names %s, which is not set in rollout's environment", n.Name, n.URLEnv)
			}
		}
		f.redact.Add(u)
		on := make([]notify.Kind, 0, len(n.On))
		for _, k := range n.On {
			on = append(on, notify.Kind(k))
		}
		rs = append(rs, notify.Receiver{Name: n.Name, URL: u, Format: n.Format, On: on})
	}
	f.notifier = notify.New(rs, notify.Options{Failed: f.notifyFailed})
	f.observe(func(ev rings.Event) { f.notifier.Publish(filepath.Base(f.cfg.Root), ev) })
	return nil
}

// notifyFailed journals a notification that could not be delivered, in its run.
func (f *Fleet) notifyFailed(fl notify.Failure) {
	ev := rings.Event{Type: rings.NotifyFailed, RunID: fl.Message.Run, At: f.now(),
		Message: fmt.Sprintf("webhook %s was not told %q: %v", fl.Receiver, fl.Message.Kind, fl.Err)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.db.Append(ctx, rings.Event{Type: ev.Type, RunID: ev.RunID, At: ev.At, Message: f.redact.String(ev.Message)}); err != nil {
		f.notef("notify: %s (and it could not be journaled: %v)", ev.Message, err)
	}
}

// stopNotifier sends what is still queued, for at most notifyFlush.
func (f *Fleet) stopNotifier() {
	if f.notifier == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), notifyFlush)
	defer cancel()
	f.notifier.Close(ctx)
}
