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

// staticEnv is a boundary's variables for a target that need no network call: everything but
// temporary credentials (an AWS role chain). A named secret variable that is not set is an error.
func (m *Manager) staticEnv(b *config.Boundary, t *config.Target) (Env, error) {
	e := &EnvBuilder{Env: Env{Vars: BaseEnv(m.Config, m.lookup())}, B: b, lookup: m.lookup()}
	for _, k := range b.PassEnv {
		if v, ok := e.lookup(k); ok {
			e.Vars[k] = v
		}
	}
	cl := m.Catalog.Cloud(b.Cloud)
	if cl == nil {
		return e.Env, fmt.Errorf("boundary %s: unknown cloud %q", b.Name, b.Cloud)
	}
	err := cl.Env(e, t)
	return e.Env, err
}

// EnvBuilder fills one boundary's variables from its identity section.
type EnvBuilder struct {
	Env
	B      *config.Boundary
	lookup Lookup
}

// Lookup reads a variable of rollout's own environment.
func (e *EnvBuilder) Lookup(name string) (string, bool) { return e.lookup(name) }

// Set sets k to v when v is not empty.
func (e *EnvBuilder) Set(k, v string) {
	if v != "" {
		e.Vars[k] = v
	}
}

// Secret sets target to the value of the variable that identity key names, and keeps it as a
// secret to redact; a named variable that is not set is an error.
func (e *EnvBuilder) Secret(key, target string) error {
	name := e.B.Identity[key]
	if name == "" {
		return nil
	}
	v, ok := e.lookup(name)
	if !ok || v == "" {
		return fmt.Errorf("boundary %s: identity.%s names %s, which is not set in rollout's environment", e.B.Name, key, name)
	}
	e.Vars[target] = v
	e.Secrets = append(e.Secrets, v)
	return nil
}

// identityFiles are the identity keys that name a file Terraform or the SDK reads: the keys
// ending in "File" (federatedTokenFile, clientCertificateFile, credentialsFile, ...).
func identityFiles(b *config.Boundary) []string {
	var out []string
	for k := range b.Identity {
		if strings.HasSuffix(k, "File") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

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
		if _, err := m.staticEnv(b, nil); err != nil {
			errs = append(errs, err)
		}
		for _, key := range identityFiles(b) {
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
