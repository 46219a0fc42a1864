package clouds

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"cloud.google.com/go/auth"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/rollout-dev/rollout/internal/config"
)

// AzureCloud is the azcore cloud configuration of an Azure boundary: its own authority host,
// Resource Manager endpoint and audience. There is no fallback to the public cloud.
func AzureCloud(b *config.Boundary) (cloud.Configuration, error) {
	var authority, endpoint, audience string
	if c := azureCloudByName(b.Environment); c != nil {
		authority, endpoint, audience = c.AuthorityHost, c.ResourceManager, c.Audience
	} else if b.Environment == "custom" {
		authority, endpoint, audience = b.Endpoints["authorityHost"], b.Endpoints["resourceManager"], b.Endpoints["audience"]
		if authority == "" || endpoint == "" || audience == "" {
			return cloud.Configuration{}, fmt.Errorf("boundary %s: a custom Azure cloud needs endpoints authorityHost, resourceManager and audience", b.Name)
		}
	} else {
		return cloud.Configuration{}, fmt.Errorf("boundary %s: unknown Azure environment %q", b.Name, b.Environment)
	}
	return cloud.Configuration{ActiveDirectoryAuthorityHost: authority,
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: endpoint, Audience: audience}}}, nil
}

func (m *Manager) azureCredential(b *config.Boundary) (azcore.TokenCredential, cloud.Configuration, error) {
	cc, err := AzureCloud(b)
	if err != nil {
		return nil, cc, err
	}
	// One retry policy for every cloud (Preflight's); the SDK's own is off.
	opts := azcore.ClientOptions{Cloud: cc, Retry: policy.RetryOptions{MaxRetries: -1}, Transport: m.client()}
	// Instance discovery asks the public cloud about the authority: never from a custom cloud.
	noDiscovery := b.Environment == "custom"
	id := b.Identity
	lookup := m.lookup()
	switch {
	case id["federatedTokenFile"] != "":
		c, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: opts,
			ClientID: id["clientId"], TenantID: id["tenantId"], TokenFilePath: id["federatedTokenFile"], DisableInstanceDiscovery: noDiscovery})
		return c, cc, err
	case id["oidcRequestUrlEnv"] != "":
		reqURL, _ := lookup(id["oidcRequestUrlEnv"])
		reqToken, _ := lookup(id["oidcRequestTokenEnv"])
		if reqURL == "" || reqToken == "" {
			return nil, cc, fmt.Errorf("boundary %s: %s and %s must be set (on GitHub Actions, grant the job id-token: write)", b.Name, id["oidcRequestUrlEnv"], id["oidcRequestTokenEnv"])
		}
		assertion := func(ctx context.Context) (string, error) { return requestOIDCToken(ctx, m.client(), reqURL, reqToken) }
		c, err := azidentity.NewClientAssertionCredential(id["tenantId"], id["clientId"], assertion,
			&azidentity.ClientAssertionCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: noDiscovery})
		return c, cc, err
	case id["managedIdentity"] == "true":
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if id["clientId"] != "" {
			o.ID = azidentity.ClientID(id["clientId"])
		}
		c, err := azidentity.NewManagedIdentityCredential(o)
		return c, cc, err
	case id["clientSecretEnv"] != "":
		secret, _ := lookup(id["clientSecretEnv"])
		if secret == "" {
			return nil, cc, fmt.Errorf("boundary %s: identity.clientSecretEnv names %s, which is not set in rollout's environment", b.Name, id["clientSecretEnv"])
		}
		c, err := azidentity.NewClientSecretCredential(id["tenantId"], id["clientId"], secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: noDiscovery})
		return c, cc, err
	case id["clientCertificateFile"] != "":
		data, err := os.ReadFile(id["clientCertificateFile"])
		if err != nil {
			return nil, cc, fmt.Errorf("boundary %s: identity.clientCertificateFile: %w", b.Name, err)
		}
		var password []byte
		if n := id["clientCertificatePasswordEnv"]; n != "" {
			p, _ := lookup(n)
			password = []byte(p)
		}
		certs, key, err := azidentity.ParseCertificates(data, password)
		if err != nil {
			return nil, cc, fmt.Errorf("boundary %s: identity.clientCertificateFile: %w", b.Name, err)
		}
		c, err := azidentity.NewClientCertificateCredential(id["tenantId"], id["clientId"], certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: noDiscovery})
		return c, cc, err
	}
	return nil, cc, fmt.Errorf("boundary %s: no Azure credential configured under identity", b.Name)
}

// requestOIDCToken asks a CI system's OIDC endpoint (GitHub Actions' ACTIONS_ID_TOKEN_REQUEST_URL)
// for a token with Microsoft Entra's federation audience.
func requestOIDCToken(ctx context.Context, c *http.Client, reqURL, reqToken string) (string, error) {
	u, err := url.Parse(reqURL)
	if err != nil {
		return "", fmt.Errorf("OIDC request URL: %w", err)
	}
	q := u.Query()
	q.Set("audience", "api://AzureADTokenExchange")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+reqToken)
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("OIDC token request: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", &statusError{code: resp.StatusCode, msg: "OIDC token request: " + resp.Status}
	}
	var v struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Value == "" {
		return "", errors.New("OIDC token request: no token in the answer")
	}
	return v.Value, nil
}

type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string       { return e.msg }
func (e *statusError) HTTPStatusCode() int { return e.code }

// statusOf finds the HTTP status of an SDK's authentication error.
func statusOf(err error) int {
	var az *azidentity.AuthenticationFailedError
	if errors.As(err, &az) && az.RawResponse != nil {
		return az.RawResponse.StatusCode
	}
	var ge *auth.Error
	if errors.As(err, &ge) && ge.Response != nil {
		return ge.Response.StatusCode
	}
	return 0
}

func (m *Manager) azurePreflight(ctx context.Context, b *config.Boundary) (Identity, error) {
	cred, cc, err := m.azureCredential(b)
	if err != nil {
		return Identity{}, err
	}
	audience := cc.Services[cloud.ResourceManager].Audience
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{strings.TrimSuffix(audience, "/") + "/.default"}})
	if err != nil {
		return Identity{}, fmt.Errorf("token for %s from %s: %w", audience, cc.ActiveDirectoryAuthorityHost, err)
	}
	claims, err := jwtClaims(tok.Token)
	if err != nil {
		return Identity{}, err
	}
	str := func(k string) string { s, _ := claims[k].(string); return s }
	tenant := str("tid")
	if want := b.Identity["tenantId"]; want != "" && !strings.EqualFold(tenant, want) {
		return Identity{}, fmt.Errorf("the token was issued by tenant %q, but boundary %s is configured for tenant %s", tenant, b.Name, want)
	}
	if aud := strings.TrimSuffix(str("aud"), "/"); aud != "" && aud != strings.TrimSuffix(audience, "/") {
		return Identity{}, fmt.Errorf("the token is for audience %q, not this cloud's Resource Manager (%s)", aud, audience)
	}
	principal := cmp.Or(str("appid"), str("azp"), str("upn"))
	if oid := str("oid"); oid != "" {
		principal += " (object " + oid + ")"
	}
	return Identity{Scope: b.Environment, Principal: principal, Account: tenant}, nil
}

// AzureCredential is a boundary's credential and cloud configuration, for other Azure clients of
// rollout (Azure Monitor gates): tokens from that cloud's own authority, with the manager's HTTP
// client and no SDK retries (callers retry).
func (m *Manager) AzureCredential(boundary string) (azcore.TokenCredential, cloud.Configuration, *config.Boundary, error) {
	b, err := m.boundary(boundary)
	if err != nil {
		return nil, cloud.Configuration{}, nil, err
	}
	if b.Cloud != "azure" {
		return nil, cloud.Configuration{}, nil, fmt.Errorf("boundary %s is %s, not azure", b.Name, b.Cloud)
	}
	// One credential per boundary: it caches its tokens, so a ring of many targets asks the
	// authority once, not once per target.
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.azure[b.Name]; ok {
		return c.cred, c.cloud, b, nil
	}
	cred, cc, err := m.azureCredential(b)
	if err != nil {
		return nil, cc, b, err
	}
	if m.azure == nil {
		m.azure = map[string]azureCred{}
	}
	m.azure[b.Name] = azureCred{cred, cc}
	return cred, cc, b, nil
}

type azureCred struct {
	cred  azcore.TokenCredential
	cloud cloud.Configuration
}

// HTTPClient is the client identity and monitoring endpoints are reached with.
func (m *Manager) HTTPClient() *http.Client { return m.client() }
