// Package measure is what every gate provider shares: the Provider interface, and the
// conditions that judge a measured value.
package measure

import (
	"context"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Provider takes one measurement. It reports failures (unreachable, bad status, non-zero exit) as
// a failed rings.Measurement, and must return by ctx's deadline.
type Provider interface {
	Measure(ctx context.Context) rings.Measurement
}

func Snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Conditions judge a measured value with a gate's successCondition and failureCondition: the
// failure condition holding fails the measurement; else the success condition holding passes it;
// else it is inconclusive when a failure condition was given (neither clearly good nor bad), and
// failed when not.
type Conditions struct {
	Success, Failure *config.Condition
}

// Numbers judges a numeric result: one value is a number to the condition (result < 0.01) when
// the condition type-checks so; otherwise, and for several values, a list (all(result, {# < 1})).
func (c Conditions) Numbers(vals []float64) (rings.Outcome, string) {
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
func (c Conditions) Judged(what string, vals []float64) (rings.Outcome, string) {
	if len(vals) == 0 {
		return rings.NoData, what + ": no data"
	}
	o, why := c.Numbers(vals)
	return o, fmt.Sprintf("%s = %v: %s", what, vals, why)
}

// Value judges any result (a Terraform output).
func (c Conditions) Value(v any) (rings.Outcome, string) {
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

func (c Conditions) judge(eval func(*config.Condition) (bool, error)) (rings.Outcome, string) {
	if c.Failure != nil {
		bad, err := eval(c.Failure)
		if err != nil {
			return rings.Error, "failureCondition: " + OneLine(err)
		}
		if bad {
			return rings.Failed, "failureCondition " + c.Failure.Source + " holds"
		}
	}
	if c.Success == nil {
		return rings.Error, "no successCondition"
	}
	good, err := eval(c.Success)
	if err != nil {
		return rings.Error, "successCondition: " + OneLine(err)
	}
	switch {
	case good:
		return rings.OK, "successCondition " + c.Success.Source + " holds"
	case c.Failure != nil:
		return rings.Inconclusive, "neither successCondition " + c.Success.Source + " nor failureCondition " + c.Failure.Source + " holds"
	}
	return rings.Failed, "successCondition " + c.Success.Source + " does not hold"
}

func OneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
