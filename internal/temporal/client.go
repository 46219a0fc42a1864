package temporal

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Cluster is where the engine runs: a Temporal frontend, a namespace, the task queues' prefix
// and, for mutual TLS, the CA that signed the frontend's certificate and this client's own.
type Cluster struct {
	Address, Namespace, Prefix string
	CAFile, CertFile, KeyFile  string
	// Logs is where the SDK's warnings go (nil: nowhere).
	Logs io.Writer
}

// Dial connects to the cluster (and checks it answers).
func Dial(ctx context.Context, c Cluster) (client.Client, error) {
	tlsConf, err := c.tls()
	if err != nil {
		return nil, err
	}
	logs := c.Logs
	if logs == nil {
		logs = io.Discard
	}
	cl, err := client.DialContext(ctx, client.Options{
		HostPort: c.Address, Namespace: c.Namespace,
		ConnectionOptions: client.ConnectionOptions{TLS: tlsConf},
		Logger:            log.NewStructuredLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	})
	if err != nil {
		return nil, fmt.Errorf("temporal at %s (namespace %s): %w", c.Address, c.Namespace, err)
	}
	return cl, nil
}

func (c Cluster) tls() (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("temporal.tls.caFile: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("temporal.tls.caFile %s: no PEM certificate in it", c.CAFile)
		}
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("temporal.tls.certFile/keyFile: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// Start starts a run's workflow, or finds it running: one workflow per run, however often it
// is started (its ID is the fleet's and the run's). A run whose workflow ended (it waited or
// was interrupted, and was resumed since) gets a new one.
func Start(ctx context.Context, cl client.Client, fleet string, in RunInput) (client.WorkflowRun, error) {
	return cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: WorkflowID(fleet, in.RunID), TaskQueue: JournalQueue(in.Prefix),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, WorkflowName, in)
}

// Nudge tells a run's workflow that something was journaled for it; a run with no workflow
// running is not an error (it reads its journal when it starts).
func Nudge(ctx context.Context, cl client.Client, fleet, runID string) error {
	err := cl.SignalWorkflow(ctx, WorkflowID(fleet, runID), "", SignalActed, nil)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return err
}

// Query asks a run's workflow where it is (ok false: no workflow of the run is running; one that
// ended, or failed, does not drive the run).
func Query(ctx context.Context, cl client.Client, fleet, runID string) (p Progress, ok bool, err error) {
	d, err := cl.DescribeWorkflowExecution(ctx, WorkflowID(fleet, runID), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return Progress{}, false, nil
	}
	if err != nil {
		return Progress{}, false, err
	}
	if d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return Progress{}, false, nil
	}
	// A query is answered by a worker of the workflow's queue: with none, it would wait.
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := cl.QueryWorkflow(qctx, WorkflowID(fleet, runID), "", QueryProgress)
	if errors.As(err, &nf) {
		return Progress{}, false, nil
	}
	if err != nil && ctx.Err() == nil { // running, and no worker of its queue answers for it
		return Progress{Phase: "unanswered", Waiting: map[string]int{JournalQueue(fleet): 1}}, true, nil
	}
	if err != nil {
		return Progress{}, false, err
	}
	return p, true, v.Get(&p)
}

// Unserved says which of the queues no worker has polled within the last minute.
func Unserved(ctx context.Context, cl client.Client, queues []string) ([]string, error) {
	var out []string
	for _, q := range queues {
		d, err := cl.DescribeTaskQueue(ctx, q, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		if err != nil {
			return nil, err
		}
		live := false
		for _, p := range d.GetPollers() {
			if t := p.GetLastAccessTime(); t != nil && time.Since(t.AsTime()) < time.Minute {
				live = true
			}
		}
		if !live {
			out = append(out, q)
		}
	}
	return out, nil
}

// Workers are the workers of one process: one per boundary it serves (the boundary's task
// queue), and the journal's when it serves that (the workflow and the journal's activities).
type Workers []worker.Worker

// NewWorkers makes a process's workers; Run starts them.
func NewWorkers(cl client.Client, prefix string, acts *Activities, boundaries []string) Workers {
	var ws Workers
	opts := worker.Options{MaxConcurrentActivityExecutionSize: 64}
	for _, b := range boundaries {
		w := worker.New(cl, BoundaryQueue(prefix, b), opts)
		w.RegisterActivityWithOptions(acts.Work, activity.RegisterOptions{Name: actWork})
		ws = append(ws, w)
	}
	if acts.Journal {
		w := worker.New(cl, JournalQueue(prefix), opts)
		Register(w, acts)
		ws = append(ws, w)
	}
	return ws
}

// Register registers the workflow and the journal queue's activities with w.
func Register(w worker.Registry, acts *Activities) {
	w.RegisterWorkflowWithOptions(Run, workflow.RegisterOptions{Name: WorkflowName})
	w.RegisterActivityWithOptions(acts.Load, activity.RegisterOptions{Name: actLoad})
	w.RegisterActivityWithOptions(acts.Append, activity.RegisterOptions{Name: actAppend})
	w.RegisterActivityWithOptions(acts.Inbox, activity.RegisterOptions{Name: actInbox})
	w.RegisterActivityWithOptions(acts.Work, activity.RegisterOptions{Name: actWork})
}

// Run polls every worker's queue until ctx ends, then stops them (work under way is given
// back to Temporal, to be retried by another worker).
func (ws Workers) Run(ctx context.Context) error {
	for i, w := range ws {
		if err := w.Start(); err != nil {
			for _, started := range ws[:i] {
				started.Stop()
			}
			return err
		}
	}
	<-ctx.Done()
	for _, w := range ws {
		w.Stop()
	}
	return nil
}
