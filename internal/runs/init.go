package runs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
)

// InitRequest asks for a starter fleet (rollout init): a cloud, its scopes (one boundary each;
// default: the commercial one), in Dir.
type InitRequest struct {
	Dir    string
	Cloud  string
	Scopes []string
}

// InitResult is what init wrote.
type InitResult struct {
	Dir        string         `json:"dir"`
	Cloud      string         `json:"cloud"`
	Boundaries []InitBoundary `json:"boundaries"`
	Files      []string       `json:"files"`
	Next       []string       `json:"next"`
}

// InitBoundary is one boundary of the starter fleet, and what a person still fills in.
type InitBoundary struct {
	Name   string `json:"name"`
	Scope  string `json:"scope"`
	Region string `json:"region"`
	Todo   string `json:"todo,omitempty"`
}

// Init writes a starter fleet: rollout.yaml with a boundary per scope of the cloud, two targets in
// each (local state, on purpose, until the boundary gets a backend), a canary ring and a ring per
// boundary, and a Terraform module that needs no provider, so that validate passes and plan runs
// once the boundaries' identities are filled in (at once for the local cloud). It writes nothing
// over an existing fleet, and nothing at all when the request is wrong.
func Init(r InitRequest) (*InitResult, error) {
	cl := catalog.All.Cloud(r.Cloud)
	st, ok := cl.(clouds.Starter)
	if !ok {
		return nil, fmt.Errorf("--cloud %q: want one of %s%s", r.Cloud, strings.Join(starterClouds(), ", "), didYouMean(r.Cloud, starterClouds()))
	}
	scopes := r.Scopes
	if len(scopes) == 0 {
		scopes = st.Scopes()[:1]
	}
	for _, s := range scopes {
		if !slices.Contains(st.Scopes(), s) {
			return nil, fmt.Errorf("--scope %q: cloud %s's scopes are %s%s", s, r.Cloud, strings.Join(st.Scopes(), ", "), didYouMean(s, st.Scopes()))
		}
	}
	dir := r.Dir
	if dir == "" {
		dir = "."
	}
	if _, err := os.Stat(filepath.Join(dir, config.FileName)); err == nil {
		return nil, fmt.Errorf("%s already holds a fleet (%s): init writes a new one only", dir, config.FileName)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	res := &InitResult{Dir: dir, Cloud: r.Cloud}
	files := map[string]string{"terraform/app/main.tf": starterModule, ".gitignore": ".rollout/\n.terraform/\n*.tfstate*\n"}
	var bounds, rings strings.Builder
	for i, scope := range slices.Compact(scopes) {
		name := boundaryName(r.Cloud, scope, st.Scopes()[0])
		sb := st.StarterBoundary(scope, name)
		res.Boundaries = append(res.Boundaries, InitBoundary{Name: name, Scope: scope, Region: sb.Region, Todo: sb.Todo})
		fmt.Fprintf(&bounds, "  %s:\n", name)
		for _, l := range sb.YAML {
			fmt.Fprintf(&bounds, "    %s\n", l)
		}
		if i == 0 {
			fmt.Fprintf(&rings, "  - name: canary\n    targets: {names: [%s-1]}\n    maxParallel: 1\n", name)
			fmt.Fprintf(&rings, "  - name: %s\n    targets: {names: [%s-2]}\n", name, name)
		} else {
			fmt.Fprintf(&rings, "  - name: %s\n    targets: {names: [%s-1, %s-2]}\n    approval: {required: true}\n", name, name, name)
		}
		files["environments/"+name+".yaml"] = starterTargets(name, sb.Region, cl.Traits().RemoteState)
	}
	files[config.FileName] = fmt.Sprintf(`# A starter fleet written by rollout init (cloud %s). rollout validate checks it; rollout plan
# --release v1 shows what v1 would do; rollout start --release v1 promotes it ring by ring. Grow it
# with rollout env add; see docs/configuration.md for every key.
release:
  module: terraform/app
  vars:
    app_version: "{{ .Release.Name }}"
    target: "{{ .Target.Name }}"
    region: "{{ .Target.Region }}"
boundaries:
%srings:
%s`, r.Cloud, bounds.String(), rings.String())
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(files[name]), 0o644); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, name)
	}
	for _, b := range res.Boundaries {
		if b.Todo != "" {
			res.Next = append(res.Next, b.Todo)
		}
	}
	res.Next = append(res.Next, "rollout validate", "rollout plan --release v1", "rollout start --release v1")
	return res, nil
}

// boundaryName names a starter boundary after its cloud and scope: the cloud's name for its
// commercial scope (aws, azure, gcp), else the cloud and the scope's first label.
func boundaryName(cloud, scope, commercial string) string {
	if scope == commercial {
		return cloud
	}
	label, _, _ := strings.Cut(scope, ".")
	if strings.HasPrefix(label, cloud+"-") {
		return label
	}
	return cloud + "-" + label
}

// starterTargets are a starter boundary's two targets; in a cloud whose targets need a state
// backend, with local state said on purpose until the boundary gets one.
func starterTargets(boundary, region string, remote bool) string {
	if !remote {
		return fmt.Sprintf("# Targets of boundary %[1]s; their state is kept under .rollout/tfstate/.\ntargets:\n"+
			"  - {name: %[1]s-1, boundary: %[1]s, region: %[2]s}\n  - {name: %[1]s-2, boundary: %[1]s, region: %[2]s}\n", boundary, region)
	}
	return fmt.Sprintf(`# Targets of boundary %[1]s. Local state on purpose while you try the fleet: give boundary %[1]s a
# backend in rollout.yaml (see the commented line there) and remove these before a team shares it.
targets:
  - {name: %[1]s-1, boundary: %[1]s, region: %[2]s, backend: {type: local}}
  - {name: %[1]s-2, boundary: %[1]s, region: %[2]s, backend: {type: local}}
`, boundary, region)
}

func starterClouds() []string {
	var out []string
	for _, c := range catalog.All {
		if _, ok := c.(clouds.Starter); ok {
			out = append(out, c.Name())
		}
	}
	return out
}

// starterModule needs no provider: plan and apply run anywhere; replace it with the service's.
const starterModule = `# The starter fleet's module: it needs no provider, so that plan and start run as soon as the
# boundaries' identities are filled in. Replace it with your service's module; keep the variables
# rollout.yaml passes (release.vars) or change both.
variable "app_version" {
  type = string
}

variable "target" {
  type = string
}

variable "region" {
  type = string
}

resource "terraform_data" "app" {
  input = {
    version = var.app_version
    target  = var.target
    region  = var.region
  }
}

output "version" {
  value = terraform_data.app.output.version
}
`
