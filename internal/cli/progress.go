package cli

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/runs"
)

// style colours words on a terminal, and leaves them plain otherwise.
type style struct{ on bool }

func newStyle(io IO, g globals) style { return style{on: io.ErrTTY && g.color()} }

func (s style) paint(code, text string) string {
	if !s.on {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s style) phase(p string) string { return s.tone(p, runs.ToneOf(p)) }

// tone paints text as the run service says it feels.
func (s style) tone(text string, t runs.Tone) string {
	switch t {
	case runs.Bold:
		return s.paint("1", text)
	case runs.Good:
		return s.paint("32", text)
	case runs.Warn:
		return s.paint("33", text)
	case runs.Bad:
		return s.paint("31", text)
	}
	return text
}

// progress prints one line per event that matters to a person watching the run, on stderr. Not
// on a terminal, the lines are plain and timestamped, for logs. On a terminal (colours unless
// --no-color or NO_COLOR) the lines scroll above a live display drawn by
// github.com/vbauerster/mpb: the run (phase, elapsed time), then one bar per ring (targets done
// of all, what the ring is doing: applying, baking with the time left, awaiting approval, frozen,
// and its targets by phase). The display's state is the events folded through rings.Decide, the
// same pure function the engine runs, on its own copy of the run.
type progress struct {
	mu    sync.Mutex
	io    IO
	st    style
	start time.Time
	live  bool
	state *rings.State

	bars  *mpb.Progress
	head  *mpb.Bar
	rings []*mpb.Bar
	view  atomic.Pointer[runs.LiveView] // what the bars' decorators show: written by event, read by mpb
}

// newProgress starts the display; state is the run as far as its journal tells (its own copy:
// the display is drawn from another goroutine than the executor's).
func newProgress(io IO, g globals, state *rings.State) *progress {
	p := &progress{io: io, st: newStyle(io, g), start: time.Now(), live: io.ErrTTY && os.Getenv("TERM") != "dumb", state: state}
	if p.live {
		width := io.Width
		if width <= 0 {
			width = 80
		}
		p.bars = mpb.New(mpb.WithOutput(io.Err), mpb.WithWidth(width), mpb.WithRefreshRate(200*time.Millisecond), mpb.ForceTTY())
		p.mu.Lock()
		p.refresh()
		p.mu.Unlock()
	}
	return p
}

// close completes the bars, lets mpb draw them one last time, and stops it.
func (p *progress) close() {
	if !p.live {
		return
	}
	p.mu.Lock()
	bars := append([]*mpb.Bar{p.head}, p.rings...)
	p.mu.Unlock()
	for _, b := range bars {
		if b != nil {
			b.SetTotal(-1, true)
		}
	}
	p.bars.Wait()
}

func (p *progress) event(ev rings.Event) {
	text, tone := runs.Describe(ev)
	line := p.st.tone(clean(text), tone)
	p.mu.Lock()
	rings.Decide(p.state, ev)
	if p.live {
		p.refresh()
	}
	p.mu.Unlock()
	if line == "" {
		return
	}
	if !p.live {
		fmt.Fprintf(p.io.Err, "%s  %s\n", ev.At.Local().Format("15:04:05.000"), line)
		return
	}
	stamp := fmt.Sprintf("%6.1fs", ev.At.Sub(p.start).Seconds())
	_, _ = fmt.Fprintf(p.bars, "%s  %s\n", p.st.paint("2", stamp), line) // printed above the bars
}

// refresh rebuilds the view from the state, and adds the bars once the plan is known. p.mu held.
func (p *progress) refresh() {
	v := runs.Live(p.state)
	if v == nil {
		return
	}
	p.view.Store(v)
	if p.head == nil {
		p.head = p.bars.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			v := p.view.Load()
			return p.st.paint("1", fmt.Sprintf("── %s  %s  %s", v.Title, v.Phase, time.Since(v.Since).Round(time.Second)))
		})))
		for i, r := range v.Rings {
			b := p.bars.New(int64(max(r.Total, 1)), mpb.BarStyle().Lbound("[").Rbound("]").Filler("=").Tip(">").Padding(" "),
				mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
					rv := p.view.Load().Rings[i]
					mark := "  "
					if rv.Current {
						mark = "▶ "
					}
					detail := rv.Detail
					if !rv.BakeUntil.IsZero() {
						detail = fmt.Sprintf("baking, %s left", max(time.Until(rv.BakeUntil), 0).Round(time.Second))
					}
					return fmt.Sprintf("%s%-12s %-22s", mark, rv.Name, detail)
				}, decor.WCSyncSpaceR)),
				mpb.AppendDecorators(decor.CountersNoUnit("%d/%d"), decor.Any(func(decor.Statistics) string { return "  " + p.view.Load().Rings[i].Counts })),
				mpb.BarWidth(20))
			p.rings = append(p.rings, b)
		}
	}
	for i, r := range v.Rings {
		if i < len(p.rings) {
			p.rings[i].SetCurrent(int64(r.Done))
		}
	}
}
