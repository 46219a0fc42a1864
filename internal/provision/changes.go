package provision

import (
	"fmt"
	"slices"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"

	"github.com/rollout-dev/rollout/internal/redact"
)

// ResourceChange is what a plan would do to one resource, for a person to review: the action and,
// for an update or a replacement, each attribute that changes, before and after. Values Terraform
// marks sensitive are masked as Terraform masks them; values not known until the apply say so.
type ResourceChange struct {
	Address    string            `json:"address"`
	Action     string            `json:"action"` // create | update | replace | delete | read
	Attributes []AttributeChange `json:"attributes,omitempty"`
}

// AttributeChange is one attribute path (tags.release, ingress[0].port) before and after.
type AttributeChange struct {
	Path   string `json:"path"`
	Before any    `json:"before"`
	After  any    `json:"after"`
}

const (
	sensitiveValue = "(sensitive)"
	unknownValue   = "(known after apply)"
)

// PlanChanges lists a plan's resource changes (no-ops left out), by address. Beyond what Terraform
// marks sensitive, a value that holds a sensitive value of the plan (an attribute derived from a
// sensitive input, which Terraform itself prints) is masked too.
func PlanChanges(plan *tfjson.Plan) []ResourceChange {
	secrets := redact.New(sensitiveValues(plan)...)
	var out []ResourceChange
	for _, rc := range plan.ResourceChanges {
		if rc == nil || rc.Change == nil || rc.Change.Actions.NoOp() {
			continue
		}
		c := ResourceChange{Address: rc.Address, Action: action(rc.Change.Actions)}
		if c.Action == "update" || c.Action == "replace" || c.Action == "create" {
			c.Attributes = attributeChanges(rc.Change)
			for i, a := range c.Attributes {
				c.Attributes[i].Before, c.Attributes[i].After = maskHolding(secrets, a.Before), maskHolding(secrets, a.After)
			}
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ResourceChange) int { return strings.Compare(a.Address, b.Address) })
	return out
}

// sensitiveValues are the values Terraform marks sensitive anywhere in the plan, as text.
func sensitiveValues(plan *tfjson.Plan) []string {
	var out []string
	for _, rc := range plan.ResourceChanges {
		if rc == nil || rc.Change == nil {
			continue
		}
		for _, side := range [][2]any{{rc.Change.Before, rc.Change.BeforeSensitive}, {rc.Change.After, rc.Change.AfterSensitive}} {
			leaves := map[string]leaf{}
			flattenValues("", side[0], side[1], false, leaves)
			for _, l := range leaves {
				if l.sensitive && l.value != nil {
					out = append(out, fmt.Sprint(l.value))
				}
			}
		}
	}
	return out
}

// flattenValues is flatten keeping the values of sensitive leaves (to learn them, never to show).
func flattenValues(path string, v, sens any, sensAll bool, out map[string]leaf) {
	if b, ok := sens.(bool); ok {
		sensAll = sensAll || b
	}
	switch x := v.(type) {
	case map[string]any:
		sm, _ := sens.(map[string]any)
		for k, e := range x {
			flattenValues(join(path, k), e, sm[k], sensAll, out)
		}
	case []any:
		sl, _ := sens.([]any)
		for i, e := range x {
			flattenValues(fmt.Sprintf("%s[%d]", path, i), e, at(sl, i), sensAll, out)
		}
	default:
		out[path] = leaf{value: v, sensitive: sensAll}
	}
}

// maskHolding is v, or the sensitive mask when v's text holds a sensitive value of the plan.
func maskHolding(secrets *redact.Redactor, v any) any {
	s, ok := v.(string)
	if !ok || s == sensitiveValue || s == unknownValue || secrets.String(s) == s {
		return v
	}
	return sensitiveValue
}

func action(a tfjson.Actions) string {
	switch {
	case a.Replace():
		return "replace"
	case a.Create():
		return "create"
	case a.Delete():
		return "delete"
	case a.Update():
		return "update"
	case a.Read():
		return "read"
	}
	return fmt.Sprint(a)
}

// leaf is one value at a path, with whether it is sensitive or unknown there.
type leaf struct {
	value              any
	sensitive, unknown bool
}

// attributeChanges compares before and after leaf by leaf.
func attributeChanges(ch *tfjson.Change) []AttributeChange {
	before, after := map[string]leaf{}, map[string]leaf{}
	flatten("", ch.Before, ch.BeforeSensitive, nil, false, false, before)
	flatten("", ch.After, ch.AfterSensitive, ch.AfterUnknown, false, false, after)
	var paths []string
	for p := range before {
		paths = append(paths, p)
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var out []AttributeChange
	for _, p := range paths {
		b, inB := before[p]
		a, inA := after[p]
		if inA && inB && !a.unknown && fmt.Sprint(a.value) == fmt.Sprint(b.value) && a.sensitive == b.sensitive {
			continue
		}
		if !inB && inA && a.value == nil && !a.unknown {
			continue // a create leaves unset attributes unset
		}
		out = append(out, AttributeChange{Path: p, Before: shown(b, inB), After: shown(a, inA)})
	}
	return out
}

func shown(l leaf, present bool) any {
	switch {
	case !present:
		return nil
	case l.sensitive:
		return sensitiveValue
	case l.unknown:
		return unknownValue
	}
	return l.value
}

// flatten walks a value with its sensitive and unknown markers (each either a bool for the whole
// subtree, or a structure of the value's shape) into leaves by path.
func flatten(path string, v, sens, unk any, sensAll, unkAll bool, out map[string]leaf) {
	if b, ok := sens.(bool); ok {
		sensAll = sensAll || b
	}
	if b, ok := unk.(bool); ok {
		unkAll = unkAll || b
	}
	switch x := v.(type) {
	case map[string]any:
		if sensAll {
			out[path] = leaf{sensitive: true}
			return
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sm, _ := sens.(map[string]any)
		um, _ := unk.(map[string]any)
		for k, e := range x {
			flatten(join(path, k), e, sm[k], um[k], sensAll, unkAll, out)
		}
		for k, u := range um { // attributes only known after apply are absent from the value
			if _, ok := x[k]; !ok && u == true {
				out[join(path, k)] = leaf{unknown: true}
			}
		}
	case []any:
		if sensAll {
			out[path] = leaf{sensitive: true}
			return
		}
		sl, _ := sens.([]any)
		ul, _ := unk.([]any)
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", path, i), e, at(sl, i), at(ul, i), sensAll, unkAll, out)
		}
	default:
		if path == "" && v == nil {
			if unkAll {
				out[path] = leaf{unknown: true}
			}
			return
		}
		out[path] = leaf{value: v, sensitive: sensAll, unknown: unkAll && v == nil}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func at(l []any, i int) any {
	if i < len(l) {
		return l[i]
	}
	return nil
}
