package rings

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Freeze is a ring's calendar: the deny windows in which it may not start, and the allow
// windows outside which it may not start (none: always allowed). It lives in the run's plan, so
// replaying a run decides the same way whatever the configuration says today.
type Freeze struct {
	Deny []Window `json:"deny,omitempty"`
	// Allow: calendars (global, a boundary's, the ring's) that each allow some windows only; the
	// ring may start inside a window of every one of them.
	Allow [][]Window `json:"allow,omitempty"`
	// Wait: a ring that may not start waits for the window to open; otherwise the run stops,
	// blocked (exit 4), until it is started again.
	Wait bool `json:"wait,omitempty"`
}

// Window is either dated ([From, To)) or weekly (Days, from Start to End in the calendar's zone;
// an End not after Start ends on the next day).
type Window struct {
	Name  string    `json:"name,omitempty"`
	Zone  string    `json:"zone,omitempty"` // IANA time zone of a weekly window; default UTC
	From  time.Time `json:"from,omitzero"`
	To    time.Time `json:"to,omitzero"`
	Days  []string  `json:"days,omitempty"`  // mon tue wed thu fri sat sun
	Start string    `json:"start,omitempty"` // HH:MM
	End   string    `json:"end,omitempty"`   // HH:MM, 24:00 for the end of the day
}

// Weekdays by their three-letter names, as windows spell them.
var Weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// ClockMinutes parses HH:MM (00:00 to 24:00) into minutes after midnight.
func ClockMinutes(s string) (int, error) {
	var h, m int
	if n, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || n != 2 || len(s) != 5 || h < 0 || m < 0 || m > 59 || h*60+m > 24*60 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM (00:00 to 24:00)", s)
	}
	return h*60 + m, nil
}

func (w Window) describe() string {
	name := w.Name
	if name != "" {
		name += " "
	}
	if len(w.Days) > 0 {
		return fmt.Sprintf("%s(%s %s-%s)", name, strings.Join(w.Days, ","), w.Start, w.End)
	}
	return fmt.Sprintf("%s(%s to %s)", name, w.From.Format(time.RFC3339), w.To.Format(time.RFC3339))
}

// occurrences returns the window's spans that could contain t or begin within the next week.
func (w Window) occurrences(t time.Time) [][2]time.Time {
	if len(w.Days) == 0 {
		return [][2]time.Time{{w.From, w.To}}
	}
	start, err1 := ClockMinutes(w.Start)
	end, err2 := ClockMinutes(w.End)
	if err1 != nil || err2 != nil {
		return nil // refused when the configuration was loaded
	}
	loc := time.UTC
	if w.Zone != "" {
		var err error
		if loc, err = time.LoadLocation(w.Zone); err != nil {
			return nil // refused when the configuration was loaded
		}
	}
	lt := t.In(loc)
	var out [][2]time.Time
	for d := -1; d <= 7; d++ {
		day := time.Date(lt.Year(), lt.Month(), lt.Day()+d, 0, 0, 0, 0, loc)
		if !slices.ContainsFunc(w.Days, func(s string) bool { return Weekdays[s] == day.Weekday() }) {
			continue
		}
		s := time.Date(day.Year(), day.Month(), day.Day(), 0, start, 0, 0, loc)
		e := time.Date(day.Year(), day.Month(), day.Day(), 0, end, 0, 0, loc)
		if end <= start {
			e = time.Date(day.Year(), day.Month(), day.Day()+1, 0, end, 0, 0, loc)
		}
		out = append(out, [2]time.Time{s, e})
	}
	return out
}

// Blocked says whether a ring may not start at t: why (empty: it may), and the earliest time
// after t it may (zero: none is known within a week of windows).
func (f *Freeze) Blocked(t time.Time) (string, time.Time) {
	if f == nil {
		return "", time.Time{}
	}
	why := ""
	at := t
	for range 64 { // each step moves at to a window's edge; windows are few
		moved := false
		for _, w := range f.Deny {
			for _, o := range w.occurrences(at) {
				if !at.Before(o[0]) && at.Before(o[1]) {
					if why == "" {
						why = fmt.Sprintf("inside deny window %s", w.describe())
					}
					at, moved = o[1], true
				}
			}
		}
		for _, allow := range f.Allow {
			inside := false
			var next time.Time
			for _, w := range allow {
				for _, o := range w.occurrences(at) {
					if !at.Before(o[0]) && at.Before(o[1]) {
						inside = true
					}
					if o[0].After(at) && (next.IsZero() || o[0].Before(next)) {
						next = o[0]
					}
				}
			}
			if !inside {
				if why == "" {
					why = "outside the allow windows " + describeAll(allow)
				}
				if next.IsZero() {
					return why, time.Time{}
				}
				at, moved = next, true
			}
		}
		if !moved {
			break
		}
	}
	if why == "" {
		return "", time.Time{}
	}
	return why, at
}

func describeAll(ws []Window) string {
	var out []string
	for _, w := range ws {
		out = append(out, w.describe())
	}
	return strings.Join(out, ", ")
}
