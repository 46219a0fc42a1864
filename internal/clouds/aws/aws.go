// Package aws is the AWS cloud family: partitions (aws, aws-us-gov, aws-cn, aws-eusc, the ISO
// partitions), their regions and DNS suffixes, the environment the AWS provider and the s3 backend
// see, and preflight with STS on the partition's regional endpoint.
package aws

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/config"
)

// Name is what a boundary's cloud key says.
const Name = "aws"

// Cloud is the AWS family.
type Cloud struct{}

var _ clouds.TemporaryCredentials = Cloud{}

func (Cloud) Name() string { return Name }

func (Cloud) Keys() config.CloudKeys {
	return config.CloudKeys{Settings: map[string]string{"partition": ""},
		Identity: []string{"profile", "configFile", "sharedCredentialsFile", "accessKeyIdEnv", "secretAccessKeyEnv", "sessionTokenEnv",
			"roleArn", "webIdentityTokenFile", "sessionName", "accountId", "assumeRole"}}
}

func (Cloud) Traits() clouds.Traits {
	return clouds.Traits{Regional: true, Proven: true, RemoteState: true}
}

// Partition is boundary b's partition id.
func Partition(b *config.Boundary) string { return b.Settings["partition"] }

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

func (Cloud) CheckBoundary(b *config.Boundary, pr *clouds.Problems) {
	p := partitionByID(Partition(b))
	if p == nil {
		if Partition(b) == "" {
			pr.Boundary(b, "partition", "is required for an AWS boundary: one of %s", partitionIDs())
		} else {
			pr.Boundary(b, "partition", "unknown AWS partition %q: one of %s", Partition(b), partitionIDs())
		}
		return
	}
	for i, r := range b.Regions {
		if !p.RegionRE.MatchString(r) {
			pr.Boundary(b, "regions", "regions[%d] %q is not a region of partition %s", i, r, p.ID)
		}
	}
	id := b.Identity
	if a := id["accountId"]; a != "" && !accountRE.MatchString(a) {
		pr.Boundary(b, "identity.accountId", "want a 12-digit AWS account id")
	}
	checkARN("identity.roleArn", id["roleArn"], b, p, pr)
	for i, ar := range b.AssumeRole {
		checkARN(fmt.Sprintf("identity.assumeRole[%d]", i), ar.RoleArn, b, p, pr)
	}
	checkCredentials(b, pr)
}

func checkARN(key, arn string, b *config.Boundary, p *partition, pr *clouds.Problems) {
	if arn == "" {
		return
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") || !accountRE.MatchString(parts[4]) {
		pr.Boundary(b, key, "want a role ARN like arn:%s:iam::123456789012:role/NAME", p.ID)
		return
	}
	if parts[1] != p.ID {
		pr.Boundary(b, key, "role %s is in partition %s, but this boundary is partition %s", arn, parts[1], p.ID)
	}
}

// checkCredentials wants exactly one source of credentials, whole.
func checkCredentials(b *config.Boundary, pr *clouds.Problems) {
	id := b.Identity
	if id["webIdentityTokenFile"] != "" && id["roleArn"] == "" {
		pr.Boundary(b, "identity.webIdentityTokenFile", "needs identity.roleArn: the role the web identity token is exchanged for")
	}
	if id["roleArn"] != "" && id["webIdentityTokenFile"] == "" {
		pr.Boundary(b, "identity.roleArn", "is the role of web identity; to assume a role with other credentials, use identity.assumeRole")
	}
	if (id["accessKeyIdEnv"] == "") != (id["secretAccessKeyEnv"] == "") {
		pr.Boundary(b, "identity", "accessKeyIdEnv and secretAccessKeyEnv go together")
	}
	var kinds []string
	for _, k := range []string{"profile", "accessKeyIdEnv", "webIdentityTokenFile"} {
		if id[k] != "" {
			kinds = append(kinds, k)
		}
	}
	switch {
	case len(kinds) == 0:
		pr.Boundary(b, "identity", "an AWS boundary needs its own credentials: profile, accessKeyIdEnv/secretAccessKeyEnv or webIdentityTokenFile (rollout never uses the runner's ambient AWS credentials)")
	case len(kinds) > 1:
		pr.Boundary(b, "identity."+kinds[1], "give one source of credentials per boundary, not %s", strings.Join(kinds, " and "))
	}
}

func (Cloud) EndpointURL(_, raw string) string { return raw }

func (Cloud) RegionProblem(b *config.Boundary, region string) string {
	p := partitionByID(Partition(b))
	if p == nil || p.RegionRE.MatchString(region) {
		return ""
	}
	if o := partitionOfRegion(region); o != nil {
		return fmt.Sprintf("%s is a region of partition %s, but boundary %s is partition %s", region, o.ID, b.Name, p.ID)
	}
	return fmt.Sprintf("%s is not a region of partition %s (boundary %s; its regions: %s)", region, p.ID, b.Name, strings.Join(p.Regions, ", "))
}

func (Cloud) Crosses(b *config.Boundary, host string) string {
	p := partitionByID(Partition(b))
	if p == nil {
		return ""
	}
	for _, label := range strings.Split(strings.ToLower(host), ".") {
		if o := partitionOfRegion(label); o != nil && o != p {
			return fmt.Sprintf("%s names region %s of partition %s, outside this boundary (partition %s)", host, label, o.ID, p.ID)
		}
	}
	for _, o := range partitions {
		if o.DNSSuffix != p.DNSSuffix && clouds.HostIn(host, o.DNSSuffix) && !clouds.HostIn(host, p.DNSSuffix) {
			return fmt.Sprintf("%s is in partition %s (%s), outside this boundary (partition %s)", host, o.ID, o.DNSSuffix, p.ID)
		}
	}
	// aws-us-gov shares amazonaws.com with the commercial partition: an endpoint there must name
	// one of its own regions, or it is a commercial (global) endpoint.
	if p.ID != "aws" && p.DNSSuffix == "amazonaws.com" && clouds.HostIn(host, p.DNSSuffix) {
		for _, label := range strings.Split(strings.ToLower(host), ".") {
			if p.RegionRE.MatchString(label) {
				return ""
			}
		}
		return fmt.Sprintf("%s names no %s region: it is a commercial AWS endpoint", host, p.ID)
	}
	return ""
}

func (Cloud) Sovereign(b *config.Boundary) bool {
	p := partitionByID(Partition(b))
	return p != nil && p.Sovereign
}

func (Cloud) Agree(b *config.Boundary) map[string]string {
	return map[string]string{"aws_partition": Partition(b)}
}

func (Cloud) Backends() []string { return []string{"s3"} }

func (c Cloud) CheckBackend(t *config.Target, b *config.Boundary, pr *clouds.Problems) {
	bk := t.Backend
	str := func(k string) string { s, _ := bk.Config[k].(string); return s }
	p := partitionByID(Partition(b))
	if r := str("region"); r != "" && p != nil && !p.RegionRE.MatchString(r) {
		where := "no known partition"
		if o := partitionOfRegion(r); o != nil {
			where = "partition " + o.ID
		}
		pr.Target(t, "backend.config.region", "the state bucket's region %s is in %s, but boundary %s is partition %s", r, where, b.Name, p.ID)
	} else if r == "" {
		pr.Target(t, "backend.config.region", "is required: the S3 backend's region decides which partition holds the state")
	}
	for _, k := range []string{"endpoint", "sts_endpoint", "iam_endpoint", "dynamodb_endpoint"} {
		clouds.CheckHost(pr, c, t, b, k, str(k))
	}
	if eps, ok := bk.Config["endpoints"].(map[string]any); ok {
		for k, e := range eps {
			s, _ := e.(string)
			clouds.CheckHost(pr, c, t, b, "endpoints."+k, s)
		}
	}
	arns := []string{str("role_arn")}
	if ar, ok := bk.Config["assume_role"].(map[string]any); ok {
		s, _ := ar["role_arn"].(string)
		arns = append(arns, s)
	}
	for _, arn := range arns {
		if parts := strings.SplitN(arn, ":", 3); arn != "" && p != nil && len(parts) >= 2 && parts[1] != p.ID {
			pr.Target(t, "backend.config.role_arn", "role %s is in partition %s, but boundary %s is partition %s", arn, parts[1], b.Name, p.ID)
		}
	}
}

func (Cloud) Env(e *clouds.EnvBuilder, t *config.Target) error {
	id := e.B.Identity
	if t != nil {
		e.Set("AWS_REGION", t.Region)
		e.Set("AWS_DEFAULT_REGION", t.Region)
	}
	e.Set("AWS_STS_REGIONAL_ENDPOINTS", "regional")
	if id["profile"] != "" {
		e.Set("AWS_PROFILE", id["profile"])
		e.Set("AWS_CONFIG_FILE", id["configFile"])
		e.Set("AWS_SHARED_CREDENTIALS_FILE", id["sharedCredentialsFile"])
	} else {
		// No shared files at all: the runner's default profile may belong to another partition.
		e.Vars["AWS_CONFIG_FILE"], e.Vars["AWS_SHARED_CREDENTIALS_FILE"] = os.DevNull, os.DevNull
	}
	if id["webIdentityTokenFile"] != "" {
		e.Set("AWS_ROLE_ARN", id["roleArn"])
		e.Set("AWS_WEB_IDENTITY_TOKEN_FILE", id["webIdentityTokenFile"])
		e.Set("AWS_ROLE_SESSION_NAME", sessionName(id["sessionName"]))
	}
	for svc, u := range e.B.Endpoints {
		e.Set("AWS_ENDPOINT_URL_"+strings.ToUpper(svc), u)
	}
	for _, k := range [][2]string{{"accessKeyIdEnv", "AWS_ACCESS_KEY_ID"}, {"secretAccessKeyEnv", "AWS_SECRET_ACCESS_KEY"}, {"sessionTokenEnv", "AWS_SESSION_TOKEN"}} {
		if err := e.Secret(k[0], k[1]); err != nil {
			return err
		}
	}
	return nil
}

func sessionName(s string) string {
	if s == "" {
		return "rollout"
	}
	return s
}

// Temporary gives a role chain's Terraform runs the chain's temporary credentials, refreshed
// before they expire, in place of the static ones.
func (Cloud) Temporary(ctx context.Context, m *clouds.Manager, b *config.Boundary, t *config.Target, e *clouds.Env) error {
	if len(b.AssumeRole) == 0 {
		return nil
	}
	cfg, err := Config(ctx, m, b.Name, t.Region)
	if err != nil {
		return err
	}
	c, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("boundary %s: assume role chain: %w", b.Name, err)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME"} {
		delete(e.Vars, k)
	}
	e.Vars["AWS_CONFIG_FILE"], e.Vars["AWS_SHARED_CREDENTIALS_FILE"] = os.DevNull, os.DevNull
	e.Vars["AWS_ACCESS_KEY_ID"], e.Vars["AWS_SECRET_ACCESS_KEY"], e.Vars["AWS_SESSION_TOKEN"] = c.AccessKeyID, c.SecretAccessKey, c.SessionToken
	e.Secrets = append(e.Secrets, c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	return nil
}
