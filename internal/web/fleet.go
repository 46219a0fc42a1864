package web

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/rollout-dev/rollout/internal/runs"
)

// fleetMatrix is the home page's fleet: every declared target as the journal tells it across
// all runs, rings as rows, targets as cells, the release each runs in that release's colour, and
// failed, rolled-back, in-flight and never-deployed targets marked apart.
type fleetMatrix struct {
	Rings    []fleetRing
	Releases []releaseKey // the legend: every release some target runs, newest first
}

type fleetRing struct {
	Name    string
	Cells   []fleetCell
	Summary []fleetCount // a large ring: its targets counted by release and state
	More    int          // a large ring's targets not listed (those that need nobody's eye)
}

type fleetCell struct {
	runs.FleetTarget
	Colour string
	Mark   string // failed, failedElsewhere, rolled_back, queued, busy, never: what sets it apart
}

type fleetCount struct {
	Release, State, Colour string
	N                      int
}

type releaseKey struct{ Name, Colour string }

// fleetRingList is how many targets a ring's row lists at most; a larger ring is summed up, and
// lists the targets that are marked.
const fleetRingList = 200

func newFleetMatrix(view []runs.FleetTarget) fleetMatrix {
	var m fleetMatrix
	seen := map[string]bool{}
	byRing := map[string][]fleetCell{}
	var order []string
	for _, t := range view {
		c := fleetCell{FleetTarget: t, Mark: mark(t)}
		if t.Release != nil {
			c.Colour = releaseColour(t.Release.Name)
			if !seen[t.Release.Name] {
				seen[t.Release.Name] = true
				m.Releases = append(m.Releases, releaseKey{t.Release.Name, c.Colour})
			}
		}
		if _, ok := byRing[t.Ring]; !ok {
			order = append(order, t.Ring)
		}
		byRing[t.Ring] = append(byRing[t.Ring], c)
	}
	for _, name := range order {
		m.Rings = append(m.Rings, newFleetRing(name, byRing[name]))
	}
	return m
}

func newFleetRing(name string, cells []fleetCell) fleetRing {
	r := fleetRing{Name: name}
	if len(cells) <= fleetRingList {
		r.Cells = cells
		return r
	}
	n := map[[2]string]int{}
	for _, c := range cells {
		rel := "-"
		if c.Release != nil {
			rel = c.Release.Name
		}
		n[[2]string{rel, c.State}]++
		if c.Mark != "" && len(r.Cells) < cellList {
			r.Cells = append(r.Cells, c)
		} else {
			r.More++
		}
	}
	for k, v := range n {
		colour := ""
		if k[0] != "-" {
			colour = releaseColour(k[0])
		}
		r.Summary = append(r.Summary, fleetCount{k[0], k[1], colour, v})
	}
	slices.SortFunc(r.Summary, func(a, b fleetCount) int { // the same order at every refresh
		return cmp.Or(b.N-a.N, strings.Compare(a.Release, b.Release), strings.Compare(a.State, b.State))
	})
	return r
}

// mark is what sets a target apart from its ring's healthy ones.
func mark(t runs.FleetTarget) string {
	switch {
	case t.State == "failed":
		return "failed"
	case slices.Contains(t.Flags, "failedElsewhere"):
		return "failedElsewhere"
	case t.State == "rolled_back" || t.State == "rolling_back":
		return "rolled_back"
	case t.State == "queued":
		return "queued"
	case t.State == "applying" || t.State == "applied":
		return "busy"
	case t.Release == nil:
		return "never"
	}
	return ""
}

// releaseColour is a release's colour: the same on every page and every load, a light hue from
// its name (hex: what a style attribute's escaper lets through as it is).
func releaseColour(name string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	hue := float64(h.Sum32()%360) / 60
	const light, chroma = 0.82, 0.3 // HSL lightness 82 %, saturation ~ 85 %
	x := chroma * (1 - math.Abs(math.Mod(hue, 2)-1))
	rgb := [6][3]float64{{chroma, x, 0}, {x, chroma, 0}, {0, chroma, x}, {0, x, chroma}, {x, 0, chroma}, {chroma, 0, x}}[int(hue)%6]
	m := light - chroma/2
	return fmt.Sprintf("#%02x%02x%02x", int((rgb[0]+m)*255), int((rgb[1]+m)*255), int((rgb[2]+m)*255))
}

// fleet renders the fleet matrix alone (/fleet), for the home page to refresh.
func (s *Server) fleet(w http.ResponseWriter, r *http.Request) {
	var data struct {
		Fleet *fleetMatrix
		Error string
	}
	if view, err := s.Fleet.(Journal).FleetView(r.Context()); err != nil {
		data.Error = err.Error()
	} else {
		m := newFleetMatrix(view)
		data.Fleet = &m
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.ExecuteTemplate(w, "fleet", data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
