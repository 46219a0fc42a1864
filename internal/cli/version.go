package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/provision"
)

// versionInfo is what `rollout version` reports: this build and the Terraform binary it would run.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	Go        string `json:"go"`
	Terraform struct {
		Path    string `json:"path,omitempty"`
		Version string `json:"version,omitempty"` // e.g. "OpenTofu v1.10.10"
		Error   string `json:"error,omitempty"`
	} `json:"terraform"`
}

func buildInfo() versionInfo {
	v := versionInfo{Version: "(devel)", Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
}

// terraformVersion finds the binary a run would use and asks it for its version.
func terraformVersion(ctx context.Context, g globals, v *versionInfo) {
	bin, err := provision.FindBinary(firstNonEmpty(g.tfBin(), os.Getenv("ROLLOUT_TF_BIN")))
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

func (v versionInfo) text() string {
	commit := v.Commit
	if commit == "" {
		commit = "unknown"
	} else if v.Modified {
		commit += " (modified)"
	}
	tf := v.Terraform.Version + " at " + v.Terraform.Path
	if v.Terraform.Error != "" {
		tf = "not usable: " + v.Terraform.Error
	}
	return fmt.Sprintf("rollout %s, commit %s, %s\nterraform: %s\n", v.Version, commit, v.Go, tf)
}

func newVersionCmd(io IO, g globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print rollout's version and commit, and the Terraform or OpenTofu binary it would run",
		Example: "  rollout version\n  rollout version --output json --tf-bin /usr/local/bin/tofu",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return printVersion(cmd.Context(), io, g)
		},
	}
}

func printVersion(ctx context.Context, io IO, g globals) error {
	v := buildInfo()
	terraformVersion(ctx, g, &v)
	if g.json() {
		return writeJSON(io.Out, v)
	}
	_, err := fmt.Fprint(io.Out, v.text())
	return err
}
