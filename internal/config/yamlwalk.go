package config

import (
	"errors"
	"fmt"
	"github.com/agext/levenshtein"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"
)

// FieldError is one problem in a configuration file, located by file, line and key path.
type FieldError struct {
	File string // path relative to the fleet root where possible
	Line int
	Key  string // dotted key path, e.g. rings[1].maxParallel
	Msg  string
}

func (e *FieldError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Key, e.Msg)
}

// Errors is every problem found in one validation pass.
type Errors []*FieldError

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// walker decodes yaml nodes strictly, collecting errors instead of stopping at the first.
type walker struct {
	file string
	errs *Errors
	// lines records the line of every key path the walker visited (nil: none), so that a problem
	// found later, across files, still names the line of the key it is about.
	lines map[string]int
}

func (w walker) fail(n *yaml.Node, key, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	} else {
		line = w.lineOf(key)
	}
	*w.errs = append(*w.errs, &FieldError{File: w.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// lineOf is the line of key, or of the nearest enclosing key the walker visited ("rings[1].x"
// falls back to "rings[1]", then "rings").
func (w walker) lineOf(key string) int {
	for k := key; k != ""; {
		if l, ok := w.lines[k]; ok {
			return l
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fields returns a mapping's values by key, reporting keys not in allowed (nil allows any).
func (w walker) fields(n *yaml.Node, path string, allowed ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n == nil {
		return out
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return out
		}
		w.fail(n, path, "must be a mapping of keys to values")
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if w.lines != nil {
			w.lines[join(path, k.Value)] = k.Line
		}
		if allowed != nil && !slices.Contains(allowed, k.Value) {
			w.fail(k, join(path, k.Value), "unknown key%s", suggest(k.Value, allowed))
			continue
		}
		if _, dup := out[k.Value]; dup {
			w.fail(k, join(path, k.Value), "key given twice")
		}
		out[k.Value] = v
	}
	return out
}

func suggest(got string, allowed []string) string {
	for _, a := range allowed {
		la, lg := strings.ToLower(a), strings.ToLower(got)
		if la == lg || levenshtein.Distance(la, lg, nil) <= max(2, len(lg)*2/5) {
			return fmt.Sprintf(" (did you mean %q?)", a)
		}
	}
	s := append([]string(nil), allowed...)
	sort.Strings(s)
	return " (known keys: " + strings.Join(s, ", ") + ")"
}

func (w walker) str(n *yaml.Node, path string) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		w.fail(n, path, "must be a string")
		return ""
	}
	return n.Value
}

func (w walker) integer(n *yaml.Node, path string, minimum int) int {
	if n == nil {
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		w.fail(n, path, "must be a whole number, got %q", n.Value)
		return 0
	}
	if v < minimum {
		w.fail(n, path, "must be at least %d, got %d", minimum, v)
	}
	return v
}

func (w walker) boolean(n *yaml.Node, path string) bool {
	if n == nil {
		return false
	}
	switch n.Value {
	case "true":
		return true
	case "false":
		return false
	}
	w.fail(n, path, "must be true or false, got %q", n.Value)
	return false
}

func (w walker) duration(n *yaml.Node, path string) Duration {
	if n == nil {
		return 0
	}
	d, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		w.fail(n, path, "must be a Go duration such as 90s, 10m or 2h, got %q", n.Value)
		return 0
	}
	if d < 0 {
		w.fail(n, path, "must not be negative, got %s", n.Value)
	}
	return Duration(d)
}

func (w walker) strings(n *yaml.Node, path string) []string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		w.fail(n, path, "must be a list of strings")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		out = append(out, w.str(c, fmt.Sprintf("%s[%d]", path, i)))
	}
	return out
}

func (w walker) stringMap(n *yaml.Node, path string) map[string]string {
	if n == nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range w.fields(n, path) {
		out[k] = w.str(v, join(path, k))
	}
	return out
}

// anyMap decodes a free-form mapping (Terraform variables, backend settings), keeping key case.
func (w walker) anyMap(n *yaml.Node, path string) map[string]any {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		w.fail(n, path, "must be a mapping of names to values")
		return nil
	}
	budget := maxValues
	v, err := decodeValue(n, &budget, 0)
	if err != nil {
		w.fail(n, path, "%v", err)
		return nil
	}
	out, _ := v.(map[string]any)
	return out
}

// maxValues bounds how many values one mapping may expand to (aliases included), and maxDepth how
// deep it may nest: a few kilobytes of YAML aliases must not become gigabytes.
const (
	maxValues = 1_000_000
	maxDepth  = 100
)

// decodeValue turns a YAML node into plain values (maps, slices, scalars) in time linear in its
// size (yaml.v3's own decoding checks a mapping's keys for duplicates pairwise, which took minutes
// for a mapping of two million keys), refusing duplicate keys.
func decodeValue(n *yaml.Node, budget *int, depth int) (any, error) {
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("more than %d values (aliases expanding?)", maxValues)
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("nested more than %d levels deep", maxDepth)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return decodeValue(n.Alias, budget, depth+1)
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a key must be a plain name", k.Line)
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d: key %q given twice", k.Line, k.Value)
			}
			val, err := decodeValue(v, budget, depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = val
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			val, err := decodeValue(e, budget, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, val)
		}
		return out, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML", n.Line)
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// cloudEnvPrefixes are variables that carry cloud identity. They never pass through passEnv: a
// boundary's credentials come from its identity settings only, so that one cloud's cannot leak
// into another's Terraform run.
var cloudEnvPrefixes = []string{"ARM_", "AZURE_", "AWS_", "GOOGLE_", "CLOUDSDK_", "GCLOUD_", "MSI_", "IDENTITY_", "ACTIONS_ID_TOKEN_"}

// cloudSettingEnv are variables with a cloud prefix that carry no identity: passEnv may name them.
var cloudSettingEnv = []string{"AWS_CA_BUNDLE", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"}

// envNames reads a list of environment variable names for passEnv.
func (w walker) envNames(n *yaml.Node, path string) []string {
	names := w.strings(n, path)
	for i, name := range names {
		switch {
		case !envNameRE.MatchString(name):
			w.fail(n.Content[i], fmt.Sprintf("%s[%d]", path, i), "%q is not an environment variable name", name)
		case slices.Contains(cloudSettingEnv, name):
		default:
			for _, p := range cloudEnvPrefixes {
				if strings.HasPrefix(strings.ToUpper(name), p) {
					w.fail(n.Content[i], fmt.Sprintf("%s[%d]", path, i), "%s carries cloud identity and never passes through: give a boundary its credentials under boundaries.<name>.identity", name)
					break
				}
			}
		}
	}
	return names
}

// rate reads "N/s", "N/m" or "N/h" (N may be a decimal) as events per second.
func (w walker) rate(n *yaml.Node, path string) float64 {
	if n == nil {
		return 0
	}
	num, unit, ok := strings.Cut(n.Value, "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	per := map[string]float64{"s": 1, "m": 60, "h": 3600}[strings.TrimSpace(unit)]
	if n.Kind != yaml.ScalarNode || !ok || err != nil || per == 0 || v <= 0 {
		w.fail(n, path, "want a rate such as 2/s, 30/m or 100/h, got %q", n.Value)
		return 0
	}
	return v / per
}

// Condition is a gate condition over the measurement's `result` (github.com/expr-lang/expr),
// compiled and type-checked when the configuration is loaded, so a typo fails at validate time.
type Condition struct {
	Source string
	Scalar *vm.Program // compiled with result a number; nil if it does not type-check so
	Vector *vm.Program // compiled with result a list of numbers; nil if it does not type-check so
	Any    *vm.Program // compiled with result of any type (terraform-output)
}

// ScalarEnv, VectorEnv and AnyEnv are what a condition sees.
type (
	ScalarEnv struct {
		Result float64 `expr:"result"`
	}
	VectorEnv struct {
		Result []float64 `expr:"result"`
	}
	AnyEnv struct {
		Result any `expr:"result"`
	}
)

// condition compiles a gate condition, reporting a problem against the key.
func (w walker) condition(n *yaml.Node, path, src string, numeric bool) *Condition {
	c, err := CompileCondition(src, numeric)
	if err != nil {
		w.fail(n, path, "%v", err)
	}
	return c
}

// CompileCondition compiles src for a numeric provider (numeric: result is a number or a list of
// numbers, and the condition must type-check as one of them) or any other (result of any type).
func CompileCondition(src string, numeric bool) (*Condition, error) {
	if src == "" {
		return nil, nil
	}
	c := &Condition{Source: src}
	clean := func(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
	if !numeric {
		p, err := expr.Compile(src, expr.Env(AnyEnv{}), expr.AsBool())
		if err != nil {
			return nil, errors.New(clean(err))
		}
		c.Any = p
		return c, nil
	}
	var errS, errV error
	c.Scalar, errS = expr.Compile(src, expr.Env(ScalarEnv{}), expr.AsBool())
	c.Vector, errV = expr.Compile(src, expr.Env(VectorEnv{}), expr.AsBool())
	if errS != nil && errV != nil {
		return nil, fmt.Errorf("with result a number: %s; with result a list of numbers: %s", clean(errS), clean(errV))
	}
	return c, nil
}

func (w walker) number(n *yaml.Node, path string) float64 {
	if n == nil {
		return 0
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if n.Kind != yaml.ScalarNode || err != nil {
		w.fail(n, path, "must be a number, got %q", n.Value)
		return 0
	}
	if v < 0 {
		w.fail(n, path, "must not be negative, got %s", n.Value)
	}
	return v
}
