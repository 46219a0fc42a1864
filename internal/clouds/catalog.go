// Package clouds knows each cloud boundary: its endpoints, regions, identity and rules. It checks
// a fleet's targets and backends against their boundaries, proves a boundary's identity with the
// cloud's own SDK (preflight), and builds the exact environment a Terraform run of one target sees.
package clouds

import (
	"regexp"
	"slices"
	"strings"

	"github.com/rollout-dev/rollout/internal/config"
)

// awsPartition is one AWS partition: its own regions, DNS suffix and ARN prefix. Facts from the
// AWS SDK's partitions.json (aws-sdk-go-v2 internal/endpoints/awsrulesfn).
type awsPartition struct {
	ID        string
	RegionRE  *regexp.Regexp
	DNSSuffix string
	Regions   []string // known today; a region matching RegionRE is accepted too (new regions open)
	Sovereign bool     // not the commercial partition
}

var awsPartitions = []*awsPartition{
	{ID: "aws", RegionRE: regexp.MustCompile(`^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$`), DNSSuffix: "amazonaws.com",
		Regions: []string{"af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-south-2",
			"ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
			"ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2",
			"eu-west-3", "il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2"}},
	{ID: "aws-us-gov", RegionRE: regexp.MustCompile(`^us-gov-\w+-\d+$`), DNSSuffix: "amazonaws.com", Sovereign: true,
		Regions: []string{"us-gov-east-1", "us-gov-west-1"}},
	{ID: "aws-cn", RegionRE: regexp.MustCompile(`^cn-\w+-\d+$`), DNSSuffix: "amazonaws.com.cn", Sovereign: true,
		Regions: []string{"cn-north-1", "cn-northwest-1"}},
	{ID: "aws-eusc", RegionRE: regexp.MustCompile(`^eusc-(de)-\w+-\d+$`), DNSSuffix: "amazonaws.eu", Sovereign: true,
		Regions: []string{"eusc-de-east-1"}},
	{ID: "aws-iso", RegionRE: regexp.MustCompile(`^us-iso-\w+-\d+$`), DNSSuffix: "c2s.ic.gov", Sovereign: true,
		Regions: []string{"us-iso-east-1", "us-iso-west-1"}},
	{ID: "aws-iso-b", RegionRE: regexp.MustCompile(`^us-isob-\w+-\d+$`), DNSSuffix: "sc2s.sgov.gov", Sovereign: true,
		Regions: []string{"us-isob-east-1", "us-isob-west-1"}},
	{ID: "aws-iso-e", RegionRE: regexp.MustCompile(`^eu-isoe-\w+-\d+$`), DNSSuffix: "cloud.adc-e.uk", Sovereign: true,
		Regions: []string{"eu-isoe-west-1"}},
	{ID: "aws-iso-f", RegionRE: regexp.MustCompile(`^us-isof-\w+-\d+$`), DNSSuffix: "csp.hci.ic.gov", Sovereign: true,
		Regions: []string{"us-isof-east-1", "us-isof-south-1"}},
}

func partitionByID(id string) *awsPartition {
	for _, p := range awsPartitions {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// partitionOfRegion is the partition whose region pattern the region matches, or nil.
func partitionOfRegion(region string) *awsPartition {
	for _, p := range awsPartitions {
		if p.RegionRE.MatchString(region) {
			return p
		}
	}
	return nil
}

func partitionIDs() string {
	ids := make([]string, len(awsPartitions))
	for i, p := range awsPartitions {
		ids[i] = p.ID
	}
	return strings.Join(ids, ", ")
}

// azureCloud is one Azure cloud: Microsoft Entra authority, Resource Manager endpoint and audience,
// the name the azurerm provider and backend give it (ARM_ENVIRONMENT), and its regions.
type azureCloud struct {
	Name            string // public | usgovernment | china
	AuthorityHost   string
	ResourceManager string
	Audience        string
	Domains         []string // DNS suffixes of its endpoints
	Regions         []string // nil: any region not owned by another cloud
}

var azureClouds = []*azureCloud{
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

func azureCloudByName(name string) *azureCloud {
	for _, c := range azureClouds {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// azureCloudOfRegion is the sovereign Azure cloud that owns the region, or nil (public or unknown).
func azureCloudOfRegion(region string) *azureCloud {
	for _, c := range azureClouds {
		if slices.Contains(c.Regions, region) {
			return c
		}
	}
	return nil
}

var azureRegionRE = regexp.MustCompile(`^[a-z]+[a-z0-9]*$`)

// DefaultUniverse is Google Cloud's commercial universe.
const DefaultUniverse = config.GoogleUniverse

// gcpRegionRE is a Google Cloud region name (us-central1, europe-west4, u-france-east1).
var gcpRegionRE = regexp.MustCompile(`^[a-z]+(-[a-z]+)+[0-9]+$`)

// hostIn says whether host is domain or a subdomain of it.
func hostIn(host, domain string) bool {
	host, domain = strings.ToLower(strings.TrimSuffix(host, ".")), strings.ToLower(domain)
	return host == domain || strings.HasSuffix(host, "."+domain)
}
