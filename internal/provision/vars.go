package provision

import (
	"fmt"
	"html/template"
	"maps"
	"strings"

	"github.com/rollout-dev/rollout/internal/clouds"
	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

// The module variables of a target: the release's values rendered over the target and its boundary.

// TemplateData is what release variables (and a boundary's backend convention) see of a target:
// {{ .Release.Name }}, {{ .Target.Region }}, and its boundary's implied values, so that a module
// gets {{ .Boundary.Partition }}, {{ .Boundary.Environment }} or {{ .Boundary.UniverseDomain }}
// without every target repeating them.
func TemplateData(release rings.ReleaseRef, t *config.Target, b *config.Boundary) map[string]any {
	bd := map[string]any{"Name": t.Boundary, "Cloud": "", "Partition": "", "Environment": "", "UniverseDomain": ""}
	if b != nil {
		bd["Cloud"], bd["Partition"], bd["Environment"] = b.Cloud, b.Partition, b.Environment
		if b.Cloud == "gcp" {
			bd["UniverseDomain"] = firstOf(b.UniverseDomain, clouds.DefaultUniverse)
		}
	}
	return map[string]any{
		"Release":  release,
		"Target":   map[string]any{"Name": t.Name, "Boundary": t.Boundary, "Region": t.Region, "Labels": t.Labels},
		"Boundary": bd,
	}
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// VarsFor renders a release's variables for one target (see TemplateData), then lays the target's
// own on top.
func VarsFor(release rings.ReleaseRef, releaseVars map[string]any, t *config.Target, b *config.Boundary) (map[string]any, error) {
	data := TemplateData(release, t, b)
	out := map[string]any{}
	for k, v := range releaseVars {
		r, err := renderValue(v, data)
		if err != nil {
			return nil, fmt.Errorf("release variable %s: %w", k, err)
		}
		out[k] = r
	}
	maps.Copy(out, t.Vars)
	return out, nil
}

func renderValue(v any, data map[string]any) (any, error) {
	switch x := v.(type) {
	case string:
		if !strings.Contains(x, "{{") {
			return x, nil
		}
		tmpl, err := template.New("var").Option("missingkey=error").Parse(x)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, data); err != nil {
			return nil, err
		}
		return b.String(), nil
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			r, err := renderValue(e, data)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := renderValue(e, data)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}
