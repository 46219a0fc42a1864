package clouds

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"

	"github.com/rollout-dev/rollout/internal/config"
)

var gcpCredTypes = map[string]credentials.CredType{
	"service_account": credentials.ServiceAccount, "authorized_user": credentials.AuthorizedUser,
	"external_account": credentials.ExternalAccount, "impersonated_service_account": credentials.ImpersonatedServiceAccount,
	"external_account_authorized_user": credentials.ExternalAccountAuthorizedUser,
}

func (m *Manager) gcpCredentials(b *config.Boundary) (*auth.Credentials, map[string]any, error) {
	opts := &credentials.DetectOptions{Scopes: []string{"https://www.googleapis.com/auth/cloud-platform"}, Client: m.client()}
	path := b.Identity["credentialsFile"]
	if path == "" {
		if universe(b) != DefaultUniverse {
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
	ct, ok := gcpCredTypes[typ]
	if !ok {
		return nil, nil, fmt.Errorf("boundary %s: identity.credentialsFile %s: unsupported credential type %q", b.Name, path, typ)
	}
	c, err := credentials.NewCredentialsFromFile(ct, path, opts)
	return c, file, err
}

func (m *Manager) gcpPreflight(ctx context.Context, b *config.Boundary) (Identity, error) {
	creds, file, err := m.gcpCredentials(b)
	if err != nil {
		return Identity{}, err
	}
	ud, err := creds.UniverseDomain(ctx)
	if err != nil {
		return Identity{}, fmt.Errorf("the credential's universe: %w", err)
	}
	if want := universe(b); ud != want {
		return Identity{}, fmt.Errorf("the credential belongs to universe %s, but boundary %s is universe %s", ud, b.Name, want)
	}
	if _, err := creds.Token(ctx); err != nil {
		return Identity{}, fmt.Errorf("token in universe %s: %w", ud, err)
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
		principal = cmp.Or(b.Identity["impersonateServiceAccount"], email, imp, aud, file["type"].(string))
	}
	return Identity{Scope: ud, Principal: principal, Account: project}, nil
}

// GoogleCredentials is a boundary's credential, for other Google Cloud clients of rollout (Cloud
// Monitoring gates), with its universe domain.
func (m *Manager) GoogleCredentials(boundary string) (*auth.Credentials, *config.Boundary, error) {
	b, err := m.boundary(boundary)
	if err != nil {
		return nil, nil, err
	}
	if b.Cloud != "gcp" {
		return nil, nil, fmt.Errorf("boundary %s is %s, not gcp", b.Name, b.Cloud)
	}
	c, _, err := m.gcpCredentials(b)
	return c, b, err
}
