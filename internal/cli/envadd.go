package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/rollout-dev/rollout/internal/config"
)

func newEnvCmd(io IO, g globals) *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Grow the fleet: add targets in new regions and clouds"}
	cmd.AddCommand(newEnvAddCmd(io, g))
	return cmd
}

type envAddOptions struct {
	Boundary, Region, Name, Ring, File string
	Labels, Vars                       []string
}

func newEnvAddCmd(io IO, g globals) *cobra.Command {
	o := &envAddOptions{}
	cmd := &cobra.Command{
		Use:   "add --boundary B --region R --name N [--ring RING] [--label k=v ...] [--var k=v ...] [--file PATH]",
		Short: "Write a new target's file under environments/ and validate the fleet with it",
		Long: `Write a new target to environments/<boundary>/<name>.yaml (or --file): its boundary, region,
labels, variables, and a state backend from the boundary's convention (boundaries.B.backend, whose
values are templates over .Target). With --ring, the labels that ring selects by are added, and a
ring that cannot select the target is refused. The whole fleet is then validated with the new
file (regions, backends, rings); if anything is wrong the file is removed again and every problem
is reported. Bring the target up to its ring's release with rollout expand, or let the ring's next
release reach it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return envAdd(io, g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.Boundary, "boundary", "", "the target's boundary (required)")
	f.StringVar(&o.Region, "region", "", "the target's region, checked against the boundary")
	f.StringVar(&o.Name, "name", "", "the target's name (required)")
	f.StringVar(&o.Ring, "ring", "", "the ring it joins")
	f.StringArrayVar(&o.Labels, "label", nil, "a label k=v (repeatable)")
	f.StringArrayVar(&o.Vars, "var", nil, "a Terraform variable k=v (repeatable)")
	f.StringVar(&o.File, "file", "", "where to write it (default environments/<boundary>/<name>.yaml)")
	_ = cmd.MarkFlagRequired("boundary")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// targetFile is a target as written under environments/, in a stable key order.
type targetFile struct {
	Targets []targetEntry `yaml:"targets"`
}

type targetEntry struct {
	Name     string            `yaml:"name"`
	Boundary string            `yaml:"boundary"`
	Region   string            `yaml:"region,omitempty"`
	Labels   map[string]string `yaml:"labels,omitempty"`
	Vars     map[string]string `yaml:"vars,omitempty"`
	Backend  *backendEntry     `yaml:"backend,omitempty"`
}

type backendEntry struct {
	Type   string         `yaml:"type"`
	Config map[string]any `yaml:"config,omitempty"`
}

func envAdd(io IO, g globals, o *envAddOptions) error {
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	fail := func(format string, args ...any) error {
		return &ExitErr{Code: ExitError, Err: fmt.Errorf(format, args...)}
	}
	b := cfg.Boundaries[o.Boundary]
	if b == nil {
		return fail("--boundary %s: no such boundary in %s", o.Boundary, cfg.File)
	}
	if t := cfg.Target(o.Name); t != nil {
		return fail("--name %s: target already declared in %s:%d", o.Name, t.File, t.Line)
	}
	labels, err := pairs("--label", o.Labels)
	if err != nil {
		return err
	}
	vars, err := pairs("--var", o.Vars)
	if err != nil {
		return err
	}
	if o.Ring != "" {
		i := slices.IndexFunc(cfg.Rings, func(r *config.Ring) bool { return r.Name == o.Ring })
		if i < 0 {
			return fail("--ring %s: no such ring", o.Ring)
		}
		sel := cfg.Rings[i].Select
		if len(sel.Names) > 0 {
			return fail("ring %s selects its targets by name: add %s to rings[%d].targets.names in %s", o.Ring, o.Name, i, cfg.File)
		}
		if len(sel.Boundaries) > 0 && !slices.Contains(sel.Boundaries, o.Boundary) {
			return fail("ring %s selects boundaries %v, not %s", o.Ring, sel.Boundaries, o.Boundary)
		}
		for k, v := range sel.Labels {
			if old, ok := labels[k]; ok && old != v {
				return fail("--label %s=%s: ring %s selects %s=%s", k, old, o.Ring, k, v)
			}
			labels[k] = v
		}
	}
	entry := targetEntry{Name: o.Name, Boundary: o.Boundary, Region: o.Region, Labels: labels, Vars: vars}
	if len(entry.Labels) == 0 {
		entry.Labels = nil
	}
	if len(entry.Vars) == 0 {
		entry.Vars = nil
	}
	if b.Backend != nil {
		data := map[string]any{"Target": map[string]any{"Name": o.Name, "Boundary": o.Boundary, "Region": o.Region, "Labels": labels}}
		be := &backendEntry{Type: b.Backend.Type, Config: map[string]any{}}
		for k, v := range b.Backend.Config {
			s, ok := v.(string)
			if !ok {
				be.Config[k] = v
				continue
			}
			t, err := template.New(k).Option("missingkey=error").Parse(s)
			if err != nil {
				return fail("boundaries.%s.backend.config.%s: %v", o.Boundary, k, err)
			}
			var out strings.Builder
			if err := t.Execute(&out, data); err != nil {
				return fail("boundaries.%s.backend.config.%s: %v", o.Boundary, k, err)
			}
			be.Config[k] = out.String()
		}
		entry.Backend = be
	}
	path := o.File
	if path == "" {
		path = filepath.Join(cfg.Root, cfg.Environments[0], o.Boundary, o.Name+".yaml")
	} else if !filepath.IsAbs(path) {
		path = filepath.Join(cfg.Root, path)
	}
	if _, err := os.Stat(path); err == nil {
		return fail("%s exists already: give another --file", path)
	}
	body, err := yaml.Marshal(targetFile{Targets: []targetEntry{entry}})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	text := fmt.Sprintf("# Written by rollout env add: target %s in boundary %s.\n%s", o.Name, o.Boundary, body)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return err
	}
	// The fleet with the new file must validate, or the file goes again.
	cfg2, err := loadConfig(g)
	if err != nil {
		_ = os.Remove(path)
		var ee *ExitErr
		if errors.As(err, &ee) {
			return &ExitErr{Code: ExitError, Err: fmt.Errorf("%s was not kept: %w", rel(cfg.Root, path), ee.Err)}
		}
		return err
	}
	ring := ""
	for _, r := range cfg2.Rings {
		if slices.Contains(r.Targets, o.Name) {
			ring = r.Name
		}
	}
	if g.json() {
		return writeJSON(io.Out, map[string]string{"file": rel(cfg.Root, path), "target": o.Name, "ring": ring})
	}
	fmt.Fprintf(io.Out, "wrote %s: target %s (boundary %s, region %s) in ring %s; the fleet validates\n", rel(cfg.Root, path), o.Name, o.Boundary, o.Region, ring)
	return nil
}

func pairs(flag string, kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, &ExitErr{Code: ExitError, Err: fmt.Errorf("%s %q: want name=value", flag, kv)}
		}
		out[k] = v
	}
	return out, nil
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}
