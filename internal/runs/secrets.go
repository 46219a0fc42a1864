package runs

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/rollout-dev/rollout/internal/provision"
)

// Secret release variables (declared sensitive by the module, or named like a secret) are never
// written by rollout: the journal keeps secretMarker in their place, so that no journal, export,
// report or event holds them, and their values are not part of a release's identity. A process
// that applies a release takes them from its own --var, or from ROLLOUT_VAR_<name> in its
// environment (where a pipeline's secret store puts them); a run handed to a background process
// passes them on in that process's environment.
const secretMarker = "(secret: not kept by rollout)"

// secretEnv is the environment variable that gives a secret release variable's value.
func secretEnv(name string) string { return "ROLLOUT_VAR_" + name }

// moduleInfo reads the root module's declarations once per process (nil when it cannot be read:
// then names alone say what is secret).
func (f *Fleet) moduleInfo() *provision.ModuleInfo {
	if f.module == nil {
		f.module, _ = provision.InspectRelease(f.cfg)
		if f.module == nil {
			f.module = &provision.ModuleInfo{}
		}
	}
	return f.module
}

// varsFromEnviron adds to vars the module's variables that ROLLOUT_VAR_<name> gives and vars
// lacks, and returns their names: such values are secrets.
func (f *Fleet) varsFromEnviron(vars map[string]any) map[string]bool {
	out := map[string]bool{}
	for name := range f.moduleInfo().Variables {
		if _, set := vars[name]; set {
			continue
		}
		if v, ok := os.LookupEnv(secretEnv(name)); ok {
			vars[name], out[name] = v, true
		}
	}
	return out
}

// sealVars takes the secret variables' values out of vars (into this process's memory and the
// redactor) and puts the marker in their place: those the module or their names say are secret,
// and those named in alsoSecret.
func (f *Fleet) sealVars(vars map[string]any, alsoSecret map[string]bool) map[string]any {
	out := maps.Clone(vars)
	info := f.moduleInfo()
	for k, v := range vars {
		s, ok := v.(string)
		if !(info.Secret(k) || alsoSecret[k]) || (ok && s == secretMarker) {
			continue
		}
		if !ok {
			s = fmt.Sprint(v)
		}
		if f.secretVars == nil {
			f.secretVars = map[string]string{}
		}
		f.secretVars[k] = s
		f.redact.Add(s)
		out[k] = secretMarker
	}
	return out
}

// unsealVars puts the values of a release's secret variables back for Terraform, from this
// command's --var or the environment; a value nowhere to be found is an error that says how to
// give it.
func (f *Fleet) unsealVars(release string, vars map[string]any) (map[string]any, error) {
	out := maps.Clone(vars)
	var missing []string
	for k, v := range vars {
		if s, ok := v.(string); !ok || s != secretMarker {
			continue
		}
		val, ok := f.secretVars[k]
		if !ok {
			val, ok = os.LookupEnv(secretEnv(k))
			f.redact.Add(val)
		}
		if !ok {
			missing = append(missing, k)
			continue
		}
		out[k] = val
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		var how []string
		for _, k := range missing {
			how = append(how, fmt.Sprintf("--var %s=... or %s", k, secretEnv(k)))
		}
		return nil, fmt.Errorf("release %s needs the secret variable(s) %s, which rollout does not keep: give them to this command (%s)",
			release, strings.Join(missing, ", "), strings.Join(how, "; "))
	}
	return out, nil
}

// secretEnviron is the environment that hands this process's secret variables to a background
// process of its own.
func (f *Fleet) secretEnviron() []string {
	var out []string
	for k, v := range f.secretVars {
		out = append(out, secretEnv(k)+"="+v)
	}
	return out
}
