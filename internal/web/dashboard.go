package web

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/runs"
)

// Journal is what the dashboard reads of the fleet.
type Journal interface {
	Source
	RunID(ctx context.Context, named, kind string) (string, error)
	Report(ctx context.Context, id string, need runs.ReportNeed) (*runs.Report, []byte, error)
	EventsAfter(ctx context.Context, runID string, seq int64) ([]rings.Event, error)
	History(ctx context.Context) ([]runs.RunLine, error)
	TargetHistory(ctx context.Context, target string) (*runs.TargetHistory, error)
	FleetView(ctx context.Context) ([]runs.FleetTarget, error)
}

//go:embed dashboard.html dashboard.js
var pages embed.FS

// script serves the page's script (no script is inline: the policy allows none).
func script(w http.ResponseWriter, r *http.Request) {
	b, _ := pages.ReadFile("dashboard.js")
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	_, _ = w.Write(b)
}

// streams counts the live event logs served, in all and by client address.
type streams struct {
	mu       sync.Mutex
	total    int
	byClient map[string]int
}

// take counts one more stream for client, unless that is over a cap; release uncounts it.
func (s *streams) take(client string, total, perClient int) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byClient == nil {
		s.byClient = map[string]int{}
	}
	if s.total >= total || s.byClient[client] >= perClient {
		return nil, false
	}
	s.total++
	s.byClient[client]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.total--
		if s.byClient[client]--; s.byClient[client] == 0 {
			delete(s.byClient, client)
		}
	}, true
}

// clientOf is the address a request came from (without its port).
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

var page = template.Must(template.New("dashboard.html").Funcs(template.FuncMap{"short": shortTime}).ParseFS(pages, "dashboard.html"))

// matrix is a run as the dashboard shows it: its rings by boundary.
type matrix struct {
	Report     *runs.Report
	Boundaries []string
	Rows       []row
}

type row struct {
	Ring  runs.RingReport
	Cells []cell // by boundary, in Boundaries' order
}

// cell is a ring's targets in one boundary: every one, or for a large cell its counts by phase
// and the targets that are not verified (at most cellList), which is what a person looks for.
type cell struct {
	Targets []runs.TargetReport
	Counts  []phaseCount // a large cell's targets by phase
	More    int          // targets not listed
}

type phaseCount struct {
	Phase string
	N     int
}

// cellList is how many targets a cell lists at most.
const cellList = 50

func newMatrix(rep *runs.Report) matrix {
	m := matrix{Report: rep}
	seen := map[string]bool{}
	for _, r := range rep.Rings {
		for _, t := range r.Targets {
			if !seen[t.Boundary] {
				seen[t.Boundary] = true
				m.Boundaries = append(m.Boundaries, t.Boundary)
			}
		}
	}
	sort.Strings(m.Boundaries)
	for _, r := range rep.Rings {
		by := make([][]runs.TargetReport, len(m.Boundaries))
		for _, t := range r.Targets {
			i := sort.SearchStrings(m.Boundaries, t.Boundary)
			by[i] = append(by[i], t)
		}
		rw := row{Ring: r}
		for _, ts := range by {
			rw.Cells = append(rw.Cells, newCell(ts))
		}
		m.Rows = append(m.Rows, rw)
	}
	return m
}

func newCell(ts []runs.TargetReport) cell {
	if len(ts) <= cellList {
		return cell{Targets: ts}
	}
	var c cell
	n := map[string]int{}
	for _, t := range ts {
		n[string(t.Phase)]++
		if t.Phase != rings.TVerified {
			if len(c.Targets) < cellList {
				c.Targets = append(c.Targets, t)
			} else {
				c.More++
			}
		}
	}
	for p, k := range n {
		c.Counts = append(c.Counts, phaseCount{p, k})
	}
	sort.Slice(c.Counts, func(i, j int) bool { return c.Counts[i].Phase < c.Counts[j].Phase })
	return c
}

// controls are the run's acts the page offers (to a logged-in person).
type controls struct {
	Pause, Resume, Abort bool
	Rollback, Retry      bool // a finished release run: roll it back, or try its release again
}

func (s *Server) controls(rep *runs.Report) controls {
	if rings.Terminal(rep.Phase) {
		promotes := rings.Promotes(rep.Kind)
		failed := rep.Phase == rings.PhaseRolledBack || rep.Phase == rings.PhaseAborted
		// A retry tries a release through every ring again: offered on its release run, not on a
		// promotion into one ring.
		return controls{Rollback: promotes && (rep.Phase == rings.PhaseSucceeded || len(rep.StillRunning) > 0), Retry: rep.Kind == rings.KindRelease && failed}
	}
	ending := rep.Phase == rings.PhaseRollingBack || rep.Phase == rings.PhaseAborting || rep.Aborted != nil
	return controls{
		Pause:  !ending && rep.Paused == nil,
		Resume: rep.Paused != nil || (s.Drive && rep.Driver == nil),
		Abort:  rep.Aborted == nil,
	}
}

func shortTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format("15:04:05")
}

// dashboard renders the whole page ("/") or the matrix alone ("/matrix") of the newest run.
func (s *Server) dashboard(fragment bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		j := s.Fleet.(Journal)
		id, err := j.RunID(r.Context(), r.URL.Query().Get("run"), "")
		var data struct {
			Fleet    *fleetMatrix // the home page's fleet, across all runs
			FleetErr string
			Matrix   *matrix
			Error    string
			Session  *session // logged in: may act
			Login    bool     // acting needs a login first
			Flash    string   // what the person's last act said
			Controls controls
		}
		data.Session, data.Login = s.session(r), s.authenticated()
		if !fragment {
			data.Flash = s.flash(data.Session)
			if view, err := j.FleetView(r.Context()); err != nil {
				data.FleetErr = err.Error()
			} else {
				m := newFleetMatrix(view)
				data.Fleet = &m
			}
		}
		if err == nil {
			var rep *runs.Report
			if rep, _, err = j.Report(r.Context(), id, runs.NeedAll); err == nil {
				m := newMatrix(rep)
				data.Matrix, data.Controls = &m, s.controls(rep)
			}
		}
		if err != nil {
			data.Error = err.Error()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		name := "page"
		if fragment {
			name = "matrix"
		}
		if err := page.ExecuteTemplate(w, name, data); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}
}

// events streams a run's event log as server-sent events, each a line as `status` tells it,
// from the start of the run (or after Last-Event-ID) and then as it is journaled.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	j := s.Fleet.(Journal)
	id, err := j.RunID(r.Context(), r.URL.Query().Get("run"), "")
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported", http.StatusInternalServerError)
		return
	}
	release, ok := s.streams.take(clientOf(r), cmp.Or(s.MaxStreams, 256), cmp.Or(s.MaxStreamsPerClient, 8))
	if !ok {
		http.Error(w, "too many live event logs are open: close one, or read rollout status", http.StatusTooManyRequests)
		return
	}
	defer release()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	var seq int64
	fmt.Sscan(r.Header.Get("Last-Event-ID"), &seq)
	tick := time.NewTicker(s.poll())
	defer tick.Stop()
	for {
		evs, err := j.EventsAfter(r.Context(), id, seq)
		if err != nil {
			return
		}
		for _, ev := range evs {
			seq = ev.Seq
			// A line for what tells a person something; a bare change (a gate's measurement) for
			// the rest, on which the page only refreshes its matrix.
			if line, _ := runs.Describe(ev); line != "" {
				writeEvent(w, ev.Seq, "journal", ev.At.Format("15:04:05.000")+"  "+line)
			} else {
				writeEvent(w, ev.Seq, "change", string(ev.Type))
			}
		}
		flusher.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// writeEvent writes one server-sent event. Its data comes from the journal (reasons, gate
// output): each of its lines is a data: field of its own, so no text can end the event or start
// another (the client joins them with newlines).
func writeEvent(w io.Writer, id int64, event, data string) {
	fmt.Fprintf(w, "id: %d\nevent: %s\n", id, event)
	for _, line := range sseLines.Split(data, -1) {
		fmt.Fprintf(w, "data: %s\n", line)
	}
	fmt.Fprint(w, "\n")
}

// sseLines splits text at what the event-stream format takes for a line's end.
var sseLines = regexp.MustCompile("\r\n|\r|\n")

func (s *Server) poll() time.Duration {
	if s.Poll > 0 {
		return s.Poll
	}
	return 500 * time.Millisecond
}

// history lists every run (/history), or one target's history across runs (/history?target=T).
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	j := s.Fleet.(Journal)
	var data struct {
		Runs   []runs.RunLine
		Target *runs.TargetHistory
		Error  string
	}
	var err error
	if name := r.URL.Query().Get("target"); name != "" {
		data.Target, err = j.TargetHistory(r.Context(), name)
	} else {
		data.Runs, err = j.History(r.Context())
	}
	if err != nil {
		data.Error = err.Error()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.ExecuteTemplate(w, "history", data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
