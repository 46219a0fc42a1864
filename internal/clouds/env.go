package clouds

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/rollout-dev/rollout/internal/config"
)

// baseEnv is what every Terraform run may see of rollout's own environment: the process basics,
// TLS trust and proxies. Nothing else passes unless named in passEnv; no cloud credential ever
// does (config refuses those names in passEnv).
var baseEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
	"CHECKPOINT_DISABLE", "TF_CLI_CONFIG_FILE"}

// Lookup reads a variable of rollout's own environment; os.LookupEnv in production.
type Lookup func(string) (string, bool)

// Env is the environment of one Terraform run, with the values in it that are secrets.
type Env struct {
	Vars    map[string]string
	Secrets []string
}

// List is the environment as NAME=value lines, sorted.
func (e Env) List() []string {
	out := make([]string, 0, len(e.Vars))
	for k, v := range e.Vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// BaseEnv is the environment of Terraform work that belongs to no boundary (resolving a
// release's providers): the base allow-list (process basics, TLS trust, proxies, the CLI
// configuration and registry tokens TF_TOKEN_*) and defaults.passEnv.
func BaseEnv(c *config.Config, lookup Lookup) map[string]string {
	out := map[string]string{}
	pass := func(name string) {
		if v, ok := lookup(name); ok {
			out[name] = v
		}
	}
	for _, k := range baseEnv {
		pass(k)
	}
	for _, kv := range environ(lookup) {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "LC_") || strings.HasPrefix(k, "TF_TOKEN_") {
			pass(k)
		}
	}
	for _, k := range c.Defaults.PassEnv {
		pass(k)
	}
	return out
}

// environ lists the process environment when lookup is the process's own.
var environ = func(Lookup) []string { return os.Environ() }

// staticEnv is a boundary's variables for a target that need no network call: everything but the
// temporary credentials of an AWS role chain. A named secret variable that is not set is an error.
func staticEnv(c *config.Config, b *config.Boundary, t *config.Target, lookup Lookup) (Env, error) {
	e := &envBuilder{Env: Env{Vars: BaseEnv(c, lookup)}, b: b, id: b.Identity, lookup: lookup}
	for _, k := range b.PassEnv {
		if v, ok := lookup(k); ok {
			e.Vars[k] = v
		}
	}
	var err error
	switch b.Cloud {
	case "azure":
		err = e.azure()
	case "aws":
		err = e.aws(t)
	case "gcp":
		e.gcp(t)
	}
	return e.Env, err
}

// envBuilder fills one boundary's variables from its identity section.
type envBuilder struct {
	Env
	b      *config.Boundary
	id     map[string]string
	lookup Lookup
}

// set sets k to v when v is not empty.
func (e *envBuilder) set(k, v string) {
	if v != "" {
		e.Vars[k] = v
	}
}

// secret sets target to the value of the variable that identity key names, and keeps it as a
// secret to redact; a named variable that is not set is an error.
func (e *envBuilder) secret(key, target string) error {
	name := e.id[key]
	if name == "" {
		return nil
	}
	v, ok := e.lookup(name)
	if !ok || v == "" {
		return fmt.Errorf("boundary %s: identity.%s names %s, which is not set in rollout's environment", e.b.Name, key, name)
	}
	e.Vars[target] = v
	e.Secrets = append(e.Secrets, v)
	return nil
}

func (e *envBuilder) azure() error {
	id := e.id
	if e.b.Environment == "custom" {
		e.set("ARM_METADATA_HOSTNAME", metadataHost(e.b))
	} else {
		e.set("ARM_ENVIRONMENT", e.b.Environment)
	}
	e.set("ARM_TENANT_ID", id["tenantId"])
	e.set("ARM_CLIENT_ID", id["clientId"])
	e.set("ARM_SUBSCRIPTION_ID", id["subscriptionId"])
	// The azurerm backend's shared key, for a state account that uses one (Entra is better:
	// use_azuread_auth with the boundary's credential).
	if err := e.secret("storageAccessKeyEnv", "ARM_ACCESS_KEY"); err != nil {
		return err
	}
	switch {
	case id["federatedTokenFile"] != "":
		e.set("ARM_USE_OIDC", "true")
		e.set("ARM_OIDC_TOKEN_FILE_PATH", id["federatedTokenFile"])
	case id["oidcRequestUrlEnv"] != "":
		e.set("ARM_USE_OIDC", "true")
		v, ok := e.lookup(id["oidcRequestUrlEnv"])
		if !ok {
			return fmt.Errorf("boundary %s: identity.oidcRequestUrlEnv names %s, which is not set in rollout's environment", e.b.Name, id["oidcRequestUrlEnv"])
		}
		e.set("ARM_OIDC_REQUEST_URL", v)
		return e.secret("oidcRequestTokenEnv", "ARM_OIDC_REQUEST_TOKEN")
	case id["managedIdentity"] == "true":
		e.set("ARM_USE_MSI", "true")
	case id["clientSecretEnv"] != "":
		return e.secret("clientSecretEnv", "ARM_CLIENT_SECRET")
	case id["clientCertificateFile"] != "":
		e.set("ARM_CLIENT_CERTIFICATE_PATH", id["clientCertificateFile"])
		return e.secret("clientCertificatePasswordEnv", "ARM_CLIENT_CERTIFICATE_PASSWORD")
	}
	return nil
}

func (e *envBuilder) aws(t *config.Target) error {
	id := e.id
	if t != nil {
		e.set("AWS_REGION", t.Region)
		e.set("AWS_DEFAULT_REGION", t.Region)
	}
	e.set("AWS_STS_REGIONAL_ENDPOINTS", "regional")
	if id["profile"] != "" {
		e.set("AWS_PROFILE", id["profile"])
		e.set("AWS_CONFIG_FILE", id["configFile"])
		e.set("AWS_SHARED_CREDENTIALS_FILE", id["sharedCredentialsFile"])
	} else {
		// No shared files at all: the runner's default profile may belong to another partition.
		e.Vars["AWS_CONFIG_FILE"], e.Vars["AWS_SHARED_CREDENTIALS_FILE"] = os.DevNull, os.DevNull
	}
	if id["webIdentityTokenFile"] != "" {
		e.set("AWS_ROLE_ARN", id["roleArn"])
		e.set("AWS_WEB_IDENTITY_TOKEN_FILE", id["webIdentityTokenFile"])
		e.set("AWS_ROLE_SESSION_NAME", sessionName(id["sessionName"]))
	}
	for svc, u := range e.b.Endpoints {
		e.set("AWS_ENDPOINT_URL_"+strings.ToUpper(svc), u)
	}
	for _, k := range [][2]string{{"accessKeyIdEnv", "AWS_ACCESS_KEY_ID"}, {"secretAccessKeyEnv", "AWS_SECRET_ACCESS_KEY"}, {"sessionTokenEnv", "AWS_SESSION_TOKEN"}} {
		if err := e.secret(k[0], k[1]); err != nil {
			return err
		}
	}
	return nil
}

func (e *envBuilder) gcp(t *config.Target) {
	e.set("GOOGLE_CLOUD_UNIVERSE_DOMAIN", universe(e.b))
	e.set("GOOGLE_APPLICATION_CREDENTIALS", e.id["credentialsFile"])
	e.set("GOOGLE_PROJECT", e.id["project"])
	e.set("GOOGLE_IMPERSONATE_SERVICE_ACCOUNT", e.id["impersonateServiceAccount"])
	if t != nil {
		e.set("GOOGLE_REGION", t.Region)
	}
}

func sessionName(s string) string {
	if s == "" {
		return "rollout"
	}
	return s
}

// identityFiles are the identity keys that name a file Terraform or the SDK reads.
var identityFiles = []string{"federatedTokenFile", "clientCertificateFile", "configFile", "sharedCredentialsFile",
	"webIdentityTokenFile", "credentialsFile"}

// CheckEnvironment finds, before a run is journaled, what would make every Terraform run in these
// boundaries fail for reasons of this machine rather than of the release: a secret variable that
// an identity names but rollout's environment lacks, or an identity file that cannot be read. It
// needs no network (the identity itself is proven when a ring first enters the boundary).
func (m *Manager) CheckEnvironment(boundaries []string) error {
	var errs []error
	seen := map[string]bool{}
	for _, name := range boundaries {
		if seen[name] {
			continue
		}
		seen[name] = true
		b, err := m.boundary(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := staticEnv(m.Config, b, nil, m.lookup()); err != nil {
			errs = append(errs, err)
		}
		for _, key := range identityFiles {
			p := b.Identity[key]
			if p == "" {
				continue
			}
			f, err := os.Open(p)
			if err == nil {
				f.Close()
				continue
			}
			errs = append(errs, fmt.Errorf("boundary %s: identity.%s: %w", name, key, err))
		}
	}
	return errors.Join(errs...)
}
