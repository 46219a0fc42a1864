package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// The CI contract (docs/ci-contract.md): what each command prints on stdout with --output json,
// as a versioned schema under docs/schema. A command that fails before printing its own document
// prints error.v1.json; one that has nothing to do says so in its own document. A command new to
// the tree must be named here, with its schemas or why it prints no JSON: TestEveryCommandIsInTheContract
// walks the tree, and the e2e contract test validates each command's output against these.
var jsonSchemas = map[string][]string{
	"rollout abort":           {"report.v1.json", "rollback-preview.v1.json"},
	"rollout approve":         {"report.v1.json"},
	"rollout bake end":        {"report.v1.json"},
	"rollout demo":            {"demo.v1.json"},
	"rollout drift":           {"drift.v1.json"},
	"rollout drift ack":       {"report.v1.json"},
	"rollout env add":         {"env-add.v1.json"},
	"rollout evidence":        {"evidence.v1.json"},
	"rollout evidence keygen": {"keygen.v1.json"},
	"rollout evidence verify": {"evidence-verify.v1.json"},
	"rollout expand":          {"report.v1.json", "nothing-to-do.v1.json"},
	"rollout fleet":           {"fleet.v1.json"},
	"rollout freeze":          {"freeze.v1.json"},
	"rollout gate override":   {"report.v1.json"},
	"rollout init":            {"init.v1.json"},
	"rollout history":         {"history.v1.json"},
	"rollout pause":           {"report.v1.json"},
	"rollout plan":            {"plan.v1.json"},
	"rollout preflight":       {"preflight.v1.json"},
	"rollout release export":  {"release.v1.json"},
	"rollout release import":  {"release.v1.json"},
	"rollout resume":          {"report.v1.json"},
	"rollout rollback":        {"report.v1.json", "rollback-preview.v1.json", "nothing-to-do.v1.json"},
	"rollout start":           {"report.v1.json", "nothing-to-do.v1.json"},
	"rollout state doctor":    {"doctor.v1.json"},
	"rollout state import":    {"state-transfer.v1.json"},
	"rollout state migrate":   {"state-migrate.v1.json"},
	"rollout status":          {"report.v1.json"},
	"rollout validate":        {"validate.v1.json"},
	"rollout version":         {"version.v1.json"},
}

// errorSchema is what any command prints with --output json when it fails before printing its
// own document.
const errorSchema = "error.v1.json"

// withoutJSON are the commands that print no JSON document, and why.
var withoutJSON = map[string]string{
	"rollout":              "prints its help (rollout --version: as rollout version)",
	"rollout completion":   "writes a shell script",
	"rollout help":         "prints help",
	"rollout serve":        "a server: its JSON is the HTTP API's (/api/...)",
	"rollout worker":       "a long-running Temporal worker: it reports through the journal and its logs",
	"rollout state export": "stdout is the export itself (NDJSON), unless --to FILE",
	"rollout env":          "a group of commands",
	"rollout bake":         "a group of commands",
	"rollout gate":         "a group of commands",
	"rollout release":      "a group of commands",
	"rollout state":        "a group of commands",
}

// Schemas are the schemas a command's --output json follows (docs/schema), or why it prints none.
func Schemas(cmd *cobra.Command) (schemas []string, none string) {
	p := cmd.CommandPath()
	if s, ok := jsonSchemas[p]; ok {
		return s, ""
	}
	if why, ok := withoutJSON[p]; ok {
		return nil, why
	}
	for c := cmd; c != nil; c = c.Parent() { // cobra's own completion subcommands
		if c.Name() == "completion" || c.Name() == "__complete" || c.Name() == "__completeNoDesc" {
			return nil, withoutJSON["rollout completion"]
		}
	}
	return nil, ""
}

// printed counts what reached stdout: a command that failed without printing its document gets
// the error document instead.
type printed struct {
	w io.Writer
	n int64
}

func (p *printed) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	return n, err
}

// wantsJSON: --output json was given (or ROLLOUT_OUTPUT=json), as far as the flags were parsed.
func wantsJSON(root *cobra.Command) bool {
	if f := root.PersistentFlags().Lookup("output"); f != nil && f.Changed {
		return f.Value.String() == "json"
	}
	return os.Getenv("ROLLOUT_OUTPUT") == "json"
}

// errorDoc is error.v1.json.
func errorDoc(out io.Writer, err error, code int) {
	_ = writeJSON(out, map[string]any{"v": 1, "error": fmt.Sprint(err), "exitCode": code})
}
