package clouds

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/rollout-dev/rollout/internal/config"
)

// Cloud is one cloud family (azure, aws, gcp, local): what it knows of its boundaries. Each lives in
// its own package under clouds/ and passes clouds/conformance; adding a cloud is a new package, an
// entry in clouds/catalog and docs (docs/clouds.md), with no switch elsewhere.
type Cloud interface {
	// Name is what a boundary's cloud key says.
	Name() string
	// Keys are the boundary keys only this cloud has, with defaults, and its identity keys.
	Keys() config.CloudKeys
	Traits() Traits
	// CheckBoundary checks a boundary's settings, regions, endpoints and identity (the endpoints'
	// URLs are checked by Validate, after EndpointURL).
	CheckBoundary(b *config.Boundary, p *Problems)
	// EndpointURL is endpoint key's value as a URL (a cloud may take a bare host name for some);
	// "": CheckBoundary has reported the value.
	EndpointURL(key, raw string) string
	// RegionProblem says why region cannot be a target's in b, which lists no regions, or "".
	RegionProblem(b *config.Boundary, region string) string
	// Crosses says why host belongs to another boundary than b (another partition, cloud or
	// universe), or "". Loopback hosts never do.
	Crosses(b *config.Boundary, host string) string
	// Sovereign says whether b is outside the cloud's commercial boundary.
	Sovereign(b *config.Boundary) bool
	// Agree are target variables that hand the boundary to a module's provider block: when a
	// target sets one, it must equal this value.
	Agree(b *config.Boundary) map[string]string
	// Backends are the Terraform backend types whose state lies in this cloud.
	Backends() []string
	// CheckBackend checks a target's backend of one of Backends() against its boundary.
	CheckBackend(t *config.Target, b *config.Boundary, p *Problems)
	// Env fills the environment of a Terraform run of target t (nil: of no one target) in e.B:
	// the boundary's variables, with no network call.
	Env(e *EnvBuilder, t *config.Target) error
	// Preflight proves b's identity in b with the cloud's own SDK, in region where that matters.
	Preflight(ctx context.Context, m *Manager, b *config.Boundary, region string) (Identity, error)
}

// TemporaryCredentials is implemented by a cloud whose Terraform runs get credentials fetched at
// run time (an AWS role chain): Temporary replaces the static ones in e.
type TemporaryCredentials interface {
	Temporary(ctx context.Context, m *Manager, b *config.Boundary, t *config.Target, e *Env) error
}

// Traits are what the generic checks need to know of a cloud.
type Traits struct {
	Regional    bool // every target names a region
	Proven      bool // boundaries have an identity, proven by Preflight before a ring enters
	RemoteState bool // a target needs a state backend (local state is lost with the build agent)
}

// Catalog is the list of clouds a fleet may use; clouds/catalog assembles it.
type Catalog []Cloud

// Cloud is the cloud of that name, or nil.
func (c Catalog) Cloud(name string) Cloud {
	for _, f := range c {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

// Keys describes every cloud's configuration keys for config.Load.
func (c Catalog) Keys() config.Clouds {
	out := config.Clouds{}
	for _, f := range c {
		out[f.Name()] = f.Keys()
	}
	return out
}

// ofBackend is the cloud whose storage a backend type is, or nil (local, pg, http, consul...).
func (c Catalog) ofBackend(typ string) Cloud {
	for _, f := range c {
		if slices.Contains(f.Backends(), typ) {
			return f
		}
	}
	return nil
}

// Problems collects validation errors, each naming the file, line and key.
type Problems struct {
	main string
	errs config.Errors
}

// Boundary reports a problem with key of boundary b (key "" or unknown: the boundary's line).
func (p *Problems) Boundary(b *config.Boundary, key, format string, args ...any) {
	line := b.Lines[key]
	if line == 0 {
		line = b.Line
	}
	p.errs = append(p.errs, &config.FieldError{File: p.main, Line: line, Key: "boundaries." + b.Name + "." + key, Msg: fmt.Sprintf(format, args...)})
}

// Target reports a problem with key of target t.
func (p *Problems) Target(t *config.Target, key, format string, args ...any) {
	line := t.Lines[key]
	if line == 0 {
		line = t.Line
	}
	p.errs = append(p.errs, &config.FieldError{File: t.File, Line: line, Key: "targets[" + t.Name + "]." + key, Msg: fmt.Sprintf(format, args...)})
}

// Errors are the problems reported.
func (p *Problems) Errors() config.Errors { return p.errs }

// Loopback says whether host is this machine (test servers may use plain http there).
func Loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// HostIn says whether host is domain or a subdomain of it.
func HostIn(host, domain string) bool {
	host, domain = strings.ToLower(strings.TrimSuffix(host, ".")), strings.ToLower(domain)
	return host == domain || strings.HasSuffix(host, "."+domain)
}
