package azure

import (
	"regexp"
	"slices"
)

// environment is one Azure cloud: Microsoft Entra authority, Resource Manager endpoint and audience,
// the name the azurerm provider and backend give it (ARM_ENVIRONMENT), and its regions.
type environment struct {
	Name            string // public | usgovernment | china
	AuthorityHost   string
	ResourceManager string
	Audience        string
	Domains         []string // DNS suffixes of its endpoints
	Regions         []string // nil: any region not owned by another cloud
}

var environments = []*environment{
	{Name: "public", AuthorityHost: "https://login.microsoftonline.com/", ResourceManager: "https://management.azure.com/",
		Audience: "https://management.core.windows.net/",
		Domains:  []string{"microsoftonline.com", "azure.com", "windows.net", "azure.net", "microsoft.com", "azurecr.io", "azmk8s.io", "azure-api.net"}},
	{Name: "usgovernment", AuthorityHost: "https://login.microsoftonline.us/", ResourceManager: "https://management.usgovcloudapi.net/",
		Audience: "https://management.core.usgovcloudapi.net/",
		Domains:  []string{"microsoftonline.us", "usgovcloudapi.net", "azure.us", "azurecr.us"},
		Regions:  []string{"usgovvirginia", "usgovtexas", "usgovarizona", "usdodeast", "usdodcentral"}},
	{Name: "china", AuthorityHost: "https://login.chinacloudapi.cn/", ResourceManager: "https://management.chinacloudapi.cn/",
		Audience: "https://management.core.chinacloudapi.cn/",
		Domains:  []string{"chinacloudapi.cn", "partner.microsoftonline.cn", "azure.cn", "azurecr.cn"},
		Regions:  []string{"chinaeast", "chinaeast2", "chinaeast3", "chinanorth", "chinanorth2", "chinanorth3"}},
}

func environmentByName(name string) *environment {
	for _, c := range environments {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// environmentOfRegion is the sovereign Azure cloud that owns the region, or nil (public or unknown).
func environmentOfRegion(region string) *environment {
	for _, c := range environments {
		if slices.Contains(c.Regions, region) {
			return c
		}
	}
	return nil
}

var regionRE = regexp.MustCompile(`^[a-z]+[a-z0-9]*$`)
