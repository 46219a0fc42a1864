package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spf13/cobra"
)

// Every command of the tree is in the CI contract: it names the schemas of its --output json,
// each a file under docs/schema that compiles, or says why it prints none; and every entry of the
// contract is a command of the tree.
func TestEveryCommandIsInTheContract(t *testing.T) {
	root := NewRoot(IO{})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	seen := map[string]bool{}
	c := jsonschema.NewCompiler()
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		seen[cmd.CommandPath()] = true
		schemas, none := Schemas(cmd)
		if len(schemas) == 0 && none == "" {
			t.Errorf("%q is in no contract: name its --output json schema in jsonSchemas (docs/schema), or why it prints none in withoutJSON", cmd.CommandPath())
		}
		for _, s := range append(schemas, errorSchema) {
			if _, err := c.Compile(filepath.Join("..", "..", "docs", "schema", s)); err != nil {
				t.Errorf("%s: %s: %v", cmd.CommandPath(), s, err)
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for p := range jsonSchemas {
		if !seen[p] {
			t.Errorf("jsonSchemas names %q, which is no command", p)
		}
	}
	for p := range withoutJSON {
		if !seen[p] {
			t.Errorf("withoutJSON names %q, which is no command", p)
		}
	}
	if _, err := os.Stat(filepath.Join("..", "..", "docs", "schema", errorSchema)); err != nil {
		t.Error(err)
	}
}
