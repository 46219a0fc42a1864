package healthgate

import (
	"context"
	"errors"
	"fmt"
	"time"

	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"cloud.google.com/go/monitoring/apiv3/v2/monitoringpb"
	"google.golang.org/api/iterator"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// GCPMonitoring reads Cloud Monitoring time series (ListTimeSeries: a filter over the last Range,
// aligned per series and optionally reduced across them) in one universe, with the boundary's
// credential; every point of every series is a value of result.
type GCPMonitoring struct {
	Client          *monitoring.MetricClient
	Universe        string
	Project         string
	Filter          string
	Range           time.Duration
	AlignmentPeriod time.Duration
	Aligner         string
	Reducer         string
	Judge           Conditions
}

func (g *GCPMonitoring) Measure(ctx context.Context) Measurement {
	now := time.Now()
	m := Measurement{At: now, Outcome: Error}
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
			m.Message = fmt.Sprintf("%s: %s", what, oneLine(err))
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
		m.Outcome, m.Message = NoData, what+": no data"
		return m
	}
	o, why := g.Judge.Numbers(vals)
	m.Outcome, m.Message = o, fmt.Sprintf("%s = %v (%d series): %s", what, vals, series, why)
	return m
}
