package aws

import (
	"regexp"
	"strings"
)

// AWS SDK's partitions.json (aws-sdk-go-v2 internal/endpoints/awsrulesfn).
type partition struct {
	ID        string
	RegionRE  *regexp.Regexp
	DNSSuffix string
	Regions   []string // known today; a region matching RegionRE is accepted too (new regions open)
	Sovereign bool     // not the commercial partition
}

var partitions = []*partition{
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

func partitionByID(id string) *partition {
	for _, p := range partitions {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// partitionOfRegion is the partition whose region pattern the region matches, or nil.
func partitionOfRegion(region string) *partition {
	for _, p := range partitions {
		if p.RegionRE.MatchString(region) {
			return p
		}
	}
	return nil
}

func partitionIDs() string {
	ids := make([]string, len(partitions))
	for i, p := range partitions {
		ids[i] = p.ID
	}
	return strings.Join(ids, ", ")
}
