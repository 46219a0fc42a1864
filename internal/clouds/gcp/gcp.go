// Package gcp is the Google Cloud family: the commercial universe (googleapis.com) and sovereign
// universes with their own domain (S3NS's s3nsapis.fr, ...); the environment the google provider
// and the gcs backend see; preflight with a token from a credential of the boundary's universe.
package gcp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/config"
)

// Name is what a boundary's cloud key says.
const Name = "gcp"

// DefaultUniverse is Google Cloud's commercial universe, a boundary's universeDomain when it
// names none.
const DefaultUniverse = "googleapis.com"

// Cloud is the Google Cloud family.
type Cloud struct{}

func (Cloud) Name() string { return Name }

func (Cloud) Keys() config.CloudKeys {
	return config.CloudKeys{Settings: map[string]string{"universeDomain": DefaultUniverse},
		Identity: []string{"credentialsFile", "project", "impersonateServiceAccount"}}
}

func (Cloud) Traits() clouds.Traits {
	return clouds.Traits{Regional: true, Proven: true, RemoteState: true}
}

// Universe is boundary b's universe domain.
func Universe(b *config.Boundary) string {
	return cmp.Or(b.Settings["universeDomain"], DefaultUniverse)
}

// regionRE is a Google Cloud region name (us-central1, europe-west4, u-france-east1).
var regionRE = regexp.MustCompile(`^[a-z]+(-[a-z]+)+[0-9]+$`)

var endpointKeys = []string{"token", "sts", "storage", "monitoring"}

func (Cloud) CheckBoundary(b *config.Boundary, p *clouds.Problems) {
	u := Universe(b)
	if !strings.Contains(u, ".") || strings.ContainsAny(u, "/: ") {
		p.Boundary(b, "universeDomain", "want a domain such as googleapis.com or s3nsapis.fr, got %q", u)
	}
	if u != DefaultUniverse && b.Identity["credentialsFile"] == "" {
		p.Boundary(b, "identity", "a sovereign universe needs identity.credentialsFile (a service account key or workload identity federation configuration of that universe): detected credentials may be the runner's commercial ones")
	}
	if u != DefaultUniverse && len(b.Regions) == 0 {
		p.Boundary(b, "regions", "a sovereign universe must list its regions, so that targets can be checked against them")
	}
	for i, r := range b.Regions {
		if !regionRE.MatchString(r) {
			p.Boundary(b, "regions", "regions[%d] %q is not a Google Cloud region name", i, r)
		}
	}
	for k := range b.Endpoints {
		if !slices.Contains(endpointKeys, k) {
			p.Boundary(b, "endpoints."+k, "unknown Google Cloud endpoint (known: %s)", strings.Join(endpointKeys, ", "))
		}
	}
}

func (Cloud) EndpointURL(_, raw string) string { return raw }

func (Cloud) RegionProblem(_ *config.Boundary, region string) string {
	if !regionRE.MatchString(region) {
		return fmt.Sprintf("%s is not a Google Cloud region name (us-central1, europe-west4)", region)
	}
	return ""
}

func (Cloud) Crosses(b *config.Boundary, host string) string {
	u := Universe(b)
	if u != DefaultUniverse && clouds.HostIn(host, DefaultUniverse) {
		return fmt.Sprintf("%s is in the commercial Google Cloud universe, outside this boundary (universe %s)", host, u)
	}
	if u != DefaultUniverse && !clouds.HostIn(host, u) {
		return fmt.Sprintf("%s is not in this boundary's universe %s", host, u)
	}
	return ""
}

func (Cloud) Sovereign(b *config.Boundary) bool { return Universe(b) != DefaultUniverse }

func (Cloud) Agree(b *config.Boundary) map[string]string {
	return map[string]string{"universe_domain": Universe(b)}
}

func (Cloud) Backends() []string { return []string{"gcs"} }

func (c Cloud) CheckBackend(t *config.Target, b *config.Boundary, p *clouds.Problems) {
	ep, _ := t.Backend.Config["storage_custom_endpoint"].(string)
	if u := Universe(b); u != DefaultUniverse && ep == "" {
		p.Target(t, "backend.config.storage_custom_endpoint", "is required in universe %s: without it the gcs backend reaches storage.googleapis.com, the commercial universe", u)
	}
	clouds.CheckHost(p, c, t, b, "storage_custom_endpoint", ep)
}

func (Cloud) Env(e *clouds.EnvBuilder, t *config.Target) error {
	e.Set("GOOGLE_CLOUD_UNIVERSE_DOMAIN", Universe(e.B))
	e.Set("GOOGLE_APPLICATION_CREDENTIALS", e.B.Identity["credentialsFile"])
	e.Set("GOOGLE_PROJECT", e.B.Identity["project"])
	e.Set("GOOGLE_IMPERSONATE_SERVICE_ACCOUNT", e.B.Identity["impersonateServiceAccount"])
	if t != nil {
		e.Set("GOOGLE_REGION", t.Region)
	}
	return nil
}

var credTypes = map[string]credentials.CredType{
	"service_account": credentials.ServiceAccount, "authorized_user": credentials.AuthorizedUser,
	"external_account": credentials.ExternalAccount, "impersonated_service_account": credentials.ImpersonatedServiceAccount,
	"external_account_authorized_user": credentials.ExternalAccountAuthorizedUser,
}

func credentialsOf(m *clouds.Manager, b *config.Boundary) (*auth.Credentials, map[string]any, error) {
	opts := &credentials.DetectOptions{Scopes: []string{"https://www.googleapis.com/auth/cloud-platform"}, Client: m.HTTPClient()}
	path := b.Identity["credentialsFile"]
	if path == "" {
		if Universe(b) != DefaultUniverse {
			return nil, nil, fmt.Errorf("boundary %s: a sovereign universe needs identity.credentialsFile (detected credentials may be the runner's commercial ones)", b.Name)
		}
		c, err := credentials.DetectDefault(opts)
		return c, nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("boundary %s: identity.credentialsFile: %w", b.Name, err)
	}
	var file map[string]any
	if err := json.Unmarshal(data, &file); err != nil {
		return nil, nil, fmt.Errorf("boundary %s: identity.credentialsFile %s: not JSON: %w", b.Name, path, err)
	}
	typ, _ := file["type"].(string)
	ct, ok := credTypes[typ]
	if !ok {
		return nil, nil, fmt.Errorf("boundary %s: identity.credentialsFile %s: unsupported credential type %q", b.Name, path, typ)
	}
	c, err := credentials.NewCredentialsFromFile(ct, path, opts)
	return c, file, err
}

// Preflight gets a token from a credential of the boundary's universe and checks the universe.
func (Cloud) Preflight(ctx context.Context, m *clouds.Manager, b *config.Boundary, _ string) (clouds.Identity, error) {
	creds, file, err := credentialsOf(m, b)
	if err != nil {
		return clouds.Identity{}, err
	}
	ud, err := creds.UniverseDomain(ctx)
	if err != nil {
		return clouds.Identity{}, fmt.Errorf("the credential's universe: %w", statusOf(err))
	}
	if want := Universe(b); ud != want {
		return clouds.Identity{}, fmt.Errorf("the credential belongs to universe %s, but boundary %s is universe %s", ud, b.Name, want)
	}
	if _, err := creds.Token(ctx); err != nil {
		return clouds.Identity{}, fmt.Errorf("token in universe %s: %w", ud, statusOf(err))
	}
	project, _ := creds.ProjectID(ctx)
	if p := b.Identity["project"]; p != "" {
		project = p
	}
	principal := "detected credentials"
	if file != nil {
		email, _ := file["client_email"].(string)
		imp, _ := file["service_account_impersonation_url"].(string)
		aud, _ := file["audience"].(string)
		typ, _ := file["type"].(string)
		principal = cmp.Or(b.Identity["impersonateServiceAccount"], email, imp, aud, typ)
	}
	return clouds.Identity{Scope: ud, Principal: principal, Account: project}, nil
}

// statusOf carries the HTTP status of an authentication error, so that throttling is retried.
func statusOf(err error) error {
	var ge *auth.Error
	if errors.As(err, &ge) && ge.Response != nil {
		return &clouds.StatusError{Code: ge.Response.StatusCode, Err: err}
	}
	return err
}

// Credentials is a Google Cloud boundary's credential, for rollout's Google clients (Cloud
// Monitoring gates).
func Credentials(m *clouds.Manager, boundary string) (*auth.Credentials, *config.Boundary, error) {
	b, err := m.Boundary(boundary)
	if err != nil {
		return nil, nil, err
	}
	if b.Cloud != Name {
		return nil, nil, fmt.Errorf("boundary %s is %s, not %s", b.Name, b.Cloud, Name)
	}
	c, _, err := credentialsOf(m, b)
	return c, b, err
}
