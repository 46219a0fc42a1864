package config

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"

	"go.yaml.in/yaml/v3"
)

// Component is one root module of a stack (release.components): its own working directory and
// state on each target, applied after the components it depends on, with inputs that may read
// their outputs.
type Component struct {
	Name      string
	Module    string   // relative to Root
	DependsOn []string // components applied before this one
	// Inputs are variables of this component only; string values are templates over .Release,
	// .Target, .Boundary and .Components.NAME.Outputs.OUTPUT (NAME in DependsOn).
	Inputs map[string]any
	// Gates are run on each target right after this component is applied there, over its
	// outputs, before any component that depends on it starts.
	Gates []string
	Line  int            // of the component in rollout.yaml
	Lines map[string]int // of its keys
}

// Stack says whether the release is a stack of components (else one root module).
func (c *Config) Stack() bool { return len(c.Release.Components) > 0 }

// ComponentDir is the directory of a component's module.
func (c *Config) ComponentDir(name string) string {
	return filepath.Join(c.Root, c.Release.Components[name].Module)
}

// StackLevels are the components in dependency order: each level's components depend only on
// earlier levels' (and may be applied at once), names sorted within a level.
func StackLevels(deps map[string][]string) [][]string {
	done := map[string]bool{}
	var levels [][]string
	for len(done) < len(deps) {
		var level []string
		for name, ds := range deps {
			if done[name] {
				continue
			}
			if !slices.ContainsFunc(ds, func(d string) bool { return !done[d] }) {
				level = append(level, name)
			}
		}
		if len(level) == 0 {
			return levels // a cycle: validation refuses it
		}
		slices.Sort(level)
		for _, n := range level {
			done[n] = true
		}
		levels = append(levels, level)
	}
	return levels
}

// parseComponents reads release.components and checks what needs no module: the modules exist
// in the fleet, dependsOn names components and has no cycle, and an input reads the outputs of
// components it depends on only.
func (c *Config) parseComponents(w walker, n *yaml.Node) {
	if n == nil {
		return
	}
	c.Release.Components = map[string]*Component{}
	for name, cn := range w.fields(n, "release.components") {
		path := "release.components." + name
		f := w.fields(cn, path, "module", "dependsOn", "inputs", "gates")
		comp := &Component{Name: name, Line: cn.Line, Lines: map[string]int{}, Module: w.str(f["module"], path+".module"),
			DependsOn: w.strings(f["dependsOn"], path+".dependsOn"), Inputs: w.anyMap(f["inputs"], path+".inputs"), Gates: w.strings(f["gates"], path+".gates")}
		for k, v := range f {
			comp.Lines[k] = v.Line
		}
		if err := ValidName("component", name); err != nil || strings.Contains(name, ".") {
			w.fail(cn, path, "component names use letters, digits, '_' and '-'")
		}
		switch dir := filepath.Join(c.Root, comp.Module); {
		case comp.Module == "":
			w.fail(cn, path+".module", "is required: the component's Terraform root module")
		case !isDir(dir):
			w.fail(f["module"], path+".module", "module directory %s does not exist", comp.Module)
		case !c.Release.ModuleOutsideFleet && !inside(c.Root, dir):
			w.fail(f["module"], path+".module", "%s is outside the fleet's folder %s", comp.Module, c.Root)
		}
		c.Release.Components[name] = comp
	}
	names := slices.Sorted(maps.Keys(c.Release.Components))
	for _, name := range names {
		comp := c.Release.Components[name]
		path := "release.components." + name
		for _, d := range comp.DependsOn {
			if c.Release.Components[d] == nil {
				w.fail(nil, path+".dependsOn", "%q is not a component of this release%s", d, suggest(d, names))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(comp.Inputs)) {
			checkInputReads(w, path+".inputs."+k, comp, comp.Inputs[k])
		}
	}
	if cycle := stackCycle(c.Release.Components); cycle != nil {
		w.fail(nil, "release.components."+cycle[0]+".dependsOn", "components depend on each other in a cycle: %s", strings.Join(cycle, " -> "))
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// ComponentReads are the outputs an input's templates read of other components: component ->
// outputs. A template that cannot be parsed reads nothing (its error is reported elsewhere).
func ComponentReads(v any) map[string][]string {
	out := map[string][]string{}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			t, err := template.New("x").Parse(x)
			if err != nil {
				return
			}
			for _, f := range fieldChains(t.Tree.Root) {
				if len(f) >= 1 && f[0] == "Components" {
					comp, output := "", ""
					if len(f) >= 2 {
						comp = f[1]
					}
					if len(f) >= 4 && f[2] == "Outputs" {
						output = f[3]
					}
					out[comp] = append(out[comp], output)
				}
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// checkInputReads checks an input's templates read only .Components.NAME.Outputs.OUTPUT of a
// component in dependsOn.
func checkInputReads(w walker, path string, comp *Component, v any) {
	checkTemplates(w, nil, path, v)
	for name, outputs := range ComponentReads(v) {
		switch {
		case name == "" || slices.Contains(outputs, ""):
			w.fail(nil, path, "reads .Components without a component and output: write {{ .Components.NAME.Outputs.OUTPUT }}")
		case !slices.Contains(comp.DependsOn, name):
			w.fail(nil, path, "reads component %s, which is not in dependsOn (%s): its outputs would not be known yet", name, strings.Join(comp.DependsOn, ", "))
		}
	}
}

// fieldChains are the field chains (.A.B.C) a template's tree uses.
func fieldChains(n parse.Node) [][]string {
	var out [][]string
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch x := n.(type) {
		case *parse.ListNode:
			if x != nil {
				for _, c := range x.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(x.Pipe)
		case *parse.PipeNode:
			if x != nil {
				for _, c := range x.Cmds {
					walk(c)
				}
			}
		case *parse.CommandNode:
			for _, a := range x.Args {
				walk(a)
			}
		case *parse.FieldNode:
			out = append(out, x.Ident)
		case *parse.ChainNode:
			walk(x.Node)
		case *parse.IfNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.RangeNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		case *parse.WithNode:
			walk(x.Pipe)
			walk(x.List)
			walk(x.ElseList)
		}
	}
	walk(n)
	return out
}

// stackCycle is a cycle of dependsOn (first name repeated at the end), or nil.
func stackCycle(comps map[string]*Component) []string {
	state := map[string]int{} // 1: on the path, 2: done
	var path []string
	var visit func(string) []string
	visit = func(n string) []string {
		switch state[n] {
		case 1:
			i := slices.Index(path, n)
			return append(slices.Clone(path[i:]), n)
		case 2:
			return nil
		}
		state[n] = 1
		path = append(path, n)
		if c := comps[n]; c != nil {
			for _, d := range c.DependsOn {
				if comps[d] == nil {
					continue
				}
				if cyc := visit(d); cyc != nil {
					return cyc
				}
			}
		}
		path = path[:len(path)-1]
		state[n] = 2
		return nil
	}
	for _, n := range slices.Sorted(maps.Keys(comps)) {
		if cyc := visit(n); cyc != nil {
			return cyc
		}
	}
	return nil
}

// StackDeps is each component's dependsOn.
func (c *Config) StackDeps() map[string][]string {
	out := map[string][]string{}
	for n, comp := range c.Release.Components {
		out[n] = comp.DependsOn
	}
	return out
}

// ComponentBackend is the state backend of a stack's component on a target whose backend is b
// (nil: local state, placed by the provisioner): b with {{ .Component }} rendered where it is
// templated, else with the component added to its state's location (key and path: a folder named
// after the file, e.g. stamps/eu-1.tfstate -> stamps/eu-1/network.tfstate; prefix: a last segment;
// schema_name: a suffix). A backend of another kind must template {{ .Component }}.
func ComponentBackend(b *Backend, component string) (*Backend, error) {
	if b == nil {
		return nil, nil
	}
	out := &Backend{Type: b.Type, Config: map[string]any{}}
	templated := false
	for _, v := range b.Config {
		if s, ok := v.(string); ok && strings.Contains(s, "{{") {
			templated = true
		}
	}
	for k, v := range b.Config {
		s, ok := v.(string)
		if !ok || !templated {
			out.Config[k] = v
			continue
		}
		r, err := Render(k, s, map[string]any{"Component": component})
		if err != nil {
			return nil, fmt.Errorf("backend.config.%s: %w", k, err)
		}
		out.Config[k] = r
	}
	if templated {
		return out, nil
	}
	for _, k := range []string{"key", "path", "prefix", "schema_name"} {
		s, ok := b.Config[k].(string)
		if !ok || s == "" {
			continue
		}
		switch k {
		case "prefix":
			out.Config[k] = strings.TrimSuffix(s, "/") + "/" + component
		case "schema_name":
			out.Config[k] = s + "_" + component
		default:
			out.Config[k] = strings.TrimSuffix(s, ".tfstate") + "/" + component + ".tfstate"
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %s backend names no key, path or prefix: template {{ .Component }} into its configuration so that each component keeps its own state", b.Type)
}

// validateStack checks each target's backend can give every component its own state.
func (c *Config) validateStack(errs *Errors) {
	if !c.Stack() {
		return
	}
	any := slices.Sorted(maps.Keys(c.Release.Components))[0]
	for _, t := range c.Targets {
		if _, err := ComponentBackend(t.Backend, any); err != nil {
			line := t.Lines["backend"]
			if line == 0 {
				line = t.Line
			}
			*errs = append(*errs, &FieldError{File: t.File, Line: line, Key: "targets[" + t.Name + "].backend", Msg: err.Error()})
		}
	}
}
