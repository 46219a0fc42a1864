package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Promotion is what a release must have passed elsewhere before this fleet starts it: for each
// requirement, signed evidence (rollout evidence) that a ring passed in each of its boundaries,
// signed by a trusted key, and not older than MaxAge.
type Promotion struct {
	Requires []Requirement
	MaxAge   time.Duration // 0: no limit
}

// Requirement is a ring of another fleet that must have passed, in these boundaries.
type Requirement struct {
	Ring       string
	Boundaries []string
	Trust      []string // public key files (PEM), absolute
}

// parsePromotion reads promotion: {requires: [{ring, boundaries, trust}], maxAge: 14d}.
func parsePromotion(w walker, root string, n *yaml.Node) *Promotion {
	if n == nil {
		return nil
	}
	f := w.fields(n, "promotion", "requires", "maxAge")
	p := &Promotion{}
	if m := f["maxAge"]; m != nil {
		d, err := days(m.Value)
		if err != nil || d <= 0 {
			w.fail(m, "promotion.maxAge", "must be a positive duration such as 14d, 36h or 90m, got %q", m.Value)
		}
		p.MaxAge = d
	}
	req := f["requires"]
	if req == nil || req.Kind != yaml.SequenceNode || len(req.Content) == 0 {
		w.fail(n, "promotion.requires", "must list the rings a release must have passed: [{ring, boundaries, trust}]")
		return p
	}
	for i, c := range req.Content {
		path := fmt.Sprintf("promotion.requires[%d]", i)
		rf := w.fields(c, path, "ring", "boundaries", "trust")
		r := Requirement{Ring: w.str(rf["ring"], path+".ring"), Boundaries: w.strings(rf["boundaries"], path+".boundaries")}
		for _, t := range w.strings(rf["trust"], path+".trust") {
			if !filepath.IsAbs(t) {
				t = filepath.Join(root, t)
			}
			r.Trust = append(r.Trust, t)
		}
		switch {
		case r.Ring == "":
			w.fail(c, path+".ring", "is required: the ring of the other fleet that must have passed")
		case len(r.Boundaries) == 0:
			w.fail(c, path+".boundaries", "is required: the boundaries in which the ring must have passed")
		case len(r.Trust) == 0:
			w.fail(c, path+".trust", "is required: the public keys whose signatures are trusted")
		}
		p.Requires = append(p.Requires, r)
	}
	return p
}

// days is a Go duration, or a whole number of days ("14d").
func days(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		return time.Duration(d) * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}
