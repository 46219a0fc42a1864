package aws

import (
	"fmt"
	"strings"

	"github.com/rollout-dev/rollout/internal/clouds"
)

var starterRegions = map[string]string{"aws": "us-east-1", "aws-us-gov": "us-gov-west-1", "aws-cn": "cn-north-1", "aws-eusc": "eusc-de-east-1"}

// Scopes are the partitions a starter fleet may name.
func (Cloud) Scopes() []string { return []string{"aws", "aws-us-gov", "aws-cn", "aws-eusc"} }

// StarterBoundary is a boundary of partition scope: keys read from variables named after it.
func (Cloud) StarterBoundary(scope, name string) clouds.StarterBoundary {
	env := strings.ToUpper(strings.NewReplacer("-", "_").Replace(name))
	return clouds.StarterBoundary{
		YAML: []string{"cloud: aws", "partition: " + scope,
			fmt.Sprintf("identity: {accessKeyIdEnv: %s_ACCESS_KEY_ID, secretAccessKeyEnv: %s_SECRET_ACCESS_KEY}  # or roleArn + webIdentityTokenFile from the CI runner", env, env),
			fmt.Sprintf("# backend: {type: s3, config: {bucket: BUCKET, key: \"stamps/{{ .Target.Name }}.tfstate\", region: %s, use_lockfile: true}}", starterRegions[scope])},
		Region: starterRegions[scope],
		Todo:   fmt.Sprintf("set %s_ACCESS_KEY_ID and %s_SECRET_ACCESS_KEY (keys of partition %s), or give identity.roleArn", env, env, scope),
	}
}

var _ clouds.Starter = Cloud{}
