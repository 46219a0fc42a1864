package clouds_test

import (
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
)

// fleet is a valid configuration of every kind of boundary, which each case then breaks once.
func fleet() *config.Config {
	b := func(name, cloud string, f func(*config.Boundary)) *config.Boundary {
		x := &config.Boundary{Name: name, Cloud: cloud, Line: 10, Lines: map[string]int{}, Settings: map[string]string{}}
		f(x)
		return x
	}
	return &config.Config{Root: "/fleet", File: "/fleet/rollout.yaml", Boundaries: map[string]*config.Boundary{
		"azure-usgov": b("azure-usgov", "azure", func(x *config.Boundary) {
			x.Settings["environment"] = "usgovernment"
			x.Identity = map[string]string{"tenantId": "t-1", "clientId": "c-1", "federatedTokenFile": "/var/run/token"}
		}),
		"azure-china": b("azure-china", "azure", func(x *config.Boundary) {
			x.Settings["environment"] = "china"
			x.Identity = map[string]string{"tenantId": "t-2", "clientId": "c-2", "clientSecretEnv": "AZ_CN_SECRET"}
		}),
		"azure-sov": b("azure-sov", "azure", func(x *config.Boundary) {
			x.Settings["environment"] = "custom"
			x.Endpoints = map[string]string{"authorityHost": "https://login.sovcloud.example/", "resourceManager": "https://management.sovcloud.example/",
				"audience": "https://management.core.sovcloud.example/"}
			x.Regions = []string{"francecentral-sov"}
			x.Identity = map[string]string{"tenantId": "t-3", "clientId": "c-3", "managedIdentity": "true"}
		}),
		"aws": b("aws", "aws", func(x *config.Boundary) {
			x.Settings["partition"] = "aws"
			x.Identity = map[string]string{"profile": "commercial"}
		}),
		"aws-us-gov": b("aws-us-gov", "aws", func(x *config.Boundary) {
			x.Settings["partition"] = "aws-us-gov"
			x.Identity = map[string]string{"roleArn": "arn:aws-us-gov:iam::123456789012:role/deployer", "webIdentityTokenFile": "/var/run/aws-token", "accountId": "123456789012"}
		}),
		"aws-cn": b("aws-cn", "aws", func(x *config.Boundary) {
			x.Settings["partition"] = "aws-cn"
			x.Identity = map[string]string{"accessKeyIdEnv": "CN_KEY", "secretAccessKeyEnv": "CN_SECRET"}
			x.AssumeRole = []config.AssumeRole{{RoleArn: "arn:aws-cn:iam::210987654321:role/deployer", ExternalID: "x"}}
		}),
		"aws-eusc": b("aws-eusc", "aws", func(x *config.Boundary) {
			x.Settings["partition"] = "aws-eusc"
			x.Identity = map[string]string{"profile": "eusc"}
		}),
		"gcp": b("gcp", "gcp", func(x *config.Boundary) {}),
		"gcp-s3ns": b("gcp-s3ns", "gcp", func(x *config.Boundary) {
			x.Settings["universeDomain"] = "s3nsapis.fr"
			x.Regions = []string{"u-france-east1"}
			x.Identity = map[string]string{"credentialsFile": "/etc/s3ns/wif.json"}
		}),
		"local": b("local", "local", func(x *config.Boundary) {}),
	}, Targets: []*config.Target{
		{Name: "gov-va", Boundary: "azure-usgov", Region: "usgovvirginia", File: "environments/azure/gov.yaml", Line: 3, Lines: map[string]int{"region": 5},
			Backend: &config.Backend{Type: "azurerm", Config: map[string]any{"environment": "usgovernment", "storage_account_name": "tfstate"}}},
		{Name: "cn-n3", Boundary: "azure-china", Region: "chinanorth3", File: "environments/azure/china.yaml", Line: 3,
			Backend: &config.Backend{Type: "azurerm", Config: map[string]any{"environment": "china", "storage_account_name": "tfstatecn"}}},
		{Name: "sov-1", Boundary: "azure-sov", Region: "francecentral-sov", File: "environments/azure/sov.yaml", Line: 3,
			Backend: &config.Backend{Type: "azurerm", Config: map[string]any{"metadata_host": "management.sovcloud.example"}}},
		{Name: "use1", Boundary: "aws", Region: "us-east-1", File: "environments/aws/commercial.yaml", Line: 3,
			Backend: &config.Backend{Type: "local"}}, // local state on purpose
		{Name: "gov-w1", Boundary: "aws-us-gov", Region: "us-gov-west-1", File: "environments/aws/gov.yaml", Line: 3, Lines: map[string]int{"backend.config.region": 9},
			Backend: &config.Backend{Type: "s3", Config: map[string]any{"bucket": "tf", "key": "gov-w1", "region": "us-gov-west-1",
				"endpoints": map[string]any{"sts": "https://sts.us-gov-west-1.amazonaws.com"}}}},
		{Name: "cn-nw1", Boundary: "aws-cn", Region: "cn-northwest-1", File: "environments/aws/cn.yaml", Line: 3,
			Backend: &config.Backend{Type: "s3", Config: map[string]any{"bucket": "tf", "key": "cn", "region": "cn-northwest-1"}}},
		{Name: "eusc-1", Boundary: "aws-eusc", Region: "eusc-de-east-1", File: "environments/aws/eusc.yaml", Line: 3,
			Backend: &config.Backend{Type: "s3", Config: map[string]any{"bucket": "tf", "key": "eusc-1", "region": "eusc-de-east-1"}}},
		{Name: "gcp-1", Boundary: "gcp", Region: "europe-west4", File: "environments/gcp/gcp.yaml", Line: 3,
			Backend: &config.Backend{Type: "gcs", Config: map[string]any{"bucket": "tf"}}},
		{Name: "s3ns-1", Boundary: "gcp-s3ns", Region: "u-france-east1", File: "environments/gcp/s3ns.yaml", Line: 3,
			Vars:    map[string]any{"universe_domain": "s3nsapis.fr"},
			Backend: &config.Backend{Type: "gcs", Config: map[string]any{"bucket": "tf", "storage_custom_endpoint": "https://storage.s3nsapis.fr/storage/v1/"}}},
		{Name: "dev", Boundary: "local", File: "environments/local.yaml", Line: 3},
	}}
}

// A target of a cloud boundary with no backend of its own and no convention in its boundary would
// keep its state on the build agent: refused, with the way out named.
func TestCloudTargetWithoutABackendIsRefused(t *testing.T) {
	c := fleet()
	c.Target("use1").Backend = nil
	errs := catalog.All.Validate(c)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "targets[use1].backend: is required") || !strings.Contains(errs[0].Error(), "boundaries.aws.backend") {
		t.Fatalf("errors: %v", errs)
	}
}

func TestValidFleetHasNoErrors(t *testing.T) {
	if errs := catalog.All.Validate(fleet()); len(errs) > 0 {
		t.Fatal(errs)
	}
}

func TestRegionAndBackendRules(t *testing.T) {
	target := func(c *config.Config, name string) *config.Target { return c.Target(name) }
	cases := []struct {
		name    string
		breakIt func(c *config.Config)
		want    string
	}{
		{"commercial AWS region in GovCloud", func(c *config.Config) { target(c, "gov-w1").Region = "us-east-1" },
			"environments/aws/gov.yaml:3: targets[gov-w1].region: us-east-1 is a region of partition aws, but boundary aws-us-gov is partition aws-us-gov"},
		{"China region in commercial AWS", func(c *config.Config) { target(c, "use1").Region = "cn-north-1" },
			"targets[use1].region: cn-north-1 is a region of partition aws-cn, but boundary aws is partition aws"},
		{"EUSC region outside aws-eusc", func(c *config.Config) { target(c, "use1").Region = "eusc-de-east-1" },
			"eusc-de-east-1 is a region of partition aws-eusc, but boundary aws is partition aws"},
		{"commercial region in aws-eusc", func(c *config.Config) { target(c, "eusc-1").Region = "eu-central-1" },
			"eu-central-1 is a region of partition aws, but boundary aws-eusc is partition aws-eusc"},
		{"unknown region shape", func(c *config.Config) { target(c, "eusc-1").Region = "mars-1" },
			"mars-1 is not a region of partition aws-eusc"},
		{"public Azure region in Azure Government", func(c *config.Config) { target(c, "gov-va").Region = "eastus" },
			"environments/azure/gov.yaml:5: targets[gov-va].region: eastus is a region of Azure public, but boundary azure-usgov is Azure usgovernment"},
		{"China region in Azure Government", func(c *config.Config) { target(c, "gov-va").Region = "chinanorth3" },
			"chinanorth3 is a region of Azure china, but boundary azure-usgov is Azure usgovernment"},
		{"Government region in Azure public", func(c *config.Config) {
			c.Boundaries["azure-china"].Settings["environment"] = "public"
			c.Boundaries["azure-china"].Identity["clientSecretEnv"] = "X"
			target(c, "cn-n3").Region = "usgovtexas"
		}, "usgovtexas is a region of Azure usgovernment, but boundary azure-china is Azure public"},
		{"region not in a sovereign universe", func(c *config.Config) { target(c, "s3ns-1").Region = "europe-west1" },
			"targets[s3ns-1].region: europe-west1 is not one of boundary gcp-s3ns's regions (u-france-east1)"},
		{"cloud target without region", func(c *config.Config) { target(c, "gcp-1").Region = "" },
			"targets[gcp-1].region: is required for a target in boundary gcp (cloud gcp)"},
		{"S3 state in another partition", func(c *config.Config) { target(c, "gov-w1").Backend.Config["region"] = "us-east-1" },
			"environments/aws/gov.yaml:9: targets[gov-w1].backend.config.region: the state bucket's region us-east-1 is in partition aws, but boundary aws-us-gov is partition aws-us-gov"},
		{"S3 state without region", func(c *config.Config) { delete(target(c, "cn-nw1").Backend.Config, "region") },
			"backend.config.region: is required"},
		{"S3 backend reaching the commercial global STS", func(c *config.Config) {
			target(c, "gov-w1").Backend.Config["endpoints"] = map[string]any{"sts": "https://sts.amazonaws.com"}
		}, "backend.config.endpoints.sts: sts.amazonaws.com names no aws-us-gov region: it is a commercial AWS endpoint"},
		{"S3 backend endpoint of the commercial partition from China", func(c *config.Config) {
			target(c, "cn-nw1").Backend.Config["endpoint"] = "https://s3.cn-northwest-1.amazonaws.com"
		}, "s3.cn-northwest-1.amazonaws.com is in partition aws (amazonaws.com), outside this boundary (partition aws-cn)"},
		{"S3 backend role of another partition", func(c *config.Config) {
			target(c, "gov-w1").Backend.Config["assume_role"] = map[string]any{"role_arn": "arn:aws:iam::123456789012:role/state"}
		}, "role arn:aws:iam::123456789012:role/state is in partition aws, but boundary aws-us-gov is partition aws-us-gov"},
		{"azurerm state in the public cloud", func(c *config.Config) { target(c, "gov-va").Backend.Config["environment"] = "public" },
			"backend.config.environment: the state account is in Azure public, but boundary azure-usgov is Azure usgovernment"},
		{"azurerm state of another custom cloud", func(c *config.Config) {
			target(c, "sov-1").Backend.Config["metadata_host"] = "management.other.example"
		},
			"backend.config.metadata_host: is management.other.example, but boundary azure-sov's metadata host is management.sovcloud.example"},
		{"gcs state in the commercial universe", func(c *config.Config) {
			target(c, "s3ns-1").Backend.Config["storage_custom_endpoint"] = "https://storage.googleapis.com/storage/v1/"
		}, "storage.googleapis.com is in the commercial Google Cloud universe, outside this boundary (universe s3nsapis.fr)"},
		{"gcs state with no endpoint in a sovereign universe", func(c *config.Config) { delete(target(c, "s3ns-1").Backend.Config, "storage_custom_endpoint") },
			"without it the gcs backend reaches storage.googleapis.com"},
		{"state in another cloud", func(c *config.Config) {
			target(c, "gov-va").Backend = &config.Backend{Type: "s3", Config: map[string]any{"region": "us-gov-west-1"}}
		},
			"a s3 backend keeps state in aws, outside boundary azure-usgov (cloud azure)"},
		{"HCP Terraform state for a sovereign target", func(c *config.Config) {
			target(c, "eusc-1").Backend = &config.Backend{Type: "cloud", Config: map[string]any{}}
		},
			"keeps state outside sovereign boundary aws-eusc"},
		{"universe variable of another universe", func(c *config.Config) { target(c, "s3ns-1").Vars["universe_domain"] = "googleapis.com" },
			`vars.universe_domain: is "googleapis.com", but boundary gcp-s3ns is s3nsapis.fr`},
		{"custom Azure cloud pointed at public endpoints", func(c *config.Config) {
			c.Boundaries["azure-sov"].Endpoints["authorityHost"] = "https://login.microsoftonline.com/"
		}, "boundaries.azure-sov.endpoints.authorityHost: login.microsoftonline.com is an endpoint of Azure public, outside this boundary (environment custom)"},
		{"custom universe endpoint in googleapis.com", func(c *config.Config) {
			c.Boundaries["gcp-s3ns"].Endpoints = map[string]string{"token": "https://oauth2.googleapis.com/token"}
		},
			"oauth2.googleapis.com is in the commercial Google Cloud universe"},
		{"GovCloud role of the commercial partition", func(c *config.Config) {
			c.Boundaries["aws-us-gov"].Identity["roleArn"] = "arn:aws:iam::123456789012:role/deployer"
		}, "boundaries.aws-us-gov.identity.roleArn: role arn:aws:iam::123456789012:role/deployer is in partition aws, but this boundary is partition aws-us-gov"},
		{"chained role of another partition", func(c *config.Config) {
			c.Boundaries["aws-cn"].AssumeRole[0].RoleArn = "arn:aws:iam::210987654321:role/deployer"
		},
			"identity.assumeRole[0]: role arn:aws:iam::210987654321:role/deployer is in partition aws"},
		{"unknown partition", func(c *config.Config) { c.Boundaries["aws"].Settings["partition"] = "aws-mars" }, `unknown AWS partition "aws-mars"`},
		{"AWS without its own credentials", func(c *config.Config) { c.Boundaries["aws"].Identity = map[string]string{} },
			"rollout never uses the runner's ambient AWS credentials"},
		{"two Azure credentials", func(c *config.Config) { c.Boundaries["azure-usgov"].Identity["clientSecretEnv"] = "S" },
			"give one credential per boundary"},
		{"sovereign universe with detected credentials", func(c *config.Config) { c.Boundaries["gcp-s3ns"].Identity = nil },
			"a sovereign universe needs identity.credentialsFile"},
		{"http endpoint outside loopback", func(c *config.Config) {
			c.Boundaries["aws-us-gov"].Endpoints = map[string]string{"sts": "http://sts.us-gov-west-1.amazonaws.com"}
		},
			"must be https://"},
		{"network mirror over http", func(c *config.Config) { c.Boundaries["aws-us-gov"].ProviderMirror = "http://mirror.example/" },
			"a network mirror must be an https:// URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fleet()
			tc.breakIt(c)
			errs := catalog.All.Validate(c)
			if len(errs) == 0 || !strings.Contains(errs.Error(), tc.want) {
				t.Fatalf("want an error containing\n  %s\ngot\n  %v", tc.want, errs)
			}
		})
	}
}

func TestLoopbackEndpointsAreAllowedForTests(t *testing.T) {
	c := fleet()
	c.Boundaries["aws-us-gov"].Endpoints = map[string]string{"sts": "http://127.0.0.1:4566"}
	if errs := catalog.All.Validate(c); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// A custom Azure cloud's metadataHost is a host name (ARM_METADATA_HOSTNAME, the backend's
// metadata_host), as the docs show it: it was refused as "want a URL" before.
func TestAzureMetadataHostIsAHostName(t *testing.T) {
	for raw, ok := range map[string]bool{"management.sovcloud.example": true, "127.0.0.1:8443": true,
		"https://management.sovcloud.example/": false, "management.microsoftonline.com": false} {
		c := fleet()
		c.Boundaries["azure-sov"].Endpoints["metadataHost"] = raw
		var errs []string
		for _, e := range catalog.All.Validate(c) {
			if strings.Contains(e.Error(), "endpoints.metadataHost") {
				errs = append(errs, e.Error())
			}
		}
		if ok && len(errs) > 0 || !ok && len(errs) == 0 {
			t.Errorf("metadataHost %q: %v (want accepted: %v)", raw, errs, ok)
		}
	}
}
