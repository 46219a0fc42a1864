// Package cloudwatch is the cloudWatch gate provider: alarm states or one metric statistic, in one
// AWS partition and region.
package cloudwatch

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/healthgate/measure"
	"github.com/rollout-dev/rollout/internal/rings"
)

// CloudWatch reads alarm states (DescribeAlarms: metric and composite alarms) or one metric
// statistic (GetMetricData) in one partition and region, with that boundary's credentials.
type CloudWatch struct {
	Client           *cloudwatch.Client
	Where            string // "aws-us-gov us-gov-west-1", for messages
	Alarms           []string
	AlarmPrefix      string
	InsufficientData string // fail | inconclusive | ok
	Metric           *config.CloudWatchMetric
	Dimensions       map[string]string // rendered
	Judge            measure.Conditions
}

func (c *CloudWatch) Measure(ctx context.Context) rings.Measurement {
	if c.Metric != nil {
		return c.metric(ctx)
	}
	return c.alarms(ctx)
}

func (c *CloudWatch) alarms(ctx context.Context) rings.Measurement {
	m := rings.Measurement{At: time.Now(), Outcome: rings.Error}
	in := &cloudwatch.DescribeAlarmsInput{AlarmTypes: []types.AlarmType{types.AlarmTypeMetricAlarm, types.AlarmTypeCompositeAlarm}}
	what := ""
	if len(c.Alarms) > 0 {
		in.AlarmNames, what = c.Alarms, "alarms "+strings.Join(c.Alarms, ", ")
	} else {
		in.AlarmNamePrefix, what = aws.String(c.AlarmPrefix), "alarms "+c.AlarmPrefix+"*"
	}
	states := map[string]string{} // alarm -> state: reason
	var alarming, insufficient []string
	pages := cloudwatch.NewDescribeAlarmsPaginator(c.Client, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			m.Message = fmt.Sprintf("cloudwatch %s: DescribeAlarms: %s", c.Where, measure.OneLine(err))
			return m
		}
		note := func(name string, state types.StateValue, reason *string) {
			states[name] = string(state)
			switch state {
			case types.StateValueAlarm:
				alarming = append(alarming, fmt.Sprintf("%s (%s)", name, aws.ToString(reason)))
			case types.StateValueInsufficientData:
				insufficient = append(insufficient, name)
			}
		}
		for _, a := range out.MetricAlarms {
			note(aws.ToString(a.AlarmName), a.StateValue, a.StateReason)
		}
		for _, a := range out.CompositeAlarms {
			note(aws.ToString(a.AlarmName), a.StateValue, a.StateReason)
		}
	}
	var missing []string
	for _, name := range c.Alarms {
		if _, ok := states[name]; !ok {
			missing = append(missing, name)
		}
	}
	sort.Strings(alarming)
	sort.Strings(insufficient)
	switch {
	case len(alarming) > 0:
		m.Outcome, m.Message = rings.Failed, fmt.Sprintf("cloudwatch %s: in ALARM: %s", c.Where, strings.Join(alarming, "; "))
	case len(states) == 0:
		m.Outcome, m.Message = rings.NoData, fmt.Sprintf("cloudwatch %s: no %s", c.Where, what)
	case len(missing) > 0:
		m.Outcome, m.Message = rings.NoData, fmt.Sprintf("cloudwatch %s: no such alarm: %s", c.Where, strings.Join(missing, ", "))
	case len(insufficient) > 0:
		m.Outcome = rings.Failed
		switch c.InsufficientData {
		case config.NoDataInconclusive:
			m.Outcome = rings.Inconclusive
		case "ok":
			m.Outcome = rings.OK
		}
		m.Message = fmt.Sprintf("cloudwatch %s: INSUFFICIENT_DATA: %s (insufficientData: %s)", c.Where, strings.Join(insufficient, ", "), c.InsufficientData)
	default:
		m.Outcome, m.Message = rings.OK, fmt.Sprintf("cloudwatch %s: %d alarm(s) OK", c.Where, len(states))
	}
	return m
}

func (c *CloudWatch) metric(ctx context.Context) rings.Measurement {
	now := time.Now()
	m := rings.Measurement{At: now, Outcome: rings.Error}
	var dims []types.Dimension
	keys := make([]string, 0, len(c.Dimensions))
	for k := range c.Dimensions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dims = append(dims, types.Dimension{Name: aws.String(k), Value: aws.String(c.Dimensions[k])})
	}
	in := &cloudwatch.GetMetricDataInput{StartTime: aws.Time(now.Add(-c.Metric.Range.D())), EndTime: aws.Time(now),
		MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("m"), ReturnData: aws.Bool(true), MetricStat: &types.MetricStat{
			Metric: &types.Metric{Namespace: aws.String(c.Metric.Namespace), MetricName: aws.String(c.Metric.Name), Dimensions: dims},
			Period: aws.Int32(int32(c.Metric.Period.D() / time.Second)), Stat: aws.String(c.Metric.Stat)}}}}
	var vals []float64
	pages := cloudwatch.NewGetMetricDataPaginator(c.Client, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			m.Message = fmt.Sprintf("cloudwatch %s: GetMetricData: %s", c.Where, measure.OneLine(err))
			return m
		}
		for _, r := range out.MetricDataResults {
			vals = append(vals, r.Values...)
		}
	}
	what := fmt.Sprintf("cloudwatch %s: %s %s/%s over %s", c.Where, c.Metric.Stat, c.Metric.Namespace, c.Metric.Name, c.Metric.Range)
	m.Outcome, m.Message = c.Judge.Judged(what, vals)
	return m
}

var (
	_ measure.Provider = (*CloudWatch)(nil)
)
