package azure

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/config"
)

// CloudConfig is the azcore cloud configuration of an Azure boundary: its own authority host,
// Resource Manager endpoint and audience. There is no fallback to the public cloud.
func CloudConfig(b *config.Boundary) (cloud.Configuration, error) {
	var authority, endpoint, audience string
	if c := environmentByName(Environment(b)); c != nil {
		authority, endpoint, audience = c.AuthorityHost, c.ResourceManager, c.Audience
	} else if Environment(b) == "custom" {
		authority, endpoint, audience = b.Endpoints["authorityHost"], b.Endpoints["resourceManager"], b.Endpoints["audience"]
		if authority == "" || endpoint == "" || audience == "" {
			return cloud.Configuration{}, fmt.Errorf("boundary %s: a custom Azure cloud needs endpoints authorityHost, resourceManager and audience", b.Name)
		}
	} else {
		return cloud.Configuration{}, fmt.Errorf("boundary %s: unknown Azure environment %q", b.Name, Environment(b))
	}
	return cloud.Configuration{ActiveDirectoryAuthorityHost: authority,
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: endpoint, Audience: audience}}}, nil
}

func credential(m *clouds.Manager, b *config.Boundary) (azcore.TokenCredential, cloud.Configuration, error) {
	cc, err := CloudConfig(b)
	if err != nil {
		return nil, cc, err
	}
	// One retry policy for every cloud (Preflight's); the SDK's own is off.
	opts := azcore.ClientOptions{Cloud: cc, Retry: policy.RetryOptions{MaxRetries: -1}, Transport: m.HTTPClient()}
	// Instance discovery asks the public cloud about the authority: never from a custom cloud.
	noDiscovery := Environment(b) == "custom"
	id := b.Identity
	switch {
	case id["federatedTokenFile"] != "":
		c, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: opts,
			ClientID: id["clientId"], TenantID: id["tenantId"], TokenFilePath: id["federatedTokenFile"], DisableInstanceDiscovery: noDiscovery})
		return c, cc, err
	case id["oidcRequestUrlEnv"] != "":
		reqURL, _ := m.LookupEnv(id["oidcRequestUrlEnv"])
		reqToken, _ := m.LookupEnv(id["oidcRequestTokenEnv"])
		if reqURL == "" || reqToken == "" {
			return nil, cc, fmt.Errorf("boundary %s: %s and %s must be set (on GitHub Actions, grant the job id-token: write)", b.Name, id["oidcRequestUrlEnv"], id["oidcRequestTokenEnv"])
		}
		assertion := func(ctx context.Context) (string, error) {
			return requestOIDCToken(ctx, m.HTTPClient(), reqURL, reqToken)
		}
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
		secret, _ := m.LookupEnv(id["clientSecretEnv"])
		if secret == "" {
			return nil, cc, fmt.Errorf("boundary %s: identity.clientSecretEnv names %s, which is not set in rollout's environment", b.Name, id["clientSecretEnv"])
		}
		c, err := azidentity.NewClientSecretCredential(id["tenantId"], id["clientId"], secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: noDiscovery})
		return c, cc, err
	case id["clientCertificateFile"] != "":
		return certificateCredential(m, b, cc, opts, noDiscovery)
	}
	return nil, cc, fmt.Errorf("boundary %s: no Azure credential configured under identity", b.Name)
}

func certificateCredential(m *clouds.Manager, b *config.Boundary, cc cloud.Configuration, opts azcore.ClientOptions, noDiscovery bool) (azcore.TokenCredential, cloud.Configuration, error) {
	id := b.Identity
	data, err := os.ReadFile(id["clientCertificateFile"])
	if err != nil {
		return nil, cc, fmt.Errorf("boundary %s: identity.clientCertificateFile: %w", b.Name, err)
	}
	var password []byte
	if n := id["clientCertificatePasswordEnv"]; n != "" {
		p, _ := m.LookupEnv(n)
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
		return "", &clouds.StatusError{Code: resp.StatusCode, Err: errors.New("OIDC token request: " + resp.Status)}
	}
	var v struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Value == "" {
		return "", errors.New("OIDC token request: no token in the answer")
	}
	return v.Value, nil
}

// Preflight asks the cloud's own authority for a token for its Resource Manager audience and
// checks the tenant that issued it.
func (Cloud) Preflight(ctx context.Context, m *clouds.Manager, b *config.Boundary, _ string) (clouds.Identity, error) {
	cred, cc, err := credential(m, b)
	if err != nil {
		return clouds.Identity{}, err
	}
	audience := cc.Services[cloud.ResourceManager].Audience
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{strings.TrimSuffix(audience, "/") + "/.default"}})
	if err != nil {
		var af *azidentity.AuthenticationFailedError
		if errors.As(err, &af) && af.RawResponse != nil {
			err = &clouds.StatusError{Code: af.RawResponse.StatusCode, Err: err}
		}
		return clouds.Identity{}, fmt.Errorf("token for %s from %s: %w", audience, cc.ActiveDirectoryAuthorityHost, err)
	}
	claims, err := jwtClaims(tok.Token)
	if err != nil {
		return clouds.Identity{}, err
	}
	str := func(k string) string { s, _ := claims[k].(string); return s }
	tenant := str("tid")
	if want := b.Identity["tenantId"]; want != "" && !strings.EqualFold(tenant, want) {
		return clouds.Identity{}, fmt.Errorf("the token was issued by tenant %q, but boundary %s is configured for tenant %s", tenant, b.Name, want)
	}
	if aud := strings.TrimSuffix(str("aud"), "/"); aud != "" && aud != strings.TrimSuffix(audience, "/") {
		return clouds.Identity{}, fmt.Errorf("the token is for audience %q, not this cloud's Resource Manager (%s)", aud, audience)
	}
	principal := cmp.Or(str("appid"), str("azp"), str("upn"))
	if oid := str("oid"); oid != "" {
		principal += " (object " + oid + ")"
	}
	return clouds.Identity{Scope: Environment(b), Principal: principal, Account: tenant}, nil
}

// jwtClaims decodes a JWT's payload without verifying it: preflight reads who the token is for;
// the issuer verified it.
func jwtClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("the token is not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("the token's claims: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		return nil, fmt.Errorf("the token's claims: %w", err)
	}
	return claims, nil
}

// Credential is an Azure boundary's credential and cloud configuration, for rollout's Azure
// clients (Azure Monitor gates): tokens from that cloud's own authority, with the manager's HTTP
// client and no SDK retries (callers retry). One per boundary: it caches its tokens, so a ring of
// many targets asks the authority once, not once per target.
func Credential(m *clouds.Manager, boundary string) (azcore.TokenCredential, cloud.Configuration, *config.Boundary, error) {
	b, err := m.Boundary(boundary)
	if err != nil {
		return nil, cloud.Configuration{}, nil, err
	}
	if b.Cloud != Name {
		return nil, cloud.Configuration{}, nil, fmt.Errorf("boundary %s is %s, not %s", b.Name, b.Cloud, Name)
	}
	v, err := m.Shared(Name+"\x00"+b.Name, func() (any, error) {
		cred, cc, err := credential(m, b)
		return sharedCred{cred, cc}, err
	})
	if err != nil {
		cc, _ := CloudConfig(b)
		return nil, cc, b, err
	}
	c := v.(sharedCred)
	return c.cred, c.cloud, b, nil
}

type sharedCred struct {
	cred  azcore.TokenCredential
	cloud cloud.Configuration
}
