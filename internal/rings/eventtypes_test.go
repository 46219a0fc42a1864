package rings

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"testing"
)

// EventTypes holds every EventType constant of the package, once: the lists kept by hand had
// drifted (describe's test missed 4 of 47).
func TestEventTypesHoldsEveryType(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []EventType
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || vs.Type == nil || len(vs.Values) != 1 {
			return true
		}
		if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "EventType" {
			v, _ := strconv.Unquote(vs.Values[0].(*ast.BasicLit).Value)
			declared = append(declared, EventType(v))
		}
		return true
	})
	if len(declared) < 40 || !slices.Equal(declared, EventTypes) {
		t.Fatalf("EventTypes %v\ndeclared  %v", EventTypes, declared)
	}
}

// The event schema names every type (docs/schema/event.v1.json, its examples).
func TestTheEventSchemaNamesEveryType(t *testing.T) {
	b, err := os.ReadFile("../../docs/schema/event.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Type struct{ Examples []EventType } `json:"type"`
		}
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(schema.Properties.Type.Examples))
	want := slices.Sorted(slices.Values(EventTypes))
	if !slices.Equal(got, want) {
		t.Fatalf("the schema's event types %v\nthe engine's %v", got, want)
	}
}
