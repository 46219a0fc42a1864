package runs

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rollout-dev/rollout/internal/provision"
)

// VersionInfo is what `rollout version` reports: this build and the Terraform binary it would run.
type VersionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Date      string `json:"date,omitempty"`     // the commit's time (what a release is stamped with)
	Modified  *bool  `json:"modified,omitempty"` // built from a tree with uncommitted changes (absent: unknown)
	Go        string `json:"go"`
	Terraform struct {
		Path    string `json:"path,omitempty"`
		Version string `json:"version,omitempty"` // e.g. "OpenTofu v1.10.10"
		Error   string `json:"error,omitempty"`
	} `json:"terraform"`
}

// Version is this build of rollout and the Terraform binary a run would use (tfBin, else
// ROLLOUT_TF_BIN, TF_BIN, tofu/terraform on PATH), with its version.
func Version(ctx context.Context, tfBin string) VersionInfo {
	v := buildInfo()
	terraformVersion(ctx, tfBin, &v)
	return v
}

// version is stamped in by make release (-ldflags -X).
var version string

func buildInfo() VersionInfo {
	v := VersionInfo{Version: cmp.Or(version, "(devel)"), Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" && version == "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				modified := s.Value == "true"
				v.Modified = &modified
			case "vcs.time":
				v.Date = s.Value
			}
		}
	}
	return v
}

// terraformVersion finds the binary a run would use and asks it for its version.
func terraformVersion(ctx context.Context, tfBin string, v *VersionInfo) {
	bin, err := provision.FindBinary(cmp.Or(tfBin, os.Getenv("ROLLOUT_TF_BIN")))
	if err != nil {
		v.Terraform.Error = err.Error()
		return
	}
	v.Terraform.Path = bin
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		v.Terraform.Error = fmt.Sprintf("`%s version`: %v", bin, err)
		return
	}
	v.Terraform.Version, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
}

// Text is the version for a person.
func (v VersionInfo) Text() string {
	commit := v.Commit
	if commit == "" {
		commit = "unknown"
	} else if v.Modified != nil && *v.Modified {
		commit += " (modified)"
	} else if v.Modified != nil {
		commit += " (clean tree)"
	}
	if v.Date != "" {
		commit += " of " + v.Date
	}
	tf := v.Terraform.Version + " at " + v.Terraform.Path
	if v.Terraform.Error != "" {
		tf = "not usable: " + v.Terraform.Error
	}
	return fmt.Sprintf("rollout %s, commit %s, %s\nterraform: %s\n", v.Version, commit, v.Go, tf)
}
