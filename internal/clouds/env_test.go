package clouds_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/clouds/catalog"
)

// runner is a CI runner's environment holding credentials of several clouds at once.
var runner = map[string]string{
	"PATH": "/usr/bin", "HOME": "/home/ci", "LANG": "C.UTF-8",
	"AWS_ACCESS_KEY_ID": "AKIACOMMERCIALAMBIENT", "AWS_SECRET_ACCESS_KEY": "ambient-commercial-secret", "AWS_PROFILE": "default",
	"CN_KEY": "AKIACHINAKEY0001", "CN_SECRET": "china-secret-value",
	"AZ_CN_SECRET":      "azure-china-client-secret",
	"ARM_CLIENT_SECRET": "ambient-azure-public-secret", "GOOGLE_APPLICATION_CREDENTIALS": "/home/ci/commercial.json",
	"BUILD_ID": "42", "EXTRA_TOOL_HOME": "/opt/tool",
}

func lookupIn(env map[string]string) clouds.Lookup {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestEnvHoldsOneBoundaryAndNoAmbientCredentials(t *testing.T) {
	c := fleet()
	c.Defaults.PassEnv = []string{"BUILD_ID"}
	c.Boundaries["aws-us-gov"].PassEnv = []string{"EXTRA_TOOL_HOME"}
	defer clouds.SetEnviron(func(clouds.Lookup) []string { return nil })()
	m := &clouds.Manager{Catalog: catalog.All, Config: c, Lookup: lookupIn(runner)}
	cases := map[string]map[string]string{
		"gov-w1": {"AWS_REGION": "us-gov-west-1", "AWS_ROLE_ARN": "arn:aws-us-gov:iam::123456789012:role/deployer",
			"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/aws-token", "AWS_ROLE_SESSION_NAME": "rollout", "AWS_CONFIG_FILE": os.DevNull,
			"AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_ENDPOINT_URL_STS": "", "EXTRA_TOOL_HOME": "/opt/tool", "BUILD_ID": "42", "PATH": "/usr/bin"},
		"gov-va": {"ARM_ENVIRONMENT": "usgovernment", "ARM_TENANT_ID": "t-1", "ARM_CLIENT_ID": "c-1", "ARM_USE_OIDC": "true",
			"ARM_OIDC_TOKEN_FILE_PATH": "/var/run/token", "EXTRA_TOOL_HOME": ""},
		"cn-n3":  {"ARM_ENVIRONMENT": "china", "ARM_CLIENT_SECRET": "azure-china-client-secret"},
		"sov-1":  {"ARM_METADATA_HOSTNAME": "management.sovcloud.example", "ARM_ENVIRONMENT": "", "ARM_USE_MSI": "true"},
		"s3ns-1": {"GOOGLE_CLOUD_UNIVERSE_DOMAIN": "s3nsapis.fr", "GOOGLE_APPLICATION_CREDENTIALS": "/etc/s3ns/wif.json", "GOOGLE_REGION": "u-france-east1"},
		"gcp-1":  {"GOOGLE_CLOUD_UNIVERSE_DOMAIN": "googleapis.com", "GOOGLE_APPLICATION_CREDENTIALS": ""},
		"dev":    {"PATH": "/usr/bin", "HOME": "/home/ci", "BUILD_ID": "42"},
	}
	for target, want := range cases {
		e, err := m.Env(context.Background(), target)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		for k, v := range want {
			if got, ok := e.Vars[k]; v == "" && ok || v != "" && got != v {
				t.Errorf("%s: %s = %q (set: %v), want %q", target, k, got, ok, v)
			}
		}
		for k, v := range e.Vars {
			for _, ambient := range []string{"AKIACOMMERCIALAMBIENT", "ambient-commercial-secret", "ambient-azure-public-secret", "/home/ci/commercial.json"} {
				if v == ambient {
					t.Errorf("%s: the runner's %s leaked in as %s", target, ambient, k)
				}
			}
			if k == "AWS_PROFILE" {
				t.Errorf("%s: the runner's AWS_PROFILE leaked in", target)
			}
		}
		if target == "cn-n3" && (len(e.Secrets) != 1 || e.Secrets[0] != "azure-china-client-secret") {
			t.Errorf("cn-n3: secrets %v, want the client secret", e.Secrets)
		}
	}
}

func TestEnvNamesAMissingSecretVariable(t *testing.T) {
	m := &clouds.Manager{Catalog: catalog.All, Config: fleet(), Lookup: lookupIn(map[string]string{})}
	_, err := m.Env(context.Background(), "cn-n3")
	if err == nil || !strings.Contains(err.Error(), "boundary azure-china: identity.clientSecretEnv names AZ_CN_SECRET, which is not set") {
		t.Fatalf("got %v", err)
	}
}

func TestRedact(t *testing.T) {
	got := clouds.Redact("error: key AKIAX123 and secret s3cr3t-value refused; abc kept", []string{"AKIAX123", "s3cr3t-value", "abc"})
	if got != "error: key [redacted] and secret [redacted] refused; abc kept" {
		t.Fatal(got)
	}
}

// What a run's boundaries need of this machine is checked before the run is journaled: a secret
// variable an identity names, and identity files. Every problem is named with its boundary and key.
func TestCheckEnvironmentNamesWhatTheMachineLacks(t *testing.T) {
	c := fleet()
	token := t.TempDir() + "/token"
	if err := os.WriteFile(token, []byte("jwt"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Boundaries["aws-us-gov"].Identity["webIdentityTokenFile"] = token
	m := &clouds.Manager{Catalog: catalog.All, Config: c, Lookup: lookupIn(runner)}
	if err := m.CheckEnvironment([]string{"aws-us-gov", "aws-cn", "azure-china", "local"}); err != nil {
		t.Fatalf("a ready machine: %v", err)
	}
	c.Boundaries["aws-us-gov"].Identity["webIdentityTokenFile"] = token + ".missing"
	m = &clouds.Manager{Catalog: catalog.All, Config: c, Lookup: lookupIn(map[string]string{"CN_KEY": "k"})}
	err := m.CheckEnvironment([]string{"aws-us-gov", "aws-cn", "azure-china"})
	for _, want := range []string{"boundary aws-us-gov: identity.webIdentityTokenFile: open " + token + ".missing",
		"boundary aws-cn: identity.secretAccessKeyEnv names CN_SECRET, which is not set", "boundary azure-china: identity.clientSecretEnv names AZ_CN_SECRET"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in: %v", want, err)
		}
	}
}
