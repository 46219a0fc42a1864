package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/rollout-dev/rollout/internal/rings"
)

// eventSink streams every event the run journals, one JSON object per line in the published
// format (docs/schema/event.v1.json: the journal's own records are version 2, see rings.Event.V1),
// as it is journaled; --events FILE appends to FILE, --events - writes to stdout.
type eventSink struct {
	mu    sync.Mutex
	w     *bufio.Writer
	close func() error
}

func openEvents(g globals, out io.Writer) (*eventSink, error) {
	path := g.v.GetString("events")
	switch path {
	case "":
		return nil, nil
	case "-":
		return &eventSink{w: bufio.NewWriter(out), close: func() error { return nil }}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, &ExitErr{Code: ExitError, Err: fmt.Errorf("--events: %w", err)}
	}
	return &eventSink{w: bufio.NewWriter(f), close: f.Close}, nil
}

func (e *eventSink) event(ev rings.Event) {
	if e == nil {
		return
	}
	b, err := json.Marshal(ev.V1())
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.w.Write(b)
	e.w.WriteByte('\n')
	e.w.Flush() // a line at a time: a pipeline tailing the file sees each event as it happens
}

func (e *eventSink) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.w.Flush()
	return e.close()
}
