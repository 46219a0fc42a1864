package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rollout-dev/rollout/internal/rings"
)

// Freeze is one level's freeze calendar (global, a boundary's or a ring's): windows when a ring
// may not start, windows outside which it may not, and what a run does when it meets one.
type Freeze struct {
	WhenFrozen string // wait | stop (exit 4); "" : as the level above says (default stop)
	Deny       []rings.Window
	Allow      []rings.Window
}

// parseFreeze reads a freeze: mapping.
//
//	freeze:
//	  timezone: Europe/Berlin        # of the weekly windows and of bare dates; default UTC
//	  whenFrozen: stop               # or wait
//	  deny:
//	    - {name: year-end, from: 2026-12-20, to: 2027-01-04}
//	    - {name: weekend, days: [sat, sun], start: "00:00", end: "24:00"}
//	  allow:
//	    - {days: [mon, tue, wed, thu], start: "09:00", end: "16:00"}
func parseFreeze(w walker, path string, n *yaml.Node) *Freeze {
	if n == nil {
		return nil
	}
	f := w.fields(n, path, "timezone", "whenFrozen", "deny", "allow")
	fz := &Freeze{WhenFrozen: w.str(f["whenFrozen"], path+".whenFrozen")}
	switch fz.WhenFrozen {
	case "", "wait", "stop":
	default:
		w.fail(f["whenFrozen"], path+".whenFrozen", "must be wait or stop, got %q", fz.WhenFrozen)
	}
	zone := w.str(f["timezone"], path+".timezone")
	loc := time.UTC
	if zone != "" {
		var err error
		if loc, err = time.LoadLocation(zone); err != nil {
			w.fail(f["timezone"], path+".timezone", "unknown time zone %q (an IANA name such as Europe/Berlin or America/New_York)", zone)
			loc = time.UTC
		}
	}
	for _, kind := range []string{"deny", "allow"} {
		list := f[kind]
		if list == nil {
			continue
		}
		if list.Kind != yaml.SequenceNode {
			w.fail(list, path+"."+kind, "must be a list of windows")
			continue
		}
		for i, wn := range list.Content {
			win := parseWindow(w, fmt.Sprintf("%s.%s[%d]", path, kind, i), wn, zone, loc)
			if kind == "deny" {
				fz.Deny = append(fz.Deny, win)
			} else {
				fz.Allow = append(fz.Allow, win)
			}
		}
	}
	return fz
}

func parseWindow(w walker, path string, n *yaml.Node, zone string, loc *time.Location) rings.Window {
	f := w.fields(n, path, "name", "from", "to", "days", "start", "end")
	win := rings.Window{Name: w.str(f["name"], path+".name"), Days: w.strings(f["days"], path+".days"),
		Start: w.str(f["start"], path+".start"), End: w.str(f["end"], path+".end")}
	dated := f["from"] != nil || f["to"] != nil
	weekly := f["days"] != nil || f["start"] != nil || f["end"] != nil
	switch {
	case dated && weekly:
		w.fail(n, path, "is either dated (from, to) or weekly (days, start, end), not both")
	case dated:
		win.From = windowTime(w, path+".from", f["from"], loc)
		win.To = windowTime(w, path+".to", f["to"], loc)
		if !win.From.IsZero() && !win.To.IsZero() && !win.To.After(win.From) {
			w.fail(f["to"], path+".to", "must be after from")
		}
	case weekly:
		win.Zone = zone
		if len(win.Days) == 0 {
			w.fail(n, path+".days", "is required: e.g. [sat, sun]")
		}
		for i, d := range win.Days {
			win.Days[i] = strings.ToLower(d)
			if _, ok := rings.Weekdays[win.Days[i]]; !ok {
				w.fail(f["days"], path+".days", "unknown day %q: mon, tue, wed, thu, fri, sat or sun", d)
			}
		}
		for _, k := range []string{"start", "end"} {
			v := win.Start
			if k == "end" {
				v = win.End
			}
			if f[k] == nil {
				w.fail(n, path+"."+k, "is required (HH:MM)")
			} else if _, err := rings.ClockMinutes(v); err != nil {
				w.fail(f[k], path+"."+k, "%v", err)
			}
		}
	default:
		w.fail(n, path, "give from and to (dated), or days, start and end (weekly)")
	}
	return win
}

// windowTime reads a date (midnight in loc) or an RFC 3339 time.
func windowTime(w walker, path string, n *yaml.Node, loc *time.Location) time.Time {
	s := w.str(n, path)
	if n == nil {
		w.fail(nil, path, "is required")
		return time.Time{}
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		return t
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t
	}
	w.fail(n, path, "want a date (2026-12-20) or an RFC 3339 time (2026-12-20T18:00:00+01:00), got %q", s)
	return time.Time{}
}

// RingFreeze combines the calendars a ring is under: the global one, those of the boundaries
// its targets are in, and its own. Deny windows add up; each level's allow windows must all
// allow. whenFrozen: the ring's, else a boundary's (wait only if every boundary says wait), else
// the global one's. Nil when no calendar applies.
func (c *Config) RingFreeze(r *Ring) *rings.Freeze {
	levels := []*Freeze{c.Freeze}
	var bounds []string
	for _, name := range r.Targets {
		if t := c.Target(name); t != nil && !slices.Contains(bounds, t.Boundary) {
			bounds = append(bounds, t.Boundary)
		}
	}
	slices.Sort(bounds)
	for _, b := range bounds {
		if bd := c.Boundaries[b]; bd != nil {
			levels = append(levels, bd.Freeze)
		}
	}
	levels = append(levels, r.Freeze)
	out := &rings.Freeze{}
	found := false
	for _, l := range levels {
		if l == nil {
			continue
		}
		found = true
		out.Deny = append(out.Deny, l.Deny...)
		if len(l.Allow) > 0 {
			out.Allow = append(out.Allow, l.Allow)
		}
	}
	if !found {
		return nil
	}
	when := ""
	if c.Freeze != nil {
		when = c.Freeze.WhenFrozen
	}
	var bw []string
	for _, l := range levels[1 : len(levels)-1] {
		if l != nil && l.WhenFrozen != "" {
			bw = append(bw, l.WhenFrozen)
		}
	}
	if len(bw) > 0 {
		when = "wait"
		if slices.Contains(bw, "stop") {
			when = "stop"
		}
	}
	if r.Freeze != nil && r.Freeze.WhenFrozen != "" {
		when = r.Freeze.WhenFrozen
	}
	out.Wait = when == "wait"
	return out
}
