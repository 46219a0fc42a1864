package healthgate

import (
	"context"
	"net/url"
	"strings"
	"sync"

	"cloud.google.com/go/auth"
	monitoring "cloud.google.com/go/monitoring/apiv3/v2"
	"google.golang.org/api/option"

	gcpcloud "github.com/rollout-dev/rollout/internal/clouds/gcp"
	"github.com/rollout-dev/rollout/internal/config"
)

// GRPCOptions are extra client options for Cloud Monitoring (tests give a loopback TLS server's).
type GRPCOptions []option.ClientOption

// monitoringClients keeps one Cloud Monitoring client per boundary: a gRPC connection is costly
// and a client is safe for concurrent use.
type monitoringClients struct {
	mu       sync.Mutex
	clients  map[string]*monitoring.MetricClient
	policies map[string]*monitoring.AlertPolicyClient
}

// monitoringClient is the boundary's client: its universe, its credential, its endpoint override
// (host:port, or a URL whose host is used).
func (r *Runner) monitoringClient(b *config.Boundary, creds *auth.Credentials) (*monitoring.MetricClient, error) {
	r.gcp.mu.Lock()
	defer r.gcp.mu.Unlock()
	if c, ok := r.gcp.clients[b.Name]; ok {
		return c, nil
	}
	c, err := monitoring.NewMetricClient(context.Background(), googleOptions(b, creds, r.GoogleOptions)...)
	if err != nil {
		return nil, err
	}
	if r.gcp.clients == nil {
		r.gcp.clients = map[string]*monitoring.MetricClient{}
	}
	r.gcp.clients[b.Name] = c
	return c, nil
}

// alertPolicyClient is the boundary's alert policy client, like monitoringClient.
func (r *Runner) alertPolicyClient(b *config.Boundary, creds *auth.Credentials) (*monitoring.AlertPolicyClient, error) {
	r.gcp.mu.Lock()
	defer r.gcp.mu.Unlock()
	if c, ok := r.gcp.policies[b.Name]; ok {
		return c, nil
	}
	c, err := monitoring.NewAlertPolicyClient(context.Background(), googleOptions(b, creds, r.GoogleOptions)...)
	if err != nil {
		return nil, err
	}
	if r.gcp.policies == nil {
		r.gcp.policies = map[string]*monitoring.AlertPolicyClient{}
	}
	r.gcp.policies[b.Name] = c
	return c, nil
}

func googleOptions(b *config.Boundary, creds *auth.Credentials, extra GRPCOptions) []option.ClientOption {
	opts := []option.ClientOption{option.WithAuthCredentials(creds), option.WithUniverseDomain(universeOf(b))}
	if ep := b.Endpoints["monitoring"]; ep != "" {
		if u, err := url.Parse(ep); err == nil && u.Host != "" {
			ep = u.Host
			if !strings.Contains(ep, ":") {
				ep += ":443"
			}
		}
		opts = append(opts, option.WithEndpoint(ep))
	}
	return append(opts, extra...)
}

// Close releases the Cloud Monitoring connections.
func (r *Runner) Close() {
	r.gcp.mu.Lock()
	defer r.gcp.mu.Unlock()
	for _, c := range r.gcp.clients {
		_ = c.Close()
	}
	for _, c := range r.gcp.policies {
		_ = c.Close()
	}
	r.gcp.clients, r.gcp.policies = nil, nil
}

func universeOf(b *config.Boundary) string { return gcpcloud.Universe(b) }
