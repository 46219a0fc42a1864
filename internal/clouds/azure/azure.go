// Package azure is the Azure cloud family: the public cloud, Azure Government, Azure China and
// custom (national or disconnected) clouds with their own endpoints; the environment the azurerm
// provider and backend see; preflight with a token from the cloud's own Microsoft Entra authority.
package azure

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/config"
)

// Name is what a boundary's cloud key says.
const Name = "azure"

// Cloud is the Azure family.
type Cloud struct{}

func (Cloud) Name() string { return Name }

func (Cloud) Keys() config.CloudKeys {
	return config.CloudKeys{Settings: map[string]string{"environment": ""},
		Identity: []string{"tenantId", "clientId", "subscriptionId", "federatedTokenFile", "oidcRequestUrlEnv", "oidcRequestTokenEnv",
			"managedIdentity", "clientSecretEnv", "clientCertificateFile", "clientCertificatePasswordEnv", "storageAccessKeyEnv"}}
}

func (Cloud) Traits() clouds.Traits {
	return clouds.Traits{Regional: true, Proven: true, RemoteState: true}
}

// Environment is boundary b's Azure environment: public, usgovernment, china or custom.
func Environment(b *config.Boundary) string { return b.Settings["environment"] }

var endpointKeys = []string{"authorityHost", "resourceManager", "audience", "metadataHost"}

func (Cloud) CheckBoundary(b *config.Boundary, p *clouds.Problems) {
	switch env := Environment(b); env {
	case "public", "usgovernment", "china":
		if len(b.Endpoints) > 0 {
			p.Boundary(b, "endpoints", "endpoints are for environment: custom; %s's are known", env)
		}
	case "custom":
		for _, k := range endpointKeys[:3] {
			if b.Endpoints[k] == "" {
				p.Boundary(b, "endpoints", "a custom Azure cloud needs endpoints.%s (and authorityHost, resourceManager, audience)", k)
			}
		}
		for k := range b.Endpoints {
			if !slices.Contains(endpointKeys, k) {
				p.Boundary(b, "endpoints."+k, "unknown Azure endpoint (known: %s)", strings.Join(endpointKeys, ", "))
			}
		}
		if h := b.Endpoints["metadataHost"]; strings.Contains(h, "/") {
			p.Boundary(b, "endpoints.metadataHost", "want a host name such as management.sovcloud.example, got %q", h)
		}
		if len(b.Regions) == 0 {
			p.Boundary(b, "regions", "a custom Azure cloud must list its regions, so that targets can be checked against them")
		}
	case "":
		p.Boundary(b, "environment", "is required for an Azure boundary: public, usgovernment, china or custom")
	default:
		p.Boundary(b, "environment", "unknown Azure environment %q: public, usgovernment, china or custom", env)
	}
	checkIdentity(b, p)
}

func checkIdentity(b *config.Boundary, p *clouds.Problems) {
	id := b.Identity
	var kinds []string
	for _, k := range []string{"federatedTokenFile", "oidcRequestUrlEnv", "managedIdentity", "clientSecretEnv", "clientCertificateFile"} {
		if id[k] != "" {
			kinds = append(kinds, k)
		}
	}
	switch {
	case len(kinds) == 0:
		p.Boundary(b, "identity", "an Azure boundary needs one credential: federatedTokenFile, oidcRequestUrlEnv, managedIdentity, clientSecretEnv or clientCertificateFile")
		return
	case len(kinds) > 1:
		p.Boundary(b, "identity."+kinds[1], "give one credential per boundary, not %s", strings.Join(kinds, " and "))
	}
	if id["managedIdentity"] != "" && id["managedIdentity"] != "true" && id["managedIdentity"] != "false" {
		p.Boundary(b, "identity.managedIdentity", "must be true or false")
	}
	if id["tenantId"] == "" {
		p.Boundary(b, "identity", "identity.tenantId is required: preflight checks the token was issued by this tenant")
	}
	if id["clientId"] == "" && id["managedIdentity"] != "true" {
		p.Boundary(b, "identity", "identity.clientId is required")
	}
	if id["oidcRequestUrlEnv"] != "" && id["oidcRequestTokenEnv"] == "" {
		p.Boundary(b, "identity.oidcRequestUrlEnv", "needs identity.oidcRequestTokenEnv too (on GitHub Actions: ACTIONS_ID_TOKEN_REQUEST_TOKEN)")
	}
}

// EndpointURL takes metadataHost as the host name (and port) ARM_METADATA_HOSTNAME and the
// backend's metadata_host take (CheckBoundary refuses a URL there).
func (Cloud) EndpointURL(key, raw string) string {
	if key == "metadataHost" {
		if strings.Contains(raw, "/") {
			return ""
		}
		return "https://" + raw
	}
	return raw
}

func (Cloud) RegionProblem(b *config.Boundary, region string) string {
	if !regionRE.MatchString(region) {
		return fmt.Sprintf("%s is not an Azure region name (lower case, no spaces: eastus, usgovvirginia, chinanorth3)", region)
	}
	owner := environmentOfRegion(region)
	switch c := environmentByName(Environment(b)); {
	case c == nil: // custom: checked against its listed regions
	case len(c.Regions) > 0 && !slices.Contains(c.Regions, region):
		where := "Azure public"
		if owner != nil {
			where = "Azure " + owner.Name
		}
		return fmt.Sprintf("%s is a region of %s, but boundary %s is Azure %s (its regions: %s)", region, where, b.Name, c.Name, strings.Join(c.Regions, ", "))
	case len(c.Regions) == 0 && owner != nil:
		return fmt.Sprintf("%s is a region of Azure %s, but boundary %s is Azure %s", region, owner.Name, b.Name, c.Name)
	}
	return ""
}

func (Cloud) Crosses(b *config.Boundary, host string) string {
	for _, c := range environments {
		if c.Name == Environment(b) {
			continue
		}
		for _, d := range c.Domains {
			if clouds.HostIn(host, d) {
				return fmt.Sprintf("%s is an endpoint of Azure %s, outside this boundary (environment %s)", host, c.Name, Environment(b))
			}
		}
	}
	return ""
}

func (Cloud) Sovereign(b *config.Boundary) bool { return Environment(b) != "public" }

func (Cloud) Agree(b *config.Boundary) map[string]string {
	return map[string]string{"azure_environment": Environment(b)}
}

func (Cloud) Backends() []string { return []string{"azurerm"} }

func (c Cloud) CheckBackend(t *config.Target, b *config.Boundary, p *clouds.Problems) {
	str := func(k string) string { s, _ := t.Backend.Config[k].(string); return s }
	if env := str("environment"); env != "" && env != Environment(b) {
		p.Target(t, "backend.config.environment", "the state account is in Azure %s, but boundary %s is Azure %s", env, b.Name, Environment(b))
	}
	if mh := str("metadata_host"); mh != "" {
		if Environment(b) != "custom" {
			p.Target(t, "backend.config.metadata_host", "is for custom Azure clouds; boundary %s is Azure %s", b.Name, Environment(b))
		} else if want := metadataHost(b); !strings.EqualFold(mh, want) {
			p.Target(t, "backend.config.metadata_host", "is %s, but boundary %s's metadata host is %s", mh, b.Name, want)
		}
	}
	clouds.CheckHost(p, c, t, b, "endpoint", str("endpoint"))
}

// metadataHost is what the azurerm provider and backend are given as ARM_METADATA_HOSTNAME for a
// custom cloud: endpoints.metadataHost, or the Resource Manager endpoint's host.
func metadataHost(b *config.Boundary) string {
	if h := b.Endpoints["metadataHost"]; h != "" {
		return h
	}
	if u, err := url.Parse(b.Endpoints["resourceManager"]); err == nil {
		return u.Host
	}
	return ""
}

func (Cloud) Env(e *clouds.EnvBuilder, _ *config.Target) error {
	id := e.B.Identity
	if Environment(e.B) == "custom" {
		e.Set("ARM_METADATA_HOSTNAME", metadataHost(e.B))
	} else {
		e.Set("ARM_ENVIRONMENT", Environment(e.B))
	}
	e.Set("ARM_TENANT_ID", id["tenantId"])
	e.Set("ARM_CLIENT_ID", id["clientId"])
	e.Set("ARM_SUBSCRIPTION_ID", id["subscriptionId"])
	// The azurerm backend's shared key, for a state account that uses one (Entra is better:
	// use_azuread_auth with the boundary's credential).
	if err := e.Secret("storageAccessKeyEnv", "ARM_ACCESS_KEY"); err != nil {
		return err
	}
	switch {
	case id["federatedTokenFile"] != "":
		e.Set("ARM_USE_OIDC", "true")
		e.Set("ARM_OIDC_TOKEN_FILE_PATH", id["federatedTokenFile"])
	case id["oidcRequestUrlEnv"] != "":
		e.Set("ARM_USE_OIDC", "true")
		v, ok := e.Lookup(id["oidcRequestUrlEnv"])
		if !ok {
			return fmt.Errorf("boundary %s: identity.oidcRequestUrlEnv names %s, which is not set in rollout's environment", e.B.Name, id["oidcRequestUrlEnv"])
		}
		e.Set("ARM_OIDC_REQUEST_URL", v)
		return e.Secret("oidcRequestTokenEnv", "ARM_OIDC_REQUEST_TOKEN")
	case id["managedIdentity"] == "true":
		e.Set("ARM_USE_MSI", "true")
	case id["clientSecretEnv"] != "":
		return e.Secret("clientSecretEnv", "ARM_CLIENT_SECRET")
	case id["clientCertificateFile"] != "":
		e.Set("ARM_CLIENT_CERTIFICATE_PATH", id["clientCertificateFile"])
		return e.Secret("clientCertificatePasswordEnv", "ARM_CLIENT_CERTIFICATE_PASSWORD")
	}
	return nil
}
