package clouds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/redact"
	"github.com/rollout-dev/rollout/internal/resilience"
	"github.com/rollout-dev/rollout/internal/rings"
)

// Identity is what preflight proved about a boundary's credentials; it holds no secret. It is
// the journal's record type.
type Identity = rings.Identity

// Describe says in one line what preflight proved in boundary.
func Describe(boundary string, i Identity) string {
	s := fmt.Sprintf("%s (%s %s): %s", boundary, i.Cloud, i.Scope, i.Principal)
	if i.Account != "" {
		s += ", account " + i.Account
	}
	if i.Region != "" {
		s += ", region " + i.Region
	}
	if i.Attempts > 1 {
		s += fmt.Sprintf(", after %d attempts", i.Attempts)
	}
	if i.Stale != "" {
		s += fmt.Sprintf(" (STALE: proven %s; now %s)", i.ProvenAt.Format(time.RFC3339), i.Stale)
	}
	return s
}

// RetryPolicy bounds the retries of a throttled or unavailable identity endpoint.
type RetryPolicy = resilience.Policy

// DefaultRetry is used when a Manager's Retry is zero.
var DefaultRetry = RetryPolicy{Attempts: 5, Initial: 500 * time.Millisecond, Max: 15 * time.Second, MaxElapsed: time.Minute}

// Manager gives each boundary its Terraform environment and proves its identity. One per fleet.
type Manager struct {
	Config *config.Config
	Lookup Lookup       // rollout's own environment; nil: os.LookupEnv
	Client *http.Client // for every identity endpoint; nil: a client with default transport
	Retry  RetryPolicy
	// CacheDir keeps each boundary's last proven identity (no secret in it); when a preflight
	// fails transiently, one younger than MaxStaleness stands in, marked stale. "": no cache.
	CacheDir     string
	MaxStaleness time.Duration

	// Catalog is the clouds boundaries may name (clouds/catalog.All in production).
	Catalog Catalog

	mu     sync.Mutex
	shared map[string]any // what clouds keep per boundary (credential caches): see Shared
}

// Shared is the value kept under key, made by mk the first time (an error is not kept): a cloud
// keeps one credential (and so one token cache) per boundary, so that a ring of many targets asks
// its authority once, not once per target.
func (m *Manager) Shared(key string, mk func() (any, error)) (any, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.shared[key]; ok {
		return v, nil
	}
	v, err := mk()
	if err != nil {
		return v, err
	}
	if m.shared == nil {
		m.shared = map[string]any{}
	}
	m.shared[key] = v
	return v, nil
}

// LookupEnv reads a variable of rollout's own environment (Lookup, or the process's).
func (m *Manager) LookupEnv(name string) (string, bool) { return m.lookup()(name) }

// Boundary is the boundary of that name, or an error naming it.
func (m *Manager) Boundary(name string) (*config.Boundary, error) { return m.boundary(name) }

func (m *Manager) lookup() Lookup {
	if m.Lookup != nil {
		return m.Lookup
	}
	return os.LookupEnv
}

func (m *Manager) client() *http.Client {
	if m.Client != nil {
		return m.Client
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (m *Manager) boundary(name string) (*config.Boundary, error) {
	b := m.Config.Boundaries[name]
	if b == nil {
		return nil, fmt.Errorf("unknown boundary %q", name)
	}
	return b, nil
}

// Env is the environment of a Terraform run for target: its boundary's variables and none of
// another's.
func (m *Manager) Env(ctx context.Context, target string) (Env, error) {
	t := m.Config.Target(target)
	if t == nil {
		return Env{}, fmt.Errorf("unknown target %q", target)
	}
	b, err := m.boundary(t.Boundary)
	if err != nil {
		return Env{}, err
	}
	e, err := m.staticEnv(b, t)
	if err != nil {
		return e, err
	}
	if tc, ok := m.Catalog.Cloud(b.Cloud).(TemporaryCredentials); ok {
		if err := tc.Temporary(ctx, m, b, t, &e); err != nil {
			return Env{}, err
		}
	}
	return e, nil
}

// StaticEnv is what a program run for target (a command gate) may see: its boundary's variables,
// as Terraform gets them, without the temporary credentials of a role chain; the base allow-list
// alone for "" (a ring's gate, of no one target) or an undeclared target.
func (m *Manager) StaticEnv(target string) (Env, error) {
	t := m.Config.Target(target)
	if t == nil || m.Config.Boundaries[t.Boundary] == nil {
		return Env{Vars: BaseEnv(m.Config, m.lookup())}, nil
	}
	return m.staticEnv(m.Config.Boundaries[t.Boundary], t)
}

// Secrets are the secret values any boundary's environment holds now (for redaction).
func (m *Manager) Secrets() []string {
	var out []string
	for _, b := range m.Config.Boundaries {
		if e, err := m.staticEnv(b, nil); err == nil {
			out = append(out, e.Secrets...)
		}
	}
	return out
}

// Preflight proves that the boundary's identity works in that boundary, with the cloud's own SDK
// (see each cloud's Preflight). region is where to check (AWS); empty picks the boundary's first
// target's. A cloud without identity (local) proves nothing and says so.
func (m *Manager) Preflight(ctx context.Context, boundary, region string) (Identity, error) {
	b, err := m.boundary(boundary)
	if err != nil {
		return Identity{}, err
	}
	if region == "" {
		for _, t := range m.Config.Targets {
			if t.Boundary == b.Name && t.Region != "" {
				region = t.Region
				break
			}
		}
	}
	id := Identity{Cloud: b.Cloud}
	cl := m.Catalog.Cloud(b.Cloud)
	switch {
	case cl == nil:
		return id, fmt.Errorf("boundary %s: unknown cloud %q", b.Name, b.Cloud)
	case !cl.Traits().Proven:
		id.Scope, id.Principal, id.Attempts = b.Cloud, "none needed", 1
		return id, nil
	}
	check := func(ctx context.Context) (Identity, error) { return cl.Preflight(ctx, m, b, region) }
	r := m.Retry
	if r.Attempts == 0 {
		r = DefaultRetry
	}
	got, attempts, err := resilience.Retry(ctx, r, Transient, nil, func() (Identity, error) { return check(ctx) })
	if err != nil {
		if Transient(err) {
			err = fmt.Errorf("preflight %s: still failing after %d attempts: %w", b.Name, attempts, RedactError(err, m.Secrets()))
			if cached, ok := m.cached(b.Name, region); ok {
				cached.Stale = err.Error()
				return cached, nil
			}
			return id, err
		}
		return id, fmt.Errorf("preflight %s: %w", b.Name, RedactError(err, m.Secrets()))
	}
	got.Cloud, got.Attempts = b.Cloud, attempts
	got.ProvenAt = time.Now().UTC()
	m.remember(b.Name, region, got)
	return got, nil
}

func (m *Manager) cacheFile(boundary, region string) string {
	return filepath.Join(m.CacheDir, "preflight", boundary+"@"+region+".json")
}

// remember keeps a proven identity for stale use (see CacheDir).
func (m *Manager) remember(boundary, region string, id Identity) {
	if m.CacheDir == "" {
		return
	}
	b, _ := json.Marshal(id)
	p := m.cacheFile(boundary, region)
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		_ = os.WriteFile(p, b, 0o644)
	}
}

// cached is the boundary's last proven identity, if younger than MaxStaleness.
func (m *Manager) cached(boundary, region string) (Identity, bool) {
	if m.CacheDir == "" || m.MaxStaleness <= 0 {
		return Identity{}, false
	}
	b, err := os.ReadFile(m.cacheFile(boundary, region))
	if err != nil {
		return Identity{}, false
	}
	var id Identity
	if json.Unmarshal(b, &id) != nil || id.ProvenAt.IsZero() || time.Since(id.ProvenAt) > m.MaxStaleness {
		return Identity{}, false
	}
	return id, true
}

// Transient says whether an identity endpoint's error may pass on retry: throttling, a server
// error, a timeout or a reset connection. Wrong credentials never do.
func Transient(err error) bool {
	var sc interface{ HTTPStatusCode() int }
	if errors.As(err, &sc) {
		if c := sc.HTTPStatusCode(); c == http.StatusTooManyRequests || c >= 500 {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"Throttling", "TooManyRequests", "RequestLimitExceeded", "connection reset by peer", "rateLimitExceeded", "status code 429"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// RedactError is err with every secret value taken out of its text (err itself when none is in it).
func RedactError(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	s := Redact(err.Error(), secrets)
	if s == err.Error() {
		return err
	}
	return errors.New(s)
}

// Redact replaces every secret value in s with "[redacted]", in each form it may travel in
// (URL-encoded, JSON-escaped, base64: an identity endpoint may echo a secret it rejects).
func Redact(s string, secrets []string) string { return redact.New(secrets...).String(s) }

// StatusError is an identity endpoint's error with its HTTP status (a cloud wraps its SDK's
// authentication errors in one, so that Transient can tell throttling from refusal).
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string       { return e.Err.Error() }
func (e *StatusError) Unwrap() error       { return e.Err }
func (e *StatusError) HTTPStatusCode() int { return e.Code }

// NeedsProof says whether a ring entering boundary must first prove its identity there.
func (m *Manager) NeedsProof(boundary string) bool {
	b := m.Config.Boundaries[boundary]
	if b == nil {
		return false
	}
	cl := m.Catalog.Cloud(b.Cloud)
	return cl != nil && cl.Traits().Proven
}

// Sovereign says whether boundary b is outside its cloud's commercial boundary.
func (m *Manager) Sovereign(b *config.Boundary) bool { return m.Catalog.Sovereign(b) }

// HTTPClient is the client identity and monitoring endpoints are reached with.
func (m *Manager) HTTPClient() *http.Client { return m.client() }
