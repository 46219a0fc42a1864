package provision

import (
	"fmt"
	"maps"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

// The module variables of a target: the release's values rendered over the target and its boundary.

// TemplateData is what release variables see of a target: config.TemplateData (the target and
// its boundary's implied values) and {{ .Release.Name }}.
func TemplateData(release rings.ReleaseRef, t *config.Target, b *config.Boundary) map[string]any {
	data := config.TemplateData(t, b)
	data["Release"] = release
	return data
}

// VarsFor renders a release's variables for one target (see TemplateData), then lays the target's
// own on top. Rendering is plain text: a value reaches Terraform byte for byte.
func VarsFor(release rings.ReleaseRef, releaseVars map[string]any, t *config.Target, b *config.Boundary) (map[string]any, error) {
	data := TemplateData(release, t, b)
	out := map[string]any{}
	for k, v := range releaseVars {
		r, err := renderValue(k, v, data)
		if err != nil {
			return nil, fmt.Errorf("release variable %s: %w", k, err)
		}
		out[k] = r
	}
	maps.Copy(out, t.Vars)
	return out, nil
}

func renderValue(name string, v any, data map[string]any) (any, error) {
	switch x := v.(type) {
	case string:
		return config.Render(name, x, data)
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			r, err := renderValue(name, e, data)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := renderValue(name, e, data)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}
