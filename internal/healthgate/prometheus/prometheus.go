// Package prometheus is the prometheus gate provider (a PromQL query, instant or over a range)
// and the compare provider (a canary against its baseline).
package prometheus

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	pconfig "github.com/prometheus/common/config"

	"github.com/prometheus/client_golang/api"
	"github.com/prometheus/common/model"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/healthgate/measure"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Prometheus measures with a PromQL query: instant, or over the last Range.
type Prometheus struct {
	API   promv1.API
	Query string
	Range time.Duration
	Step  time.Duration
	Judge measure.Conditions
	Now   func() time.Time // nil: time.Now
}

// NewAPI is a client of the server at address, authenticated with the bearer token or
// user name and password held in the named variables of rollout's environment.
func NewAPI(c *config.PrometheusCheck, address string, base http.RoundTripper) (promv1.API, error) {
	if base == nil {
		base = api.DefaultRoundTripper
	}
	rt := base
	env := func(name string) (string, error) {
		v := os.Getenv(name)
		if v == "" {
			return "", fmt.Errorf("%s is not set in rollout's environment", name)
		}
		return v, nil
	}
	switch {
	case c.BearerTokenEnv != "":
		tok, err := env(c.BearerTokenEnv)
		if err != nil {
			return nil, err
		}
		rt = pconfig.NewAuthorizationCredentialsRoundTripper("Bearer", pconfig.NewInlineSecret(tok), base)
	case c.UsernameEnv != "":
		user, err := env(c.UsernameEnv)
		if err != nil {
			return nil, err
		}
		pass, err := env(c.PasswordEnv)
		if err != nil {
			return nil, err
		}
		rt = pconfig.NewBasicAuthRoundTripper(pconfig.NewInlineSecret(user), pconfig.NewInlineSecret(pass), base)
	}
	client, err := api.NewClient(api.Config{Address: address, RoundTripper: rt})
	if err != nil {
		return nil, err
	}
	return promv1.NewAPI(client), nil
}

func (p *Prometheus) Measure(ctx context.Context) rings.Measurement {
	m := rings.Measurement{At: p.now(), Outcome: rings.Error}
	vals, shown, warnings, err := p.values(ctx, p.Query, m.At)
	if err != nil {
		m.Message = fmt.Sprintf("query %s: %s", p.Query, measure.OneLine(err))
		return m
	}
	if len(vals) == 0 {
		m.Outcome, m.Message = rings.NoData, fmt.Sprintf("query %s: no data", p.Query)
		return m
	}
	o, why := p.Judge.Numbers(vals)
	m.Outcome, m.Message = o, fmt.Sprintf("query %s = %s: %s", p.Query, shown, why)
	if len(warnings) > 0 {
		m.Message += " (warnings: " + strings.Join(warnings, "; ") + ")"
	}
	return m
}

func (p *Prometheus) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// values runs one query (instant, or over the last Range) and flattens its result.
func (p *Prometheus) values(ctx context.Context, query string, t time.Time) ([]float64, string, promv1.Warnings, error) {
	var (
		v        model.Value
		warnings promv1.Warnings
		err      error
	)
	if p.Range > 0 {
		step := p.Step
		if step <= 0 {
			step = max(p.Range/10, time.Second)
		}
		v, warnings, _, err = p.API.QueryRange(ctx, query, promv1.Range{Start: t.Add(-p.Range), End: t, Step: step})
	} else {
		v, warnings, _, err = p.API.Query(ctx, query, t)
	}
	if err != nil {
		return nil, "", nil, err
	}
	vals, shown := values(v)
	return vals, shown, warnings, nil
}

// Compare judges a canary against its baseline with one query each (the baseline's values
// pooled): the canary's mean may be at most the baseline's mean × MaxRatio, or at most Floor.
// Fewer than MinSamples values on either side is no data: never a pass by default.
type Compare struct {
	Source     *Prometheus
	Canary     string   // the query for the canary
	Baseline   []string // one query per baseline target
	MaxRatio   float64
	Floor      float64
	MinSamples int
}

func (c *Compare) Measure(ctx context.Context) rings.Measurement {
	m := rings.Measurement{At: c.Source.now(), Outcome: rings.Error}
	canary, _, _, err := c.Source.values(ctx, c.Canary, m.At)
	if err != nil {
		m.Message = fmt.Sprintf("canary query %s: %s", c.Canary, measure.OneLine(err))
		return m
	}
	var base []float64
	for _, q := range c.Baseline {
		vals, _, _, err := c.Source.values(ctx, q, m.At)
		if err != nil {
			m.Message = fmt.Sprintf("baseline query %s: %s", q, measure.OneLine(err))
			return m
		}
		base = append(base, vals...)
	}
	if len(canary) < c.MinSamples || len(base) < c.MinSamples {
		m.Outcome = rings.NoData
		m.Message = fmt.Sprintf("too few samples to compare: canary %d, baseline %d (from %d target(s) still on last known good), minSamples %d",
			len(canary), len(base), len(c.Baseline), c.MinSamples)
		return m
	}
	cm, bm := mean(canary), mean(base)
	limit := max(bm*c.MaxRatio, c.Floor)
	m.Message = fmt.Sprintf("canary %.4g vs baseline %.4g (%d target(s)): limit max(%.4g × %g, floor %g) = %.4g", cm, bm, len(c.Baseline), bm, c.MaxRatio, c.Floor, limit)
	if cm <= limit {
		m.Outcome = rings.OK
	} else {
		m.Outcome = rings.Failed
	}
	return m
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// values flattens a query result into numbers, in a stable order (by series labels), and a short
// rendering of it for the journal.
func values(v model.Value) ([]float64, string) {
	var out []float64
	var parts []string
	switch x := v.(type) {
	case *model.Scalar:
		out = []float64{float64(x.Value)}
		parts = []string{x.Value.String()}
	case model.Vector:
		sort.Slice(x, func(i, j int) bool { return x[i].Metric.String() < x[j].Metric.String() })
		for _, s := range x {
			out = append(out, float64(s.Value))
			parts = append(parts, s.Metric.String()+" "+s.Value.String())
		}
	case model.Matrix:
		sort.Slice(x, func(i, j int) bool { return x[i].Metric.String() < x[j].Metric.String() })
		for _, s := range x {
			for _, sp := range s.Values {
				out = append(out, float64(sp.Value))
			}
			parts = append(parts, fmt.Sprintf("%s (%d points)", s.Metric.String(), len(s.Values)))
		}
	}
	shown := strings.Join(parts, ", ")
	if len(out) == 1 {
		shown = strconv.FormatFloat(out[0], 'g', 6, 64)
	}
	if len(shown) > 200 {
		shown = shown[:200] + "..."
	}
	return out, "[" + shown + "]"
}

var (
	_ measure.Provider = (*Prometheus)(nil)
	_ measure.Provider = (*Compare)(nil)
)
