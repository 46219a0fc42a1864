package clouds

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/rollout-dev/rollout/internal/config"
)

// Validate checks what the configuration parser cannot: every boundary's settings against its
// cloud, every target's region against its boundary, and that each target's state backend lies in
// the target's own boundary. Errors name the file, line and key.
func Validate(c *config.Config) config.Errors {
	v := &validator{cfg: c, main: rel(c, c.File)}
	names := make([]string, 0, len(c.Boundaries))
	for n := range c.Boundaries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v.boundary(c.Boundaries[n])
	}
	for _, t := range c.Targets {
		if b := c.Boundaries[t.Boundary]; b != nil {
			v.target(t, b)
		}
	}
	return v.errs
}

func rel(c *config.Config, p string) string {
	if r, err := filepath.Rel(c.Root, p); err == nil {
		return r
	}
	return p
}

type validator struct {
	cfg  *config.Config
	main string
	errs config.Errors
}

func (v *validator) bfail(b *config.Boundary, key, format string, args ...any) {
	line := b.Lines[key]
	if line == 0 {
		line = b.Line
	}
	v.errs = append(v.errs, &config.FieldError{File: v.main, Line: line, Key: "boundaries." + b.Name + "." + key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) tfail(t *config.Target, key, format string, args ...any) {
	line := t.Lines[key]
	if line == 0 {
		line = t.Line
	}
	v.errs = append(v.errs, &config.FieldError{File: t.File, Line: line, Key: "targets[" + t.Name + "]." + key, Msg: fmt.Sprintf(format, args...)})
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

func (v *validator) boundary(b *config.Boundary) {
	if b.ProviderMirror != "" {
		if u, err := url.Parse(b.ProviderMirror); err == nil && u.Scheme != "" {
			if u.Scheme != "https" {
				v.bfail(b, "providerMirror", "a network mirror must be an https:// URL; a filesystem mirror is a directory path")
			} else if reason := crossesBoundary(b, u.Hostname()); reason != "" {
				v.bfail(b, "providerMirror", "%s", reason)
			}
		} else if !filepath.IsAbs(b.ProviderMirror) {
			v.bfail(b, "providerMirror", "a filesystem mirror must be an absolute path (or an https:// URL for a network mirror)")
		}
	}
	switch b.Cloud {
	case "local":
		for _, k := range []string{"endpoints", "regions"} {
			if _, set := b.Lines[k]; set {
				v.bfail(b, k, "a local boundary has no %s", k)
			}
		}
	case "azure":
		v.azureBoundary(b)
	case "aws":
		v.awsBoundary(b)
	case "gcp":
		v.gcpBoundary(b)
	}
	for k, raw := range b.Endpoints {
		if k == "metadataHost" && b.Cloud == "azure" {
			// A host name (and port), as ARM_METADATA_HOSTNAME and the backend's metadata_host take it.
			if strings.Contains(raw, "/") {
				v.bfail(b, "endpoints."+k, "want a host name such as management.sovcloud.example, got %q", raw)
				continue
			}
			raw = "https://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			v.bfail(b, "endpoints."+k, "want a URL, got %q", raw)
			continue
		}
		if u.Scheme != "https" && !loopback(u.Hostname()) {
			v.bfail(b, "endpoints."+k, "must be https:// (plain http is accepted for loopback test servers only)")
		}
		if reason := crossesBoundary(b, u.Hostname()); reason != "" {
			v.bfail(b, "endpoints."+k, "%s", reason)
		}
	}
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) azureBoundary(b *config.Boundary) {
	switch b.Environment {
	case "public", "usgovernment", "china":
		if len(b.Endpoints) > 0 {
			v.bfail(b, "endpoints", "endpoints are for environment: custom; %s's are known", b.Environment)
		}
	case "custom":
		for _, k := range []string{"authorityHost", "resourceManager", "audience"} {
			if b.Endpoints[k] == "" {
				v.bfail(b, "endpoints", "a custom Azure cloud needs endpoints.%s (and authorityHost, resourceManager, audience)", k)
			}
		}
		for k := range b.Endpoints {
			if !slices.Contains([]string{"authorityHost", "resourceManager", "audience", "metadataHost"}, k) {
				v.bfail(b, "endpoints."+k, "unknown Azure endpoint (known: authorityHost, resourceManager, audience, metadataHost)")
			}
		}
		if len(b.Regions) == 0 {
			v.bfail(b, "regions", "a custom Azure cloud must list its regions, so that targets can be checked against them")
		}
	case "":
		v.bfail(b, "environment", "is required for an Azure boundary: public, usgovernment, china or custom")
	default:
		v.bfail(b, "environment", "unknown Azure environment %q: public, usgovernment, china or custom", b.Environment)
	}
	id := b.Identity
	var kinds []string
	for _, k := range []string{"federatedTokenFile", "oidcRequestUrlEnv", "managedIdentity", "clientSecretEnv", "clientCertificateFile"} {
		if id[k] != "" {
			kinds = append(kinds, k)
		}
	}
	switch {
	case len(kinds) == 0:
		v.bfail(b, "identity", "an Azure boundary needs one credential: federatedTokenFile, oidcRequestUrlEnv, managedIdentity, clientSecretEnv or clientCertificateFile")
		return
	case len(kinds) > 1:
		v.bfail(b, "identity."+kinds[1], "give one credential per boundary, not %s", strings.Join(kinds, " and "))
	}
	if id["managedIdentity"] != "" && id["managedIdentity"] != "true" && id["managedIdentity"] != "false" {
		v.bfail(b, "identity.managedIdentity", "must be true or false")
	}
	if id["tenantId"] == "" {
		v.bfail(b, "identity", "identity.tenantId is required: preflight checks the token was issued by this tenant")
	}
	if id["clientId"] == "" && id["managedIdentity"] != "true" {
		v.bfail(b, "identity", "identity.clientId is required")
	}
	if id["oidcRequestUrlEnv"] != "" && id["oidcRequestTokenEnv"] == "" {
		v.bfail(b, "identity.oidcRequestUrlEnv", "needs identity.oidcRequestTokenEnv too (on GitHub Actions: ACTIONS_ID_TOKEN_REQUEST_TOKEN)")
	}
}

func (v *validator) awsBoundary(b *config.Boundary) {
	p := partitionByID(b.Partition)
	if p == nil {
		if b.Partition == "" {
			v.bfail(b, "partition", "is required for an AWS boundary: one of %s", partitionIDs())
		} else {
			v.bfail(b, "partition", "unknown AWS partition %q: one of %s", b.Partition, partitionIDs())
		}
		return
	}
	for i, r := range b.Regions {
		if !p.RegionRE.MatchString(r) {
			v.bfail(b, "regions", "regions[%d] %q is not a region of partition %s", i, r, p.ID)
		}
	}
	id := b.Identity
	if a := id["accountId"]; a != "" && !accountRE.MatchString(a) {
		v.bfail(b, "identity.accountId", "want a 12-digit AWS account id")
	}
	checkARN := func(key, arn string) {
		if arn == "" {
			return
		}
		parts := strings.SplitN(arn, ":", 6)
		if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") || !accountRE.MatchString(parts[4]) {
			v.bfail(b, key, "want a role ARN like arn:%s:iam::123456789012:role/NAME", p.ID)
			return
		}
		if parts[1] != p.ID {
			v.bfail(b, key, "role %s is in partition %s, but this boundary is partition %s", arn, parts[1], p.ID)
		}
	}
	checkARN("identity.roleArn", id["roleArn"])
	for i, ar := range b.AssumeRole {
		checkARN(fmt.Sprintf("identity.assumeRole[%d]", i), ar.RoleArn)
	}
	if id["webIdentityTokenFile"] != "" && id["roleArn"] == "" {
		v.bfail(b, "identity.webIdentityTokenFile", "needs identity.roleArn: the role the web identity token is exchanged for")
	}
	if id["roleArn"] != "" && id["webIdentityTokenFile"] == "" {
		v.bfail(b, "identity.roleArn", "is the role of web identity; to assume a role with other credentials, use identity.assumeRole")
	}
	if (id["accessKeyIdEnv"] == "") != (id["secretAccessKeyEnv"] == "") {
		v.bfail(b, "identity", "accessKeyIdEnv and secretAccessKeyEnv go together")
	}
	var kinds []string
	for _, k := range []string{"profile", "accessKeyIdEnv", "webIdentityTokenFile"} {
		if id[k] != "" {
			kinds = append(kinds, k)
		}
	}
	switch {
	case len(kinds) == 0:
		v.bfail(b, "identity", "an AWS boundary needs its own credentials: profile, accessKeyIdEnv/secretAccessKeyEnv or webIdentityTokenFile (rollout never uses the runner's ambient AWS credentials)")
	case len(kinds) > 1:
		v.bfail(b, "identity."+kinds[1], "give one source of credentials per boundary, not %s", strings.Join(kinds, " and "))
	}
}

func (v *validator) gcpBoundary(b *config.Boundary) {
	u := universe(b)
	if !strings.Contains(u, ".") || strings.ContainsAny(u, "/: ") {
		v.bfail(b, "universeDomain", "want a domain such as googleapis.com or s3nsapis.fr, got %q", u)
	}
	if u != DefaultUniverse && b.Identity["credentialsFile"] == "" {
		v.bfail(b, "identity", "a sovereign universe needs identity.credentialsFile (a service account key or workload identity federation configuration of that universe): detected credentials may be the runner's commercial ones")
	}
	if u != DefaultUniverse && len(b.Regions) == 0 {
		v.bfail(b, "regions", "a sovereign universe must list its regions, so that targets can be checked against them")
	}
	for i, r := range b.Regions {
		if !gcpRegionRE.MatchString(r) {
			v.bfail(b, "regions", "regions[%d] %q is not a Google Cloud region name", i, r)
		}
	}
	for k := range b.Endpoints {
		if k != "token" && k != "sts" && k != "storage" && k != "monitoring" {
			v.bfail(b, "endpoints."+k, "unknown Google Cloud endpoint (known: token, sts, storage, monitoring)")
		}
	}
}

func universe(b *config.Boundary) string {
	if b.UniverseDomain == "" {
		return DefaultUniverse
	}
	return b.UniverseDomain
}

// crossesBoundary says why a host belongs to a cloud other than boundary b's, or "".
func crossesBoundary(b *config.Boundary, host string) string {
	if loopback(host) {
		return ""
	}
	switch b.Cloud {
	case "azure":
		for _, c := range azureClouds {
			if c.Name == b.Environment {
				continue
			}
			for _, d := range c.Domains {
				if hostIn(host, d) {
					return fmt.Sprintf("%s is an endpoint of Azure %s, outside this boundary (environment %s)", host, c.Name, b.Environment)
				}
			}
		}
	case "aws":
		p := partitionByID(b.Partition)
		if p == nil {
			return ""
		}
		for _, label := range strings.Split(strings.ToLower(host), ".") {
			if o := partitionOfRegion(label); o != nil && o != p {
				return fmt.Sprintf("%s names region %s of partition %s, outside this boundary (partition %s)", host, label, o.ID, p.ID)
			}
		}
		for _, o := range awsPartitions {
			if o.DNSSuffix != p.DNSSuffix && hostIn(host, o.DNSSuffix) && !hostIn(host, p.DNSSuffix) {
				return fmt.Sprintf("%s is in partition %s (%s), outside this boundary (partition %s)", host, o.ID, o.DNSSuffix, p.ID)
			}
		}
		// aws-us-gov shares amazonaws.com with the commercial partition: an endpoint there must name
		// one of its own regions, or it is a commercial (global) endpoint.
		if p.ID != "aws" && p.DNSSuffix == "amazonaws.com" && hostIn(host, p.DNSSuffix) {
			for _, label := range strings.Split(strings.ToLower(host), ".") {
				if p.RegionRE.MatchString(label) {
					return ""
				}
			}
			return fmt.Sprintf("%s names no %s region: it is a commercial AWS endpoint", host, p.ID)
		}
	case "gcp":
		u := universe(b)
		if u != DefaultUniverse && hostIn(host, DefaultUniverse) {
			return fmt.Sprintf("%s is in the commercial Google Cloud universe, outside this boundary (universe %s)", host, u)
		}
		if u != DefaultUniverse && !hostIn(host, u) {
			return fmt.Sprintf("%s is not in this boundary's universe %s", host, u)
		}
	}
	return ""
}

func (v *validator) target(t *config.Target, b *config.Boundary) {
	if b.Cloud != "local" && t.Region == "" {
		v.tfail(t, "region", "is required for a target in boundary %s (cloud %s)", b.Name, b.Cloud)
	}
	// A boundary's own region list (checked against its cloud above) decides; else the cloud's rules.
	if t.Region != "" && len(b.Regions) > 0 && !slices.Contains(b.Regions, t.Region) {
		v.tfail(t, "region", "%s is not one of boundary %s's regions (%s)", t.Region, b.Name, strings.Join(b.Regions, ", "))
	} else if t.Region != "" && len(b.Regions) == 0 {
		if msg := regionMismatch(b, t.Region); msg != "" {
			v.tfail(t, "region", "%s", msg)
		}
	}
	// Variables that hand the boundary to the module's provider block must agree with it.
	agree := map[string]string{}
	switch b.Cloud {
	case "gcp":
		agree["universe_domain"] = universe(b)
	case "azure":
		agree["azure_environment"] = b.Environment
	case "aws":
		agree["aws_partition"] = b.Partition
	}
	for name, want := range agree {
		if got, ok := t.Vars[name].(string); ok && got != want {
			v.tfail(t, "vars."+name, "is %q, but boundary %s is %s", got, b.Name, want)
		}
	}
	switch {
	case t.Backend != nil:
		v.backend(t, b)
	case b.Cloud != "local":
		v.tfail(t, "backend", "is required for a target in boundary %s (cloud %s), which has no backend convention: local state on a build agent is lost with it. Give the target a backend in its own boundary, or boundary %s a convention (boundaries.%s.backend); `backend: {type: local}` says local state on purpose", b.Name, b.Cloud, b.Name, b.Name)
	}
}

// regionMismatch says why region cannot be in boundary b, or "".
func regionMismatch(b *config.Boundary, region string) string {
	switch b.Cloud {
	case "aws":
		p := partitionByID(b.Partition)
		if p == nil || p.RegionRE.MatchString(region) {
			return ""
		}
		if o := partitionOfRegion(region); o != nil {
			return fmt.Sprintf("%s is a region of partition %s, but boundary %s is partition %s", region, o.ID, b.Name, p.ID)
		}
		return fmt.Sprintf("%s is not a region of partition %s (boundary %s; its regions: %s)", region, p.ID, b.Name, strings.Join(p.Regions, ", "))
	case "azure":
		if !azureRegionRE.MatchString(region) {
			return fmt.Sprintf("%s is not an Azure region name (lower case, no spaces: eastus, usgovvirginia, chinanorth3)", region)
		}
		owner := azureCloudOfRegion(region)
		switch c := azureCloudByName(b.Environment); {
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
	case "gcp":
		if !gcpRegionRE.MatchString(region) {
			return fmt.Sprintf("%s is not a Google Cloud region name (us-central1, europe-west4)", region)
		}
	case "local":
	}
	return ""
}

// cloudOfBackend is the cloud whose storage a Terraform backend type lives in ("" for backends
// that are not a cloud's: local, pg, http, consul, kubernetes, remote, cloud).
var cloudOfBackend = map[string]string{"s3": "aws", "azurerm": "azure", "gcs": "gcp", "oss": "alibaba", "cos": "tencent"}

func (v *validator) backend(t *config.Target, b *config.Boundary) {
	bk := t.Backend
	owner := cloudOfBackend[bk.Type]
	if owner != "" && owner != b.Cloud {
		v.tfail(t, "backend.type", "a %s backend keeps state in %s, outside boundary %s (cloud %s): a target's state lies in its own boundary", bk.Type, owner, b.Name, b.Cloud)
		return
	}
	str := func(k string) string { s, _ := bk.Config[k].(string); return s }
	checkHost := func(key, raw string) {
		if raw == "" {
			return
		}
		host := raw
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			host = u.Hostname()
		}
		if reason := crossesBoundary(b, host); reason != "" {
			v.tfail(t, "backend.config."+key, "%s", reason)
		}
	}
	switch bk.Type {
	case "s3":
		p := partitionByID(b.Partition)
		if r := str("region"); r != "" && p != nil && !p.RegionRE.MatchString(r) {
			where := "no known partition"
			if o := partitionOfRegion(r); o != nil {
				where = "partition " + o.ID
			}
			v.tfail(t, "backend.config.region", "the state bucket's region %s is in %s, but boundary %s is partition %s", r, where, b.Name, p.ID)
		} else if r == "" {
			v.tfail(t, "backend.config.region", "is required: the S3 backend's region decides which partition holds the state")
		}
		for _, k := range []string{"endpoint", "sts_endpoint", "iam_endpoint", "dynamodb_endpoint"} {
			checkHost(k, str(k))
		}
		if eps, ok := bk.Config["endpoints"].(map[string]any); ok {
			for k, e := range eps {
				s, _ := e.(string)
				checkHost("endpoints."+k, s)
			}
		}
		arns := []string{str("role_arn")}
		if ar, ok := bk.Config["assume_role"].(map[string]any); ok {
			s, _ := ar["role_arn"].(string)
			arns = append(arns, s)
		}
		for _, arn := range arns {
			if parts := strings.SplitN(arn, ":", 3); arn != "" && p != nil && len(parts) >= 2 && parts[1] != p.ID {
				v.tfail(t, "backend.config.role_arn", "role %s is in partition %s, but boundary %s is partition %s", arn, parts[1], b.Name, p.ID)
			}
		}
	case "azurerm":
		if env := str("environment"); env != "" && env != b.Environment {
			v.tfail(t, "backend.config.environment", "the state account is in Azure %s, but boundary %s is Azure %s", env, b.Name, b.Environment)
		}
		if mh := str("metadata_host"); mh != "" {
			if b.Environment != "custom" {
				v.tfail(t, "backend.config.metadata_host", "is for custom Azure clouds; boundary %s is Azure %s", b.Name, b.Environment)
			} else if want := metadataHost(b); !strings.EqualFold(mh, want) {
				v.tfail(t, "backend.config.metadata_host", "is %s, but boundary %s's metadata host is %s", mh, b.Name, want)
			}
		}
		checkHost("endpoint", str("endpoint"))
	case "gcs":
		ep := str("storage_custom_endpoint")
		if u := universe(b); u != DefaultUniverse && ep == "" {
			v.tfail(t, "backend.config.storage_custom_endpoint", "is required in universe %s: without it the gcs backend reaches storage.googleapis.com, the commercial universe", u)
		}
		checkHost("storage_custom_endpoint", ep)
	case "remote", "cloud":
		if sovereign(b) {
			if h := str("hostname"); h == "" || hostIn(h, "terraform.io") {
				v.tfail(t, "backend.type", "a %s backend on HCP Terraform keeps state outside sovereign boundary %s: use a backend in the boundary", bk.Type, b.Name)
			}
		}
	}
}

// Sovereign says whether the boundary is outside the commercial clouds (Azure Government and
// China and custom clouds, the AWS partitions other than aws, Google universes other than the
// default).
func Sovereign(b *config.Boundary) bool { return sovereign(b) }

// sovereign says whether the boundary is outside the commercial clouds.
func sovereign(b *config.Boundary) bool {
	switch b.Cloud {
	case "azure":
		return b.Environment != "public"
	case "aws":
		p := partitionByID(b.Partition)
		return p != nil && p.Sovereign
	case "gcp":
		return universe(b) != DefaultUniverse
	}
	return false
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
