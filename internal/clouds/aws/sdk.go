package aws

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/config"
)

// sdkConfig is an SDK configuration built from the boundary alone: its region, its credentials and
// its STS endpoint. Nothing of the runner's ambient AWS configuration (environment keys, default
// profile, endpoint overrides) is read, except a profile the boundary names.
func sdkConfig(ctx context.Context, m *clouds.Manager, b *config.Boundary, region string) (aws.Config, error) {
	if region == "" {
		return aws.Config{}, fmt.Errorf("boundary %s: no region to check in (give a target a region)", b.Name)
	}
	cfg := aws.Config{Region: region, HTTPClient: m.HTTPClient(), Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
	id := b.Identity
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
		key, _ := m.LookupEnv(id["accessKeyIdEnv"])
		secret, _ := m.LookupEnv(id["secretAccessKeyEnv"])
		var token string
		if n := id["sessionTokenEnv"]; n != "" {
			token, _ = m.LookupEnv(n)
		}
		if key == "" || secret == "" {
			return aws.Config{}, fmt.Errorf("boundary %s: %s and %s must be set in rollout's environment", b.Name, id["accessKeyIdEnv"], id["secretAccessKeyEnv"])
		}
		cfg.Credentials = credentials.NewStaticCredentialsProvider(key, secret, token)
	case id["webIdentityTokenFile"] != "":
		client := sts.NewFromConfig(cfg, stsEndpoint(b))
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(client, id["roleArn"],
			stscreds.IdentityTokenFile(id["webIdentityTokenFile"]), func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = sessionName(id["sessionName"]) }))
	default:
		return aws.Config{}, fmt.Errorf("boundary %s: no AWS credentials configured under identity", b.Name)
	}
	for _, ar := range b.AssumeRole {
		client := sts.NewFromConfig(cfg, stsEndpoint(b))
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(client, ar.RoleArn, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = sessionName(ar.SessionName)
			if ar.ExternalID != "" {
				o.ExternalID = aws.String(ar.ExternalID)
			}
		}))
	}
	return cfg, nil
}

func stsEndpoint(b *config.Boundary) func(*sts.Options) {
	return func(o *sts.Options) {
		if ep := b.Endpoints["sts"]; ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	}
}

// Preflight calls STS GetCallerIdentity on the partition's regional endpoint and checks the
// partition and account of the answer.
func (Cloud) Preflight(ctx context.Context, m *clouds.Manager, b *config.Boundary, region string) (clouds.Identity, error) {
	cfg, err := sdkConfig(ctx, m, b, region)
	if err != nil {
		return clouds.Identity{}, err
	}
	out, err := sts.NewFromConfig(cfg, stsEndpoint(b)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return clouds.Identity{}, fmt.Errorf("sts GetCallerIdentity in %s: %w", region, err)
	}
	arn, account := aws.ToString(out.Arn), aws.ToString(out.Account)
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 || parts[0] != "arn" {
		return clouds.Identity{}, fmt.Errorf("sts answered with %q, which is not an ARN", arn)
	}
	if parts[1] != Partition(b) {
		return clouds.Identity{}, fmt.Errorf("the credentials are of partition %s (%s), but boundary %s is partition %s", parts[1], arn, b.Name, Partition(b))
	}
	if want := b.Identity["accountId"]; want != "" && account != want {
		return clouds.Identity{}, fmt.Errorf("the credentials are of account %s (%s), but boundary %s is configured for account %s", account, arn, b.Name, want)
	}
	return clouds.Identity{Scope: Partition(b), Region: region, Principal: arn, Account: account}, nil
}

// Config is the SDK configuration of an AWS boundary in one region, built from the boundary alone
// (its credentials and role chain; none of the runner's ambient AWS settings), for rollout's AWS
// clients (CloudWatch gates, a role chain's Terraform runs). One per boundary and region, so one
// credentials cache: a ring of many targets does not assume its roles once per target. The SDK's
// own retries are off: callers retry.
func Config(ctx context.Context, m *clouds.Manager, boundary, region string) (aws.Config, error) {
	b, err := m.Boundary(boundary)
	if err != nil {
		return aws.Config{}, err
	}
	if b.Cloud != Name {
		return aws.Config{}, fmt.Errorf("boundary %s is %s, not %s", b.Name, b.Cloud, Name)
	}
	v, err := m.Shared(Name+"\x00"+b.Name+"\x00"+region, func() (any, error) {
		cfg, err := sdkConfig(ctx, m, b, region)
		if err != nil {
			return nil, err
		}
		cfg.Credentials = aws.NewCredentialsCache(cfg.Credentials)
		return cfg, nil
	})
	if err != nil {
		return aws.Config{}, err
	}
	return v.(aws.Config), nil
}
