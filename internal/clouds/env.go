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
	e := Env{Vars: BaseEnv(c, lookup)}
	for _, k := range b.PassEnv {
		if v, ok := lookup(k); ok {
			e.Vars[k] = v
		}
	}
	id := b.Identity
	set := func(k, v string) {
		if v != "" {
			e.Vars[k] = v
		}
	}
	secret := func(key, target string) error {
		name := id[key]
		if name == "" {
			return nil
		}
		v, ok := lookup(name)
		if !ok || v == "" {
			return fmt.Errorf("boundary %s: identity.%s names %s, which is not set in rollout's environment", b.Name, key, name)
		}
		e.Vars[target] = v
		e.Secrets = append(e.Secrets, v)
		return nil
	}
	var err error
	switch b.Cloud {
	case "azure":
		if b.Environment == "custom" {
			set("ARM_METADATA_HOSTNAME", metadataHost(b))
		} else {
			set("ARM_ENVIRONMENT", b.Environment)
		}
		set("ARM_TENANT_ID", id["tenantId"])
		set("ARM_CLIENT_ID", id["clientId"])
		set("ARM_SUBSCRIPTION_ID", id["subscriptionId"])
		switch {
		case id["federatedTokenFile"] != "":
			set("ARM_USE_OIDC", "true")
			set("ARM_OIDC_TOKEN_FILE_PATH", id["federatedTokenFile"])
		case id["oidcRequestUrlEnv"] != "":
			set("ARM_USE_OIDC", "true")
			if v, ok := lookup(id["oidcRequestUrlEnv"]); ok {
				set("ARM_OIDC_REQUEST_URL", v)
			} else {
				err = fmt.Errorf("boundary %s: identity.oidcRequestUrlEnv names %s, which is not set in rollout's environment", b.Name, id["oidcRequestUrlEnv"])
			}
			if err == nil {
				err = secret("oidcRequestTokenEnv", "ARM_OIDC_REQUEST_TOKEN")
			}
		case id["managedIdentity"] == "true":
			set("ARM_USE_MSI", "true")
		case id["clientSecretEnv"] != "":
			err = secret("clientSecretEnv", "ARM_CLIENT_SECRET")
		case id["clientCertificateFile"] != "":
			set("ARM_CLIENT_CERTIFICATE_PATH", id["clientCertificateFile"])
			err = secret("clientCertificatePasswordEnv", "ARM_CLIENT_CERTIFICATE_PASSWORD")
		}
	case "aws":
		if t != nil {
			set("AWS_REGION", t.Region)
			set("AWS_DEFAULT_REGION", t.Region)
		}
		set("AWS_STS_REGIONAL_ENDPOINTS", "regional")
		if id["profile"] != "" {
			set("AWS_PROFILE", id["profile"])
			set("AWS_CONFIG_FILE", id["configFile"])
			set("AWS_SHARED_CREDENTIALS_FILE", id["sharedCredentialsFile"])
		} else {
			// No shared files at all: the runner's default profile may belong to another partition.
			e.Vars["AWS_CONFIG_FILE"], e.Vars["AWS_SHARED_CREDENTIALS_FILE"] = os.DevNull, os.DevNull
		}
		if err = secret("accessKeyIdEnv", "AWS_ACCESS_KEY_ID"); err == nil {
			if err = secret("secretAccessKeyEnv", "AWS_SECRET_ACCESS_KEY"); err == nil {
				err = secret("sessionTokenEnv", "AWS_SESSION_TOKEN")
			}
		}
		if id["webIdentityTokenFile"] != "" {
			set("AWS_ROLE_ARN", id["roleArn"])
			set("AWS_WEB_IDENTITY_TOKEN_FILE", id["webIdentityTokenFile"])
			set("AWS_ROLE_SESSION_NAME", sessionName(id["sessionName"]))
		}
		for svc, u := range b.Endpoints {
			set("AWS_ENDPOINT_URL_"+strings.ToUpper(svc), u)
		}
	case "gcp":
		set("GOOGLE_CLOUD_UNIVERSE_DOMAIN", universe(b))
		set("GOOGLE_APPLICATION_CREDENTIALS", id["credentialsFile"])
		set("GOOGLE_PROJECT", id["project"])
		set("GOOGLE_IMPERSONATE_SERVICE_ACCOUNT", id["impersonateServiceAccount"])
		if t != nil {
			set("GOOGLE_REGION", t.Region)
		}
	}
	return e, err
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
