// Package catalog lists the clouds rollout knows. A new cloud is a package under clouds/ passing
// clouds/conformance, one line here, and its page in docs/clouds.md.
package catalog

import (
	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/clouds/aws"
	"github.com/rollout-dev/rollout/internal/clouds/azure"
	"github.com/rollout-dev/rollout/internal/clouds/gcp"
	"github.com/rollout-dev/rollout/internal/clouds/local"
)

// All is every cloud a boundary may name.
var All = clouds.Catalog{azure.Cloud{}, aws.Cloud{}, gcp.Cloud{}, local.Cloud{}}
