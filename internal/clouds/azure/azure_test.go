package azure_test

import (
	"testing"

	"github.com/rollout-dev/rollout/internal/clouds/azure"
	"github.com/rollout-dev/rollout/internal/clouds/conformance"
	"github.com/rollout-dev/rollout/internal/testsupport/azuretest"
)

const boundaries = `  azure: {cloud: azure, environment: public, identity: {tenantId: t-0, clientId: c-0, managedIdentity: "true"}}
  azure-usgov:
    cloud: azure
    environment: usgovernment
    identity: {tenantId: t-1, clientId: c-1, federatedTokenFile: /var/run/token, subscriptionId: s-1}
  azure-china:
    cloud: azure
    environment: china
    identity: {tenantId: t-2, clientId: c-2, clientSecretEnv: AZ_CN_SECRET}
  azure-sov:
    cloud: azure
    environment: custom
    regions: [francecentral-sov]
    endpoints:
      authorityHost: "https://login.sovcloud.example/"
      resourceManager: "https://management.sovcloud.example/"
      audience: "https://management.core.sovcloud.example/"
    identity: {tenantId: t-3, clientId: c-3, clientSecretEnv: SOV_SECRET}
`

const targets = `- name: eus
  boundary: azure
  region: eastus
  backend: {type: azurerm, config: {storage_account_name: st, container_name: tf, key: eus}}
- name: gov-va
  boundary: azure-usgov
  region: usgovvirginia
  vars: {azure_environment: usgovernment}
  backend: {type: azurerm, config: {environment: usgovernment, storage_account_name: st, container_name: tf, key: gov-va}}
- name: cn-n3
  boundary: azure-china
  region: chinanorth3
  backend: {type: azurerm, config: {environment: china, storage_account_name: st, container_name: tf, key: cn-n3, endpoint: "https://st.blob.core.chinacloudapi.cn"}}
- name: sov-1
  boundary: azure-sov
  region: francecentral-sov
  backend: {type: azurerm, config: {metadata_host: management.sovcloud.example, storage_account_name: st, container_name: tf, key: sov-1}}
`

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Fixture{
		Cloud: azure.Cloud{}, Boundaries: boundaries, Targets: targets,
		Sovereign: []string{"azure-usgov", "azure-china", "azure-sov"},
		Env:       map[string]string{"AZ_CN_SECRET": "china-client-secret", "SOV_SECRET": "sov-client-secret"},
		WantEnv: map[string]map[string]string{
			"eus":    {"ARM_ENVIRONMENT": "public", "ARM_USE_MSI": "true", "ARM_TENANT_ID": "t-0"},
			"gov-va": {"ARM_ENVIRONMENT": "usgovernment", "ARM_USE_OIDC": "true", "ARM_OIDC_TOKEN_FILE_PATH": "/var/run/token", "ARM_SUBSCRIPTION_ID": "s-1"},
			"cn-n3":  {"ARM_ENVIRONMENT": "china", "ARM_CLIENT_SECRET": "china-client-secret", "ARM_CLIENT_ID": "c-2"},
			"sov-1":  {"ARM_METADATA_HOSTNAME": "management.sovcloud.example", "ARM_CLIENT_SECRET": "sov-client-secret"},
		},
		Prefixes: []string{"ARM_"},
		Refused: []conformance.Refusal{
			{Name: "public region in Azure Government", Old: "region: usgovvirginia", New: "region: eastus",
				Key: "targets[gov-va].region", Msg: "is a region of Azure public, but boundary azure-usgov is Azure usgovernment"},
			{Name: "Government region in Azure China", Old: "region: chinanorth3", New: "region: usgovtexas",
				Key: "targets[cn-n3].region", Msg: "is a region of Azure usgovernment"},
			{Name: "a region the custom cloud does not list", Old: "region: francecentral-sov", New: "region: westeurope",
				Key: "targets[sov-1].region", Msg: "is not one of boundary azure-sov's regions"},
			{Name: "unknown environment", Old: "environment: china", New: "environment: mars",
				Key: "boundaries.azure-china.environment", Msg: `unknown Azure environment "mars"`},
			{Name: "public endpoint for China state", Old: "https://st.blob.core.chinacloudapi.cn", New: "https://st.blob.core.windows.net",
				Key: "targets[cn-n3].backend.config.endpoint", Msg: "endpoint of Azure public"},
			{Name: "state account of another cloud", Old: "environment: usgovernment, storage", New: "environment: public, storage",
				Key: "targets[gov-va].backend.config.environment", Msg: "state account is in Azure public"},
			{Name: "custom cloud without its endpoints", Old: `audience: "https://management.core.sovcloud.example/"`, New: `x: "https://management.core.sovcloud.example/"`,
				Key: "boundaries.azure-sov.endpoints", Msg: "needs endpoints.audience"},
			{Name: "metadata host as a URL", Old: `resourceManager: "https://management.sovcloud.example/"`, New: "resourceManager: \"https://management.sovcloud.example/\"\n      metadataHost: \"https://management.sovcloud.example/\"",
				Key: "boundaries.azure-sov.endpoints.metadataHost", Msg: "want a host name"},
			{Name: "two credentials", Old: "clientSecretEnv: AZ_CN_SECRET}", New: "clientSecretEnv: AZ_CN_SECRET, managedIdentity: \"true\"}",
				Key: "boundaries.azure-china.identity.clientSecretEnv", Msg: "one credential per boundary"},
			{Name: "a variable handing the provider another cloud", Old: "vars: {azure_environment: usgovernment}", New: "vars: {azure_environment: public}",
				Key: "targets[gov-va].vars.azure_environment", Msg: "boundary azure-usgov is usgovernment"},
		},
		Preflight: func(t *testing.T) conformance.StandIn {
			srv := azuretest.New(t, "tenant-sov", "https://management.core.sovcloud.example/")
			return conformance.StandIn{
				Boundaries: `  sov:
    cloud: azure
    environment: custom
    regions: [francecentral-sov]
    endpoints: {authorityHost: "` + srv.URL + `/", resourceManager: "https://management.sovcloud.example/", audience: "https://management.core.sovcloud.example/"}
    identity: {tenantId: tenant-sov, clientId: app-1, clientSecretEnv: SOV_SECRET}
`,
				Targets:  "- {name: sov-1, boundary: sov, region: francecentral-sov, backend: {type: azurerm, config: {key: k}}}\n",
				Boundary: "sov", Env: map[string]string{"SOV_SECRET": "the-right-secret"}, Client: srv.Client(),
				Principal: "app-1",
				Refuse:    func() { srv.Tenant.Store("tenant-commercial") },
			}
		},
	})
}
