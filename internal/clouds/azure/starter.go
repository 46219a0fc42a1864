package azure

import (
	"fmt"

	"github.com/rollout-dev/rollout/internal/clouds"
)

var starterRegions = map[string]string{"public": "westeurope", "usgovernment": "usgovvirginia", "china": "chinanorth3"}

// Scopes are the Azure environments a starter fleet may name.
func (Cloud) Scopes() []string { return []string{"public", "usgovernment", "china"} }

// StarterBoundary is a boundary of environment scope, its identity left for a person to fill in.
func (Cloud) StarterBoundary(scope, name string) clouds.StarterBoundary {
	return clouds.StarterBoundary{
		YAML: []string{"cloud: azure", "environment: " + scope,
			"identity:  # the deployer's Entra ID application in this environment (fill in)",
			"  tenantId: 00000000-0000-0000-0000-000000000000",
			"  clientId: 00000000-0000-0000-0000-000000000000",
			"  subscriptionId: 00000000-0000-0000-0000-000000000000",
			"  federatedTokenFile: /var/run/secrets/azure/tokens/azure-identity-token  # or clientSecretEnv: NAME",
			fmt.Sprintf("# backend: {type: azurerm, config: {environment: %s, resource_group_name: RG, storage_account_name: ACCOUNT, container_name: tfstate, key: \"{{ .Target.Name }}.tfstate\"}}", scope)},
		Region: starterRegions[scope],
		Todo:   fmt.Sprintf("fill in boundaries.%s.identity (tenant, client, subscription of Azure %s)", name, scope),
	}
}

var _ clouds.Starter = Cloud{}
