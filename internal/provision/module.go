package provision

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/terraform-config-inspect/tfconfig"

	"github.com/rollout-dev/rollout/internal/config"
)

// ModuleInfo is what rollout reads of a root module's declarations, without running Terraform.
type ModuleInfo struct {
	Variables map[string]ModuleVariable
	Outputs   map[string]bool // by name: sensitive
}

// ModuleVariable is one declared input variable.
type ModuleVariable struct {
	Required  bool // no default: every target must be given a value
	Sensitive bool // declared sensitive: its value is a secret
	File      string
	Line      int
}

// InspectModule reads the variables and outputs a root module declares
// (hashicorp/terraform-config-inspect: the same HCL parser Terraform uses, without the rest).
func InspectModule(dir string) (*ModuleInfo, error) {
	m, diags := tfconfig.LoadModule(dir)
	if diags.HasErrors() {
		return nil, fmt.Errorf("read module %s: %w", dir, diags.Err())
	}
	info := &ModuleInfo{Variables: map[string]ModuleVariable{}, Outputs: map[string]bool{}}
	for name, v := range m.Variables {
		info.Variables[name] = ModuleVariable{Required: v.Required, Sensitive: v.Sensitive, File: v.Pos.Filename, Line: v.Pos.Line}
	}
	for name, o := range m.Outputs {
		info.Outputs[name] = o.Sensitive
	}
	return info, nil
}

// InspectRelease reads what the release's modules declare: the root module's, or for a stack
// every component's together, a variable that a component's inputs set not counting as
// required there.
func InspectRelease(c *config.Config) (*ModuleInfo, error) {
	if !c.Stack() {
		return InspectModule(c.ModuleDir())
	}
	all := &ModuleInfo{Variables: map[string]ModuleVariable{}, Outputs: map[string]bool{}}
	for _, name := range slices.Sorted(maps.Keys(c.Release.Components)) {
		info, err := InspectModule(c.ComponentDir(name))
		if err != nil {
			return nil, fmt.Errorf("component %s: %w", name, err)
		}
		for v, mv := range info.Variables {
			if _, set := c.Release.Components[name].Inputs[v]; set {
				mv.Required = false
			}
			if was, ok := all.Variables[v]; ok {
				mv.Required = mv.Required || was.Required
				mv.Sensitive = mv.Sensitive || was.Sensitive
			}
			all.Variables[v] = mv
		}
		maps.Copy(all.Outputs, info.Outputs)
	}
	return all, nil
}

// CheckStack checks what a stack's inputs read of other components against their modules: each
// output read is one the component's module declares.
func CheckStack(c *config.Config) config.Errors {
	if !c.Stack() {
		return nil
	}
	var errs config.Errors
	main, _ := filepath.Rel(c.Root, c.File)
	for _, name := range slices.Sorted(maps.Keys(c.Release.Components)) {
		comp := c.Release.Components[name]
		for _, k := range slices.Sorted(maps.Keys(comp.Inputs)) {
			for dep, outputs := range config.ComponentReads(comp.Inputs[k]) {
				if c.Release.Components[dep] == nil {
					continue // config reports it
				}
				info, err := InspectModule(c.ComponentDir(dep))
				if err != nil {
					continue // the component's own check reports it
				}
				for _, o := range outputs {
					if _, ok := info.Outputs[o]; !ok && o != "" {
						errs = append(errs, &config.FieldError{File: main, Line: comp.Lines["inputs"], Key: "release.components." + name + ".inputs." + k,
							Msg: fmt.Sprintf("reads output %s of component %s, whose module (%s) declares no such output (outputs: %s)", o, dep, c.Release.Components[dep].Module, strings.Join(slices.Sorted(maps.Keys(info.Outputs)), ", "))})
					}
				}
			}
		}
	}
	return errs
}

// secretName matches variable names that by convention hold a secret, whether or not the module
// declares them sensitive.
var secretName = regexp.MustCompile(`(?i)(passw(or)?d|secret|token|api[_-]?key|private[_-]?key|credential|auth)`)

// Secret says whether a variable's value must never be shown: the module declares it sensitive,
// or its name says it is a secret.
func (m *ModuleInfo) Secret(name string) bool {
	if m != nil && m.Variables[name].Sensitive {
		return true
	}
	return secretName.MatchString(name)
}

// MissingVariables reads the fleet's root module and reports, per target, each variable the
// module requires (no default) that neither the release's variables (release.vars, and --var when
// vars is given) nor the target's own set: a target that could never plan.
func MissingVariables(c *config.Config, vars map[string]any) config.Errors {
	main, _ := filepath.Rel(c.Root, c.File)
	info, err := InspectRelease(c)
	if err != nil {
		return config.Errors{{File: main, Line: c.Release.Line, Key: "release.module", Msg: err.Error()}}
	}
	var required []string
	for name, v := range info.Variables {
		if v.Required {
			if _, ok := vars[name]; !ok {
				required = append(required, name)
			}
		}
	}
	sort.Strings(required)
	var errs config.Errors
	for _, t := range c.Targets {
		if len(required) == 0 {
			break
		}
		missing := missingFor(t, required)
		if len(missing) == 0 {
			continue
		}
		v := info.Variables[missing[0]]
		where, _ := filepath.Rel(c.Root, v.File)
		errs = append(errs, &config.FieldError{File: t.File, Line: t.Line, Key: "targets[" + t.Name + "].vars",
			Msg: fmt.Sprintf("the module requires %s (declared without a default, e.g. at %s:%d), and neither the release's variables (release.vars, --var) nor the target's vars set it; a boundary's own values reach the module through release.vars templates such as {{ .Boundary.Partition }}",
				strings.Join(missing, ", "), where, v.Line)})
	}
	return errs
}

func missingFor(t *config.Target, required []string) []string {
	var missing []string
	for _, name := range required {
		if _, ok := t.Vars[name]; !ok {
			missing = append(missing, name)
		}
	}
	return missing
}

// MissingSummary is MissingVariables in a line per set of missing variables, for a person.
func MissingSummary(c *config.Config, vars map[string]any) []string {
	errs := MissingVariables(c, vars)
	byMsg := map[string][]string{}
	var order []string
	for _, e := range errs {
		name := strings.TrimSuffix(strings.TrimPrefix(e.Key, "targets["), "].vars")
		if byMsg[e.Msg] == nil {
			order = append(order, e.Msg)
		}
		byMsg[e.Msg] = append(byMsg[e.Msg], name)
	}
	var out []string
	for _, msg := range order {
		names := byMsg[msg]
		list := strings.Join(names[:min(len(names), 5)], ", ")
		if len(names) > 5 {
			list += fmt.Sprintf(" and %d more", len(names)-5)
		}
		out = append(out, fmt.Sprintf("%d target(s) (%s): %s", len(names), list, msg))
	}
	return out
}
