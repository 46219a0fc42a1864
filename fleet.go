// Package rollout holds the example fleet at the repository's root (rollout.yaml,
// environments/local, terraform/stamp), embedded so that `rollout demo` can write it out anywhere.
package rollout

import "embed"

//go:embed rollout.yaml environments/local terraform/stamp
var DemoFleet embed.FS
