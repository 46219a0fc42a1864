package clouds

import (
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rollout-dev/rollout/internal/config"
)

// Validate checks what the configuration parser cannot: every boundary's settings against its
// cloud, every target's region against its boundary, and that each target's state backend lies in
// the target's own boundary. Errors name the file, line and key.
func (cat Catalog) Validate(c *config.Config) config.Errors {
	v := &validator{cat: cat, p: &Problems{main: rel(c, c.File)}}
	names := make([]string, 0, len(c.Boundaries))
	for n := range c.Boundaries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v.boundary(c.Boundaries[n])
	}
	for _, t := range c.Targets {
		if b := c.Boundaries[t.Boundary]; b != nil && cat.Cloud(b.Cloud) != nil {
			v.target(t, b)
		}
	}
	return v.p.errs
}

func rel(c *config.Config, p string) string {
	if r, err := filepath.Rel(c.Root, p); err == nil {
		return r
	}
	return p
}

type validator struct {
	cat Catalog
	p   *Problems
}

func (v *validator) boundary(b *config.Boundary) {
	cl := v.cat.Cloud(b.Cloud)
	if cl == nil {
		v.p.Boundary(b, "cloud", "unknown cloud %q", b.Cloud) // config.Load was given another catalog
		return
	}
	if b.ProviderMirror != "" {
		if u, err := url.Parse(b.ProviderMirror); err == nil && u.Scheme != "" {
			if u.Scheme != "https" {
				v.p.Boundary(b, "providerMirror", "a network mirror must be an https:// URL; a filesystem mirror is a directory path")
			} else if reason := crosses(cl, b, u.Hostname()); reason != "" {
				v.p.Boundary(b, "providerMirror", "%s", reason)
			}
		} else if !filepath.IsAbs(b.ProviderMirror) {
			v.p.Boundary(b, "providerMirror", "a filesystem mirror must be an absolute path (or an https:// URL for a network mirror)")
		}
	}
	if !cl.Traits().Regional {
		if _, set := b.Lines["regions"]; set {
			v.p.Boundary(b, "regions", "a %s boundary has no regions", b.Cloud)
		}
	}
	cl.CheckBoundary(b, v.p)
	for k, raw := range b.Endpoints {
		ep := cl.EndpointURL(k, raw)
		if ep == "" {
			continue
		}
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" {
			v.p.Boundary(b, "endpoints."+k, "want a URL, got %q", raw)
			continue
		}
		if u.Scheme != "https" && !Loopback(u.Hostname()) {
			v.p.Boundary(b, "endpoints."+k, "must be https:// (plain http is accepted for loopback test servers only)")
		}
		if reason := crosses(cl, b, u.Hostname()); reason != "" {
			v.p.Boundary(b, "endpoints."+k, "%s", reason)
		}
	}
}

// crosses says why host lies outside boundary b, or "".
func crosses(cl Cloud, b *config.Boundary, host string) string {
	if Loopback(host) {
		return ""
	}
	return cl.Crosses(b, host)
}

func (v *validator) target(t *config.Target, b *config.Boundary) {
	cl := v.cat.Cloud(b.Cloud)
	if cl.Traits().Regional && t.Region == "" {
		v.p.Target(t, "region", "is required for a target in boundary %s (cloud %s)", b.Name, b.Cloud)
	}
	// A boundary's own region list (checked against its cloud above) decides; else the cloud's rules.
	if t.Region != "" && len(b.Regions) > 0 && !slices.Contains(b.Regions, t.Region) {
		v.p.Target(t, "region", "%s is not one of boundary %s's regions (%s)", t.Region, b.Name, strings.Join(b.Regions, ", "))
	} else if t.Region != "" && len(b.Regions) == 0 {
		if msg := cl.RegionProblem(b, t.Region); msg != "" {
			v.p.Target(t, "region", "%s", msg)
		}
	}
	for name, want := range cl.Agree(b) {
		if got, ok := t.Vars[name].(string); ok && got != want {
			v.p.Target(t, "vars."+name, "is %q, but boundary %s is %s", got, b.Name, want)
		}
	}
	switch {
	case t.Backend != nil:
		v.backend(t, b, cl)
	case cl.Traits().RemoteState:
		v.p.Target(t, "backend", "is required for a target in boundary %s (cloud %s), which has no backend convention: local state on a build agent is lost with it. Give the target a backend in its own boundary, or boundary %s a convention (boundaries.%s.backend); `backend: {type: local}` says local state on purpose", b.Name, b.Cloud, b.Name, b.Name)
	}
}

// foreignBackends are backend types of clouds no catalog serves: state there is outside any boundary.
var foreignBackends = map[string]string{"oss": "alibaba", "cos": "tencent"}

func (v *validator) backend(t *config.Target, b *config.Boundary, cl Cloud) {
	bk := t.Backend
	owner := ""
	if o := v.cat.ofBackend(bk.Type); o != nil {
		owner = o.Name()
	} else {
		owner = foreignBackends[bk.Type]
	}
	if owner != "" && owner != b.Cloud {
		v.p.Target(t, "backend.type", "a %s backend keeps state in %s, outside boundary %s (cloud %s): a target's state lies in its own boundary", bk.Type, owner, b.Name, b.Cloud)
		return
	}
	if owner != "" {
		cl.CheckBackend(t, b, v.p)
		return
	}
	if bk.Type == "remote" || bk.Type == "cloud" {
		if cl.Sovereign(b) {
			if h, _ := bk.Config["hostname"].(string); h == "" || HostIn(h, "terraform.io") {
				v.p.Target(t, "backend.type", "a %s backend on HCP Terraform keeps state outside sovereign boundary %s: use a backend in the boundary", bk.Type, b.Name)
			}
		}
	}
}

// CheckHost reports backend key's host (a URL or a bare host) when it lies outside b.
func CheckHost(p *Problems, cl Cloud, t *config.Target, b *config.Boundary, key, raw string) {
	if raw == "" {
		return
	}
	host := raw
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		host = u.Hostname()
	}
	if reason := crosses(cl, b, host); reason != "" {
		p.Target(t, "backend.config."+key, "%s", reason)
	}
}

// Sovereign says whether the boundary is outside its cloud's commercial boundary (Azure Government
// and China and custom clouds, the AWS partitions other than aws, Google universes other than the
// default).
func (cat Catalog) Sovereign(b *config.Boundary) bool {
	cl := cat.Cloud(b.Cloud)
	return cl != nil && cl.Sovereign(b)
}
