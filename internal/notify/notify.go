// Package notify tells people what a run needs from them and how it ended, through webhooks: a
// generic JSON body, Slack incoming webhooks and Microsoft Teams (an Adaptive Card). Delivery
// never blocks the run: each receiver has its own queue and worker, retries with backoff, and a
// delivery that fails for good is reported (the run journals it). Webhook URLs are secrets: they
// are never printed, and errors carry the receiver's name, not its URL.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/rollout-dev/rollout/internal/resilience"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Kind is what a notification is about.
type Kind string

const (
	Started        Kind = "started"         // a run started
	Approval       Kind = "approval"        // a ring waits for an approval
	Inconclusive   Kind = "inconclusive"    // a ring waits for a person to decide an inconclusive gate
	RolledBack     Kind = "rolled_back"     // a run ended rolled back
	RollbackFailed Kind = "rollback_failed" // a run ended with a rollback that failed: someone must act
	Finished       Kind = "finished"        // a run ended, however
)

// Kinds are every kind, in the order a run can produce them.
var Kinds = []Kind{Started, Approval, Inconclusive, RolledBack, RollbackFailed, Finished}

// Formats are the bodies a receiver can take.
var Formats = []string{"json", "slack", "teams"}

// Receiver is one webhook.
type Receiver struct {
	Name   string
	URL    string // a secret: never printed
	Format string // json (default), slack or teams
	On     []Kind // none: every kind
}

func (r Receiver) wants(k Kind) bool {
	if len(r.On) == 0 {
		return true
	}
	for _, o := range r.On {
		if o == k {
			return true
		}
	}
	return false
}

// Message is one notification.
type Message struct {
	Kind    Kind      `json:"kind"`
	Fleet   string    `json:"fleet"`
	Run     string    `json:"run"`
	Release string    `json:"release,omitempty"`
	Ring    string    `json:"ring,omitempty"`
	Phase   string    `json:"phase,omitempty"`
	Text    string    `json:"text"`
	At      time.Time `json:"at"`
}

// Of is the notifications a journaled event makes (none for most events).
func Of(fleet string, ev rings.Event) []Message {
	m := Message{Fleet: fleet, Run: ev.RunID, Ring: ev.Ring, At: ev.At}
	if ev.Release != nil {
		m.Release = ev.Release.Name
	} else if ev.Plan != nil {
		m.Release = ev.Plan.Release.Name
	}
	with := func(k Kind, text string) Message { c := m; c.Kind, c.Text = k, text; return c }
	switch ev.Type {
	case rings.RunStarted:
		return []Message{with(Started, fmt.Sprintf("run %s started", ev.RunID))}
	case rings.RingApprovalNeeded:
		return []Message{with(Approval, fmt.Sprintf("ring %s of run %s waits for an approval: %s", ev.Ring, ev.RunID, ev.Message))}
	case rings.RingGateInconclusive:
		return []Message{with(Inconclusive, fmt.Sprintf("ring %s of run %s waits: a gate was inconclusive: %s", ev.Ring, ev.RunID, ev.Message))}
	case rings.RunFinished:
		m.Phase = string(ev.Phase)
		done := with(Finished, fmt.Sprintf("run %s finished: %s %s", ev.RunID, ev.Phase, ev.Message))
		switch ev.Phase {
		case rings.PhaseRolledBack:
			return []Message{with(RolledBack, fmt.Sprintf("run %s rolled back: %s", ev.RunID, ev.Message)), done}
		case rings.PhaseRollbackFailed:
			return []Message{with(RollbackFailed, fmt.Sprintf("run %s: ROLLBACK FAILED, someone must act: %s", ev.RunID, ev.Message)), done}
		}
		return []Message{done}
	}
	return nil
}

// Failure is a notification that could not be delivered.
type Failure struct {
	Receiver string
	Message  Message
	Err      error
}

// Options tune delivery; the zero value is what rollout uses.
type Options struct {
	Client *http.Client      // default: 10 s timeout
	Retry  resilience.Policy // default: 8 attempts, 250 ms to 10 s apart, within 2 minutes
	Queue  int               // messages waiting per receiver (default 256); more are failures
	// Failed is told of each message that was not delivered (nil: nobody).
	Failed func(Failure)
}

// Notifier delivers messages to receivers, each on its own worker.
type Notifier struct {
	workers []*worker
	opts    Options
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

type worker struct {
	r     Receiver
	queue chan Message
}

// New starts a worker per receiver.
func New(receivers []Receiver, o Options) *Notifier {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	c := *o.Client
	c.CheckRedirect = sameHost
	o.Client = &c
	if o.Retry.Attempts == 0 {
		o.Retry = resilience.Policy{Attempts: 8, Initial: 250 * time.Millisecond, Max: 10 * time.Second, MaxElapsed: 2 * time.Minute}
	}
	if o.Queue == 0 {
		o.Queue = 256
	}
	n := &Notifier{opts: o}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, r := range receivers {
		w := &worker{r: r, queue: make(chan Message, o.Queue)}
		n.workers = append(n.workers, w)
		n.wg.Add(1)
		go n.run(w)
	}
	return n
}

// Publish queues the notifications of ev for the receivers that want them; it never blocks.
func (n *Notifier) Publish(fleet string, ev rings.Event) {
	if n == nil {
		return
	}
	for _, m := range Of(fleet, ev) {
		for _, w := range n.workers {
			if !w.r.wants(m.Kind) {
				continue
			}
			select {
			case w.queue <- m:
			default:
				n.failed(w.r, m, errors.New("too many notifications waiting: dropped"))
			}
		}
	}
}

// Close delivers what is queued until ctx ends, then gives up on the rest (reported as failed).
func (n *Notifier) Close(ctx context.Context) {
	if n == nil {
		return
	}
	for _, w := range n.workers {
		close(w.queue)
	}
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		n.cancel()
		<-done
	}
	n.cancel()
}

func (n *Notifier) failed(r Receiver, m Message, err error) {
	if n.opts.Failed != nil {
		n.opts.Failed(Failure{Receiver: r.Name, Message: m, Err: err})
	}
}

func (n *Notifier) run(w *worker) {
	defer n.wg.Done()
	for m := range w.queue {
		if n.ctx.Err() != nil {
			n.failed(w.r, m, errors.New("not delivered before rollout exited"))
			continue
		}
		body, err := Body(w.r.Format, m)
		if err == nil {
			_, _, err = resilience.Retry(n.ctx, n.opts.Retry, transient, nil, func() (struct{}, error) {
				return struct{}{}, n.post(w.r, body)
			})
		}
		if err != nil {
			n.failed(w.r, m, err)
		}
	}
}

// statusError is a receiver's answer that is not a success.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.code, e.body) }

// transient: a failed connection, a timeout, 408, 429 and 5xx are tried again; other answers not.
func transient(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.code == http.StatusRequestTimeout || se.code == http.StatusTooManyRequests || se.code >= 500
	}
	return true
}

// sameHost follows a receiver's redirect only within its own host: a redirect to another host is
// not followed (its answer is a failed delivery), so the payload never goes where the receiver's
// answer, not the configuration, sends it.
func sameHost(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 || req.URL.Host != via[0].URL.Host {
		return http.ErrUseLastResponse
	}
	return nil
}

func (n *Notifier) post(r Receiver, body []byte) error {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("receiver %s: invalid URL", r.Name) // the URL is a secret: not echoed
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap() // *url.Error names the URL: keep only its cause
		}
		return fmt.Errorf("receiver %s: %w", r.Name, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver %s: %w", r.Name, &statusError{code: resp.StatusCode, body: string(snippet)})
	}
	return nil
}

// Body is a message as a receiver of format takes it.
func Body(format string, m Message) ([]byte, error) {
	switch format {
	case "", "json":
		return json.Marshal(m)
	case "slack":
		return json.Marshal(map[string]string{"text": fmt.Sprintf("*rollout %s* (%s): %s", m.Fleet, m.Kind, m.Text)})
	case "teams":
		return json.Marshal(teamsCard(m))
	}
	return nil, fmt.Errorf("unknown notification format %q (json, slack, teams)", format)
}

// teamsCard is m as a Microsoft Teams message with an Adaptive Card.
func teamsCard(m Message) map[string]any {
	facts := []map[string]string{{"title": "fleet", "value": m.Fleet}, {"title": "run", "value": m.Run}}
	for _, f := range [][2]string{{"release", m.Release}, {"ring", m.Ring}, {"phase", m.Phase}} {
		if f[1] != "" {
			facts = append(facts, map[string]string{"title": f[0], "value": f[1]})
		}
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
		"body": []any{
			map[string]any{"type": "TextBlock", "text": "rollout: " + string(m.Kind), "weight": "Bolder", "size": "Medium"},
			map[string]any{"type": "TextBlock", "text": m.Text, "wrap": true},
			map[string]any{"type": "FactSet", "facts": facts},
		},
	}
	return map[string]any{"type": "message", "attachments": []any{
		map[string]any{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}}}
}
