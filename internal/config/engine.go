package config

import (
	"net"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// Temporal is the Temporal cluster a fleet with engine: temporal runs on.
type Temporal struct {
	Address   string // host:port of the frontend
	Namespace string // default "default"
	// TaskQueuePrefix names the task queues: PREFIX-BOUNDARY for each boundary's workers and
	// PREFIX-journal for the worker that writes the journal (default "rollout").
	TaskQueuePrefix string
	TLS             *TemporalTLS // nil: plain gRPC (a loopback development server)
	Line            int          // of temporal in rollout.yaml
}

// TemporalTLS is mutual TLS to the frontend: files relative to the fleet's root.
type TemporalTLS struct {
	CAFile, CertFile, KeyFile string
}

// Engines are the values engine may take.
var Engines = []string{"inprocess", "temporal"}

func parseEngine(w walker, engine, temporal *yaml.Node) (string, *Temporal) {
	e := w.str(engine, "engine")
	switch e {
	case "", "inprocess":
		e = "inprocess"
	case "temporal":
	default:
		w.fail(engine, "engine", "want inprocess or temporal, not %q", e)
	}
	if temporal == nil {
		if e == "temporal" {
			w.fail(engine, "engine", "engine temporal needs a temporal section (address, namespace, taskQueuePrefix)")
		}
		return e, nil
	}
	f := w.fields(temporal, "temporal", "address", "namespace", "taskQueuePrefix", "tls")
	t := &Temporal{Address: w.str(f["address"], "temporal.address"), Namespace: w.str(f["namespace"], "temporal.namespace"),
		TaskQueuePrefix: w.str(f["taskQueuePrefix"], "temporal.taskQueuePrefix"), Line: temporal.Line}
	if _, _, err := net.SplitHostPort(t.Address); err != nil {
		w.fail(temporal, "temporal.address", "want the frontend's host:port, such as temporal.example:7233")
	}
	if t.Namespace == "" {
		t.Namespace = "default"
	}
	if t.TaskQueuePrefix == "" {
		t.TaskQueuePrefix = "rollout"
	}
	if n := f["tls"]; n != nil {
		tf := w.fields(n, "temporal.tls", "caFile", "certFile", "keyFile")
		t.TLS = &TemporalTLS{CAFile: w.str(tf["caFile"], "temporal.tls.caFile"), CertFile: w.str(tf["certFile"], "temporal.tls.certFile"),
			KeyFile: w.str(tf["keyFile"], "temporal.tls.keyFile")}
		if (t.TLS.CertFile == "") != (t.TLS.KeyFile == "") {
			w.fail(n, "temporal.tls", "certFile and keyFile go together (the client's certificate and its key)")
		}
	}
	return e, t
}

// Abs is a TLS file's path: as given when absolute, else under the fleet's root.
func (c *Config) Abs(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(c.Root, path)
}
