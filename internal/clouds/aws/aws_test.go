package aws_test

import (
	"testing"

	"github.com/rollout-dev/rollout/internal/clouds/aws"
	"github.com/rollout-dev/rollout/internal/clouds/conformance"
	"github.com/rollout-dev/rollout/internal/testsupport/ststest"
)

const boundaries = `  aws: {cloud: aws, partition: aws, identity: {profile: commercial}}
  aws-us-gov:
    cloud: aws
    partition: aws-us-gov
    identity: {accessKeyIdEnv: GOV_KEY, secretAccessKeyEnv: GOV_SECRET, accountId: "123456789012"}
  aws-cn:
    cloud: aws
    partition: aws-cn
    identity:
      webIdentityTokenFile: /var/run/aws-token
      roleArn: arn:aws-cn:iam::210987654321:role/deployer
  aws-eusc:
    cloud: aws
    partition: aws-eusc
    identity: {profile: eusc}
    endpoints: {sts: "https://sts.eusc-de-east-1.amazonaws.eu"}
`

const targets = `- name: use1
  boundary: aws
  region: us-east-1
  backend: {type: s3, config: {bucket: state, key: use1, region: us-east-1}}
- name: gov-w1
  boundary: aws-us-gov
  region: us-gov-west-1
  vars: {aws_partition: aws-us-gov}
  backend: {type: s3, config: {bucket: gov-state, key: gov-w1, region: us-gov-west-1, sts_endpoint: "https://sts.us-gov-west-1.amazonaws.com"}}
- name: cn-n1
  boundary: aws-cn
  region: cn-north-1
  backend: {type: s3, config: {bucket: cn-state, key: cn-n1, region: cn-north-1}}
- name: eusc-1
  boundary: aws-eusc
  region: eusc-de-east-1
  backend: {type: s3, config: {bucket: eusc-state, key: eusc-1, region: eusc-de-east-1}}
`

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Fixture{
		Cloud: aws.Cloud{}, Boundaries: boundaries, Targets: targets,
		Sovereign: []string{"aws-us-gov", "aws-cn", "aws-eusc"},
		Env:       map[string]string{"GOV_KEY": "AKIAGOVKEY000001", "GOV_SECRET": "gov-secret-value"},
		WantEnv: map[string]map[string]string{
			"use1":   {"AWS_PROFILE": "commercial", "AWS_REGION": "us-east-1"},
			"gov-w1": {"AWS_ACCESS_KEY_ID": "AKIAGOVKEY000001", "AWS_SECRET_ACCESS_KEY": "gov-secret-value", "AWS_REGION": "us-gov-west-1", "AWS_CONFIG_FILE": "/dev/null"},
			"cn-n1":  {"AWS_ROLE_ARN": "arn:aws-cn:iam::210987654321:role/deployer", "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/aws-token"},
			"eusc-1": {"AWS_ENDPOINT_URL_STS": "https://sts.eusc-de-east-1.amazonaws.eu", "AWS_REGION": "eusc-de-east-1"},
		},
		Prefixes: []string{"AWS_"},
		Refused: []conformance.Refusal{
			{Name: "commercial region in GovCloud", Old: "region: us-gov-west-1", New: "region: us-east-1",
				Key: "targets[gov-w1].region", Msg: "partition aws, but boundary aws-us-gov is partition aws-us-gov"},
			{Name: "unknown partition", Old: "partition: aws-eusc", New: "partition: aws-mars",
				Key: "boundaries.aws-eusc.partition", Msg: `unknown AWS partition "aws-mars"`},
			{Name: "role of another partition", Old: "roleArn: arn:aws-cn:", New: "roleArn: arn:aws:",
				Key: "boundaries.aws-cn.identity.roleArn", Msg: "is in partition aws, but this boundary is partition aws-cn"},
			{Name: "account id", Old: `accountId: "123456789012"`, New: `accountId: "1234"`,
				Key: "boundaries.aws-us-gov.identity.accountId", Msg: "12-digit"},
			{Name: "China endpoint in the EU sovereign cloud", Old: `sts: "https://sts.eusc-de-east-1.amazonaws.eu"`, New: `sts: "https://sts.cn-north-1.amazonaws.com.cn"`,
				Key: "boundaries.aws-eusc.endpoints.sts", Msg: "partition aws-cn"},
			{Name: "commercial STS for GovCloud state", Old: "https://sts.us-gov-west-1.amazonaws.com", New: "https://sts.amazonaws.com",
				Key: "targets[gov-w1].backend.config.sts_endpoint", Msg: "commercial AWS endpoint"},
			{Name: "state bucket in another partition", Old: "key: cn-n1, region: cn-north-1", New: "key: cn-n1, region: eu-west-1",
				Key: "targets[cn-n1].backend.config.region", Msg: "partition aws, but boundary aws-cn"},
			{Name: "a variable handing the provider another partition", Old: "vars: {aws_partition: aws-us-gov}", New: "vars: {aws_partition: aws}",
				Key: "targets[gov-w1].vars.aws_partition", Msg: "boundary aws-us-gov is aws-us-gov"},
			{Name: "two sources of credentials", Old: "identity: {profile: eusc}", New: "identity: {profile: eusc, accessKeyIdEnv: K, secretAccessKeyEnv: S}",
				Key: "boundaries.aws-eusc.identity.accessKeyIdEnv", Msg: "one source of credentials"},
		},
		Preflight: func(t *testing.T) conformance.StandIn {
			sts := ststest.New(t)
			sts.Arns["AKIAGOVKEY000001"] = "arn:aws-us-gov:iam::123456789012:user/deployer"
			return conformance.StandIn{
				Boundaries: `  gov: {cloud: aws, partition: aws-us-gov, identity: {accessKeyIdEnv: K, secretAccessKeyEnv: S, accountId: "123456789012"}, endpoints: {sts: "` + sts.URL + `"}}`,
				Targets:    "- {name: gov-1, boundary: gov, region: us-gov-west-1, backend: {type: s3, config: {bucket: b, key: k, region: us-gov-west-1}}}\n",
				Boundary:   "gov", Env: map[string]string{"K": "AKIAGOVKEY000001", "S": "secret"},
				Principal: "arn:aws-us-gov:iam::123456789012:user/deployer",
				Refuse:    func() { sts.Set("AKIAGOVKEY000001", "arn:aws:iam::123456789012:user/deployer") },
			}
		},
	})
}
