package healthgate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	pconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/rollout-dev/rollout/internal/config"
)

// Conditions judge a measured value with a gate's successCondition and failureCondition: the
// failure condition holding fails the measurement; else the success condition holding passes it;
// else it is inconclusive when a failure condition was given (neither clearly good nor bad), and
// failed when not.
type Conditions struct {
	Success, Failure *config.Condition
}

// Numbers judges a numeric result: one value is a number to the condition (result < 0.01) when
// the condition type-checks so; otherwise, and for several values, a list (all(result, {# < 1})).
func (c Conditions) Numbers(vals []float64) (Outcome, string) {
	return c.judge(func(cond *config.Condition) (bool, error) {
		switch {
		case len(vals) == 1 && cond.Scalar != nil:
			return run(cond.Scalar, config.ScalarEnv{Result: vals[0]})
		case cond.Vector != nil:
			return run(cond.Vector, config.VectorEnv{Result: vals})
		}
		return false, fmt.Errorf("%q needs a single value, and the query returned %d", cond.Source, len(vals))
	})
}

// Judged is the outcome and message of a measurement of what that gave vals: no values is no
// data; else the conditions decide.
func (c Conditions) Judged(what string, vals []float64) (Outcome, string) {
	if len(vals) == 0 {
		return NoData, what + ": no data"
	}
	o, why := c.Numbers(vals)
	return o, fmt.Sprintf("%s = %v: %s", what, vals, why)
}

// Value judges any result (a Terraform output).
func (c Conditions) Value(v any) (Outcome, string) {
	return c.judge(func(cond *config.Condition) (bool, error) { return run(cond.Any, config.AnyEnv{Result: v}) })
}

func run(p *vm.Program, env any) (bool, error) {
	out, err := expr.Run(p, env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

func (c Conditions) judge(eval func(*config.Condition) (bool, error)) (Outcome, string) {
	if c.Failure != nil {
		bad, err := eval(c.Failure)
		if err != nil {
			return Error, "failureCondition: " + oneLine(err)
		}
		if bad {
			return Failed, "failureCondition " + c.Failure.Source + " holds"
		}
	}
	if c.Success == nil {
		return Error, "no successCondition"
	}
	good, err := eval(c.Success)
	if err != nil {
		return Error, "successCondition: " + oneLine(err)
	}
	switch {
	case good:
		return OK, "successCondition " + c.Success.Source + " holds"
	case c.Failure != nil:
		return Inconclusive, "neither successCondition " + c.Success.Source + " nor failureCondition " + c.Failure.Source + " holds"
	}
	return Failed, "successCondition " + c.Success.Source + " does not hold"
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// Prometheus measures with a PromQL query: instant, or over the last Range.
type Prometheus struct {
	API   promv1.API
	Query string
	Range time.Duration
	Step  time.Duration
	Judge Conditions
	Now   func() time.Time // nil: time.Now
}

var _ Provider = (*Prometheus)(nil)

// NewPrometheusAPI is a client of the server at address, authenticated with the bearer token or
// user name and password held in the named variables of rollout's environment.
func NewPrometheusAPI(c *config.PrometheusCheck, address string, base http.RoundTripper) (promv1.API, error) {
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

func (p *Prometheus) Measure(ctx context.Context) Measurement {
	m := Measurement{At: p.now(), Outcome: Error}
	vals, shown, warnings, err := p.values(ctx, p.Query, m.At)
	if err != nil {
		m.Message = fmt.Sprintf("query %s: %s", p.Query, oneLine(err))
		return m
	}
	if len(vals) == 0 {
		m.Outcome, m.Message = NoData, fmt.Sprintf("query %s: no data", p.Query)
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

func (c *Compare) Measure(ctx context.Context) Measurement {
	m := Measurement{At: c.Source.now(), Outcome: Error}
	canary, _, _, err := c.Source.values(ctx, c.Canary, m.At)
	if err != nil {
		m.Message = fmt.Sprintf("canary query %s: %s", c.Canary, oneLine(err))
		return m
	}
	var base []float64
	for _, q := range c.Baseline {
		vals, _, _, err := c.Source.values(ctx, q, m.At)
		if err != nil {
			m.Message = fmt.Sprintf("baseline query %s: %s", q, oneLine(err))
			return m
		}
		base = append(base, vals...)
	}
	if len(canary) < c.MinSamples || len(base) < c.MinSamples {
		m.Outcome = NoData
		m.Message = fmt.Sprintf("too few samples to compare: canary %d, baseline %d (from %d target(s) still on last known good), minSamples %d",
			len(canary), len(base), len(c.Baseline), c.MinSamples)
		return m
	}
	cm, bm := mean(canary), mean(base)
	limit := max(bm*c.MaxRatio, c.Floor)
	m.Message = fmt.Sprintf("canary %.4g vs baseline %.4g (%d target(s)): limit max(%.4g × %g, floor %g) = %.4g", cm, bm, len(c.Baseline), bm, c.MaxRatio, c.Floor, limit)
	if cm <= limit {
		m.Outcome = OK
	} else {
		m.Outcome = Failed
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

// TerraformOutput asserts over the target's recorded outputs.
type TerraformOutput struct {
	Outputs map[string]any
	Output  string
	Judge   Conditions
}

func (o *TerraformOutput) Measure(context.Context) Measurement {
	m := Measurement{At: time.Now()}
	var v any = o.Outputs
	name := "outputs"
	if o.Output != "" {
		x, ok := o.Outputs[o.Output]
		if !ok {
			m.Outcome, m.Message = NoData, fmt.Sprintf("no output %q", o.Output)
			return m
		}
		v, name = x, "output "+o.Output
	}
	b, _ := json.Marshal(v)
	shown := string(b)
	if len(shown) > 120 {
		shown = shown[:120] + "..."
	}
	m.Outcome, m.Message = o.Judge.Value(v)
	m.Message = fmt.Sprintf("%s = %s: %s", name, shown, m.Message)
	return m
}
