package clouds

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/rollout-dev/rollout/internal/config"
)

// awsConfig is an SDK configuration built from the boundary alone: its region, its credentials and
// its STS endpoint. Nothing of the runner's ambient AWS configuration (environment keys, default
// profile, endpoint overrides) is read, except a profile the boundary names.
func (m *Manager) awsConfig(ctx context.Context, b *config.Boundary, region string) (aws.Config, error) {
	if region == "" {
		return aws.Config{}, fmt.Errorf("boundary %s: no region to check in (give a target a region)", b.Name)
	}
	cfg := aws.Config{Region: region, HTTPClient: m.client(), Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
	id := b.Identity
	lookup := m.lookup()
	switch {
	case id["profile"] != "":
		opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region), awsconfig.WithSharedConfigProfile(id["profile"])}
		if m.Client != nil { // else the SDK's own client, which honours a profile's ca_bundle
			opts = append(opts, awsconfig.WithHTTPClient(m.Client))
		}
		if f := id["configFile"]; f != "" {
			opts = append(opts, awsconfig.WithSharedConfigFiles([]string{f}))
		}
		if f := id["sharedCredentialsFile"]; f != "" {
			opts = append(opts, awsconfig.WithSharedCredentialsFiles([]string{f}))
		}
		lc, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return aws.Config{}, fmt.Errorf("boundary %s: profile %s: %w", b.Name, id["profile"], err)
		}
		cfg.Credentials = lc.Credentials
	case id["accessKeyIdEnv"] != "":
		key, _ := lookup(id["accessKeyIdEnv"])
		secret, _ := lookup(id["secretAccessKeyEnv"])
		var token string
		if n := id["sessionTokenEnv"]; n != "" {
			token, _ = lookup(n)
		}
		if key == "" || secret == "" {
			return aws.Config{}, fmt.Errorf("boundary %s: %s and %s must be set in rollout's environment", b.Name, id["accessKeyIdEnv"], id["secretAccessKeyEnv"])
		}
		cfg.Credentials = credentials.NewStaticCredentialsProvider(key, secret, token)
	case id["webIdentityTokenFile"] != "":
		client := sts.NewFromConfig(cfg, m.stsEndpoint(b))
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(client, id["roleArn"],
			stscreds.IdentityTokenFile(id["webIdentityTokenFile"]), func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = sessionName(id["sessionName"]) }))
	default:
		return aws.Config{}, fmt.Errorf("boundary %s: no AWS credentials configured under identity", b.Name)
	}
	for _, ar := range b.AssumeRole {
		client := sts.NewFromConfig(cfg, m.stsEndpoint(b))
		ar := ar
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(client, ar.RoleArn, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = sessionName(ar.SessionName)
			if ar.ExternalID != "" {
				o.ExternalID = aws.String(ar.ExternalID)
			}
		}))
	}
	return cfg, nil
}

func (m *Manager) stsEndpoint(b *config.Boundary) func(*sts.Options) {
	return func(o *sts.Options) {
		if ep := b.Endpoints["sts"]; ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	}
}

// awsChain is the boundary's role chain credentials, cached (and refreshed by the SDK's cache).
func (m *Manager) awsChain(ctx context.Context, b *config.Boundary, region string) (aws.CredentialsProvider, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.chains[b.Name]; ok {
		return p, nil
	}
	cfg, err := m.awsConfig(ctx, b, region)
	if err != nil {
		return nil, err
	}
	if m.chains == nil {
		m.chains = map[string]aws.CredentialsProvider{}
	}
	m.chains[b.Name] = cfg.Credentials
	return cfg.Credentials, nil
}

func (m *Manager) awsPreflight(ctx context.Context, b *config.Boundary, region string) (Identity, error) {
	cfg, err := m.awsConfig(ctx, b, region)
	if err != nil {
		return Identity{}, err
	}
	out, err := sts.NewFromConfig(cfg, m.stsEndpoint(b)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Identity{}, fmt.Errorf("sts GetCallerIdentity in %s: %w", region, err)
	}
	arn, account := aws.ToString(out.Arn), aws.ToString(out.Account)
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 || parts[0] != "arn" {
		return Identity{}, fmt.Errorf("sts answered with %q, which is not an ARN", arn)
	}
	if parts[1] != b.Partition {
		return Identity{}, fmt.Errorf("the credentials are of partition %s (%s), but boundary %s is partition %s", parts[1], arn, b.Name, b.Partition)
	}
	if want := b.Identity["accountId"]; want != "" && account != want {
		return Identity{}, fmt.Errorf("the credentials are of account %s (%s), but boundary %s is configured for account %s", account, arn, b.Name, want)
	}
	return Identity{Scope: b.Partition, Region: region, Principal: arn, Account: account}, nil
}

// AWSConfig is the SDK configuration of a boundary in one region, built from the boundary alone
// (its credentials and role chain; none of the runner's ambient AWS settings), for other AWS
// clients of rollout (CloudWatch gates). The SDK's own retries are off: callers retry.
func (m *Manager) AWSConfig(ctx context.Context, boundary, region string) (aws.Config, *config.Boundary, error) {
	b, err := m.boundary(boundary)
	if err != nil {
		return aws.Config{}, nil, err
	}
	if b.Cloud != "aws" {
		return aws.Config{}, nil, fmt.Errorf("boundary %s is %s, not aws", b.Name, b.Cloud)
	}
	// One configuration (and so one credentials cache) per boundary and region: a ring of many
	// targets does not assume its roles once per target.
	m.mu.Lock()
	defer m.mu.Unlock()
	key := b.Name + "\x00" + region
	if cfg, ok := m.awsCfg[key]; ok {
		return cfg, b, nil
	}
	cfg, err := m.awsConfig(ctx, b, region)
	if err != nil {
		return cfg, b, err
	}
	cfg.Credentials = aws.NewCredentialsCache(cfg.Credentials)
	if m.awsCfg == nil {
		m.awsCfg = map[string]aws.Config{}
	}
	m.awsCfg[key] = cfg
	return cfg, b, nil
}
