// Package gcpmonitoring is the gcpMonitoring gate provider: Cloud Monitoring time series, or the
// state of alert policies, in the boundary's own Google universe.
package gcpmonitoring

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"github.com/rollout-dev/rollout/internal/healthgate/measure"
	"github.com/rollout-dev/rollout/internal/rings"
	"google.golang.org/api/iterator"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TimeSeries reads Cloud Monitoring time series (ListTimeSeries: a filter over the last Range,
// aligned per series and optionally reduced across them) in one universe, with the boundary's
// credential; every point of every series is a value of result.
type TimeSeries struct {
	Client          *monitoring.MetricClient
	Universe        string
	Project         string
	Filter          string
	Range           time.Duration
	AlignmentPeriod time.Duration
	Aligner         string
	Reducer         string
	Judge           measure.Conditions
}

func (g *TimeSeries) Measure(ctx context.Context) rings.Measurement {
	now := time.Now()
	m := rings.Measurement{At: now, Outcome: rings.Error}
	agg := &monitoringpb.Aggregation{AlignmentPeriod: durationpb.New(g.AlignmentPeriod),
		PerSeriesAligner: monitoringpb.Aggregation_Aligner(monitoringpb.Aggregation_Aligner_value[g.Aligner])}
	if g.Reducer != "" {
		agg.CrossSeriesReducer = monitoringpb.Aggregation_Reducer(monitoringpb.Aggregation_Reducer_value[g.Reducer])
	}
	req := &monitoringpb.ListTimeSeriesRequest{Name: "projects/" + g.Project, Filter: g.Filter,
		Interval:    &monitoringpb.TimeInterval{StartTime: timestamppb.New(now.Add(-g.Range)), EndTime: timestamppb.New(now)},
		Aggregation: agg, View: monitoringpb.ListTimeSeriesRequest_FULL}
	what := fmt.Sprintf("cloud monitoring (%s) projects/%s %s over %s", g.Universe, g.Project, g.Filter, g.Range)
	var vals []float64
	series := 0
	it := g.Client.ListTimeSeries(ctx, req)
	for {
		ts, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			m.Message = fmt.Sprintf("%s: %s", what, measure.OneLine(err))
			return m
		}
		series++
		for _, p := range ts.GetPoints() {
			switch v := p.GetValue().GetValue().(type) {
			case *monitoringpb.TypedValue_DoubleValue:
				vals = append(vals, v.DoubleValue)
			case *monitoringpb.TypedValue_Int64Value:
				vals = append(vals, float64(v.Int64Value))
			case *monitoringpb.TypedValue_BoolValue:
				b := 0.0
				if v.BoolValue {
					b = 1
				}
				vals = append(vals, b)
			}
		}
	}
	if len(vals) == 0 {
		m.Outcome, m.Message = rings.NoData, what+": no data"
		return m
	}
	o, why := g.Judge.Numbers(vals)
	m.Outcome, m.Message = o, fmt.Sprintf("%s = %v (%d series): %s", what, vals, series, why)
	return m
}

// AlertPolicies reads the state of Cloud Monitoring alert policies by evaluating each of their
// metric threshold conditions as the policy defines it (its filter, aggregations, comparison and
// threshold) over the condition's duration: a condition met by any series fails the measurement.
// A disabled policy is no data (it is not watching); a condition of another kind (absence, MQL,
// PromQL) is an error, since it cannot be judged here.
type AlertPolicies struct {
	Policies *monitoring.AlertPolicyClient
	Metrics  *monitoring.MetricClient
	Universe string
	Project  string
	Names    []string
}

func (g *AlertPolicies) Measure(ctx context.Context) rings.Measurement {
	now := time.Now()
	m := rings.Measurement{At: now, Outcome: rings.Error}
	var firing, checked, silent []string
	for _, name := range g.Names {
		p, err := g.Policies.GetAlertPolicy(ctx, &monitoringpb.GetAlertPolicyRequest{Name: name})
		if err != nil {
			m.Message = fmt.Sprintf("cloud monitoring (%s) alert policy %s: %s", g.Universe, name, measure.OneLine(err))
			return m
		}
		if e := p.GetEnabled(); e != nil && !e.GetValue() {
			m.Outcome, m.Message = rings.NoData, fmt.Sprintf("cloud monitoring (%s) alert policy %s (%s) is disabled", g.Universe, p.GetDisplayName(), name)
			return m
		}
		for _, c := range p.GetConditions() {
			th := c.GetConditionThreshold()
			if th == nil {
				m.Message = fmt.Sprintf("cloud monitoring alert policy %s: condition %q is not a metric threshold; only those can be evaluated", p.GetDisplayName(), c.GetDisplayName())
				return m
			}
			window := max(th.GetDuration().AsDuration(), 5*time.Minute)
			req := &monitoringpb.ListTimeSeriesRequest{Name: "projects/" + g.Project, Filter: th.GetFilter(),
				Interval: &monitoringpb.TimeInterval{StartTime: timestamppb.New(now.Add(-window)), EndTime: timestamppb.New(now)}, View: monitoringpb.ListTimeSeriesRequest_FULL}
			if aggs := th.GetAggregations(); len(aggs) > 0 {
				req.Aggregation = aggs[0]
			}
			it := g.Metrics.ListTimeSeries(ctx, req)
			seen := false
			for {
				ts, err := it.Next()
				if errors.Is(err, iterator.Done) {
					break
				}
				if err != nil {
					m.Message = fmt.Sprintf("cloud monitoring alert policy %s condition %q: %s", p.GetDisplayName(), c.GetDisplayName(), measure.OneLine(err))
					return m
				}
				pts := ts.GetPoints()
				if len(pts) == 0 {
					continue
				}
				seen = true
				v := pts[0].GetValue().GetDoubleValue() // points come newest first
				if iv, ok := pts[0].GetValue().GetValue().(*monitoringpb.TypedValue_Int64Value); ok {
					v = float64(iv.Int64Value)
				}
				if met(th.GetComparison(), v, th.GetThresholdValue()) {
					firing = append(firing, fmt.Sprintf("%s / %s: %g %s %g", p.GetDisplayName(), c.GetDisplayName(), v, comparisonText(th.GetComparison()), th.GetThresholdValue()))
				}
			}
			checked = append(checked, p.GetDisplayName()+" / "+c.GetDisplayName())
			if !seen {
				silent = append(silent, p.GetDisplayName()+" / "+c.GetDisplayName())
			}
		}
	}
	if len(firing) > 0 {
		m.Outcome, m.Message = rings.Failed, fmt.Sprintf("cloud monitoring (%s) alert conditions met: %s", g.Universe, strings.Join(firing, "; "))
		return m
	}
	if len(silent) > 0 { // a condition without data is not known to be quiet
		m.Outcome, m.Message = rings.NoData, fmt.Sprintf("cloud monitoring (%s) alert conditions without data: %s", g.Universe, strings.Join(silent, "; "))
		return m
	}
	m.Outcome, m.Message = rings.OK, fmt.Sprintf("cloud monitoring (%s) alert conditions not met: %s", g.Universe, strings.Join(checked, "; "))
	return m
}

func met(c monitoringpb.ComparisonType, v, threshold float64) bool {
	switch c {
	case monitoringpb.ComparisonType_COMPARISON_GT:
		return v > threshold
	case monitoringpb.ComparisonType_COMPARISON_GE:
		return v >= threshold
	case monitoringpb.ComparisonType_COMPARISON_LT:
		return v < threshold
	case monitoringpb.ComparisonType_COMPARISON_LE:
		return v <= threshold
	case monitoringpb.ComparisonType_COMPARISON_EQ:
		return v == threshold
	case monitoringpb.ComparisonType_COMPARISON_NE:
		return v != threshold
	}
	return false
}

func comparisonText(c monitoringpb.ComparisonType) string {
	return map[monitoringpb.ComparisonType]string{monitoringpb.ComparisonType_COMPARISON_GT: ">", monitoringpb.ComparisonType_COMPARISON_GE: ">=",
		monitoringpb.ComparisonType_COMPARISON_LT: "<", monitoringpb.ComparisonType_COMPARISON_LE: "<=", monitoringpb.ComparisonType_COMPARISON_EQ: "==",
		monitoringpb.ComparisonType_COMPARISON_NE: "!="}[c]
}

var (
	_ measure.Provider = (*TimeSeries)(nil)
	_ measure.Provider = (*AlertPolicies)(nil)
)
