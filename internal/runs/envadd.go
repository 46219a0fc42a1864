package runs

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rollout-dev/rollout/internal/clouds/catalog"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/provision"
)

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

// AddTargetRequest describes a target to add to a fleet.
type AddTargetRequest struct {
	Boundary, Region, Name, Ring, File string
	Labels, Vars                       map[string]string
}

// AddedTarget is where a target was written and the ring that selects it.
type AddedTarget struct {
	File   string `json:"file"`
	Target string `json:"target"`
	Ring   string `json:"ring"`
}

// AddTarget writes a new target under the fleet's environments (its state backend from its
// boundary's convention; for a ring that selects by names, its name into rollout.yaml), validates
// the whole fleet with it, and takes everything back if anything is wrong. Notes (a variable the
// module requires and nothing sets) go to notes.
func AddTarget(configPath string, o AddTargetRequest, notes io.Writer) (AddedTarget, error) {
	cfg, err := LoadConfig(configPath)
	if err != nil {
		return AddedTarget{}, err
	}
	b := cfg.Boundaries[o.Boundary]
	if b == nil {
		return AddedTarget{}, fmt.Errorf("--boundary %s: no such boundary in %s", o.Boundary, cfg.File)
	}
	if t := cfg.Target(o.Name); t != nil {
		return AddedTarget{}, fmt.Errorf("--name %s: target already declared in %s:%d", o.Name, t.File, t.Line)
	}
	labels, ringIndex, err := ringPlacement(cfg, o)
	if err != nil {
		return AddedTarget{}, err
	}
	if err := checkDeclared(cfg, o.Vars); err != nil {
		return AddedTarget{}, err
	}
	entry, err := newTargetEntry(cfg, b, o, labels)
	if err != nil {
		return AddedTarget{}, err
	}
	path, undo, err := writeTargetFile(cfg, o, entry)
	if err != nil {
		return AddedTarget{}, err
	}
	if ringIndex >= 0 {
		restoreMain, err := addRingName(cfg.File, ringIndex, o.Name)
		if err != nil {
			undo()
			return AddedTarget{}, fmt.Errorf("add %s to ring %s's names in %s: %v", o.Name, o.Ring, rel(cfg.Root, cfg.File), err)
		}
		removeFile := undo
		undo = func() { removeFile(); restoreMain() }
	}
	// The fleet with the new file must validate, or everything written goes again.
	cfg2, err := LoadConfig(configPath)
	if err != nil {
		undo()
		return AddedTarget{}, fmt.Errorf("%s was not kept: %w", rel(cfg.Root, path), err)
	}
	noteMissingVariables(cfg2, o.Name, notes)
	ring := ""
	for _, r := range cfg2.Rings {
		if slices.Contains(r.Targets, o.Name) {
			ring = r.Name
		}
	}
	return AddedTarget{File: rel(cfg.Root, path), Target: o.Name, Ring: ring}, nil
}

// ringPlacement checks that the new target can join the ring asked for, and returns its labels
// with the ones the ring selects on, and the ring's index when it selects by names (else -1).
func ringPlacement(cfg *config.Config, o AddTargetRequest) (map[string]string, int, error) {
	labels := maps.Clone(o.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if o.Ring == "" {
		return labels, -1, nil
	}
	i := slices.IndexFunc(cfg.Rings, func(r *config.Ring) bool { return r.Name == o.Ring })
	if i < 0 {
		return nil, -1, fmt.Errorf("--ring %s: no such ring%s", o.Ring, didYouMean(o.Ring, configRings(cfg)))
	}
	sel := cfg.Rings[i].Select
	if len(sel.Boundaries) > 0 && !slices.Contains(sel.Boundaries, o.Boundary) {
		return nil, -1, fmt.Errorf("ring %s selects boundaries %v, not %s", o.Ring, sel.Boundaries, o.Boundary)
	}
	for k, v := range sel.Labels {
		if old, ok := labels[k]; ok && old != v {
			return nil, -1, fmt.Errorf("--label %s=%s: ring %s selects %s=%s", k, old, o.Ring, k, v)
		}
		labels[k] = v
	}
	if len(sel.Names) == 0 {
		i = -1
	}
	return labels, i, nil
}

// newTargetEntry is the new target as its file declares it, with the state backend the
// boundary's convention gives; a cloud boundary without one is refused.
func newTargetEntry(cfg *config.Config, b *config.Boundary, o AddTargetRequest, labels map[string]string) (targetEntry, error) {
	entry := targetEntry{Name: o.Name, Boundary: o.Boundary, Region: o.Region, Labels: labels, Vars: o.Vars}
	if len(entry.Labels) == 0 {
		entry.Labels = nil
	}
	if len(entry.Vars) == 0 {
		entry.Vars = nil
	}
	be, err := config.ConventionBackend(b, &config.Target{Name: o.Name, Boundary: o.Boundary, Region: o.Region, Labels: labels})
	switch {
	case err != nil:
		return entry, err
	case be != nil:
		entry.Backend = &backendEntry{Type: be.Type, Config: be.Config}
	case catalog.All.Cloud(b.Cloud).Traits().RemoteState:
		return entry, fmt.Errorf("boundary %s (cloud %s) has no state backend convention: a new target there would keep its state on this machine. Add boundaries.%s.backend to %s (values are templates over .Target, e.g. key: \"stamps/{{ .Target.Name }}.tfstate\")",
			o.Boundary, b.Cloud, o.Boundary, rel(cfg.Root, cfg.File))
	}
	return entry, nil
}

// writeTargetFile writes the new target's file, never over an existing one, and returns its path
// and what removes it and the directories made for it.
func writeTargetFile(cfg *config.Config, o AddTargetRequest, entry targetEntry) (string, func(), error) {
	path := o.File
	if path == "" {
		path = filepath.Join(cfg.Root, cfg.Environments[0], o.Boundary, o.Name+".yaml")
	} else if !filepath.IsAbs(path) {
		path = filepath.Join(cfg.Root, path)
	}
	if _, err := os.Stat(path); err == nil {
		return "", nil, fmt.Errorf("%s exists already: give another --file", path)
	}
	body, err := yaml.Marshal(targetFile{Targets: []targetEntry{entry}})
	if err != nil {
		return "", nil, err
	}
	undoDirs, err := mkdirs(filepath.Dir(path))
	if err != nil {
		return "", nil, err
	}
	text := fmt.Sprintf("# Written by rollout env add: target %s in boundary %s.\n%s", o.Name, o.Boundary, body)
	if err := writeShared(path, []byte(text)); err != nil {
		undoDirs()
		return "", nil, err
	}
	return path, func() { _ = os.Remove(path); undoDirs() }, nil
}

// noteMissingVariables tells which of the module's variables the new target still lacks.
func noteMissingVariables(cfg *config.Config, name string, notes io.Writer) {
	if notes == nil {
		return
	}
	for _, e := range provision.MissingVariables(cfg, cfg.Release.Vars) {
		if strings.Contains(e.Key, "["+name+"]") {
			fmt.Fprintln(notes, "note: "+e.Error()+" (give it with start --var, in release.vars, or with env add --var)")
		}
	}
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// mkdirs makes dir and its missing parents, and returns what removes the ones it made.
func mkdirs(dir string) (func(), error) {
	var made []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		made = append(made, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, d := range made {
		_ = os.Chmod(d, 0o755) // folders of the fleet's configuration, whatever the umask
	}
	return func() {
		for _, d := range made { // deepest first
			_ = os.Remove(d)
		}
	}, nil
}

// addRingName appends name to rings[i].targets.names in the configuration file, editing its text
// where the list is (comments and layout stay as they are), and returns what puts the file back.
func addRingName(file string, i int, name string) (func(), error) {
	orig, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(orig, &doc); err != nil || len(doc.Content) == 0 {
		return nil, fmt.Errorf("cannot read it as YAML: %v", err)
	}
	names := lookup(lookup(index(lookup(doc.Content[0], "rings"), i), "targets"), "names")
	if names == nil || names.Kind != yaml.SequenceNode || len(names.Content) == 0 {
		return nil, errors.New("no list of names found there")
	}
	last := names.Content[len(names.Content)-1]
	lines := strings.SplitAfter(string(orig), "\n")
	if last.Line < 1 || last.Line > len(lines) {
		return nil, errors.New("no list of names found there")
	}
	ln := lines[last.Line-1]
	quoted, _ := yaml.Marshal(name)
	item := strings.TrimSpace(string(quoted))
	if names.Style&yaml.FlowStyle != 0 {
		// [a, b]: insert after the last item, on its line.
		end := last.Column - 1 + len(last.Value)
		if last.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			end += 2
		}
		if end > len(ln) {
			return nil, errors.New("cannot place the new name in the flow list")
		}
		lines[last.Line-1] = ln[:end] + ", " + item + ln[end:]
	} else {
		indent := ln[:strings.Index(ln, "-")]
		lines[last.Line-1] = strings.TrimRight(ln, "\n") + "\n" + indent + "- " + item + "\n"
	}
	if err := writeShared(file, []byte(strings.Join(lines, ""))); err != nil {
		return nil, err
	}
	return func() { _ = writeShared(file, orig) }, nil
}

// writeShared writes a file of the fleet's configuration, which is code for its repository and
// its readers: world-readable, whatever the process's umask (0644, or the file's own mode).
func writeShared(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

func lookup(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Value == key {
			return n.Content[j+1]
		}
	}
	return nil
}

func index(n *yaml.Node, i int) *yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
		return nil
	}
	return n.Content[i]
}

// checkDeclared refuses a --var the release's modules do not declare: Terraform would refuse it
// at the target's first plan (a variable file's value for an undeclared variable is an error in a
// later Terraform, a warning now), and a typo would sit in the target's file unnoticed.
func checkDeclared[V any](cfg *config.Config, vars map[string]V) error {
	if len(vars) == 0 {
		return nil
	}
	info, err := provision.InspectRelease(cfg)
	if err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(info.Variables))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if _, ok := info.Variables[k]; !ok {
			return fmt.Errorf("--var %s: the release's module declares no variable %s (variables: %s)%s", k, k, strings.Join(names, ", "), didYouMean(k, names))
		}
	}
	return nil
}
