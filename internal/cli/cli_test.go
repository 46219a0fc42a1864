package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/spf13/cobra"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"

	"github.com/rollout-dev/rollout/internal/journal"
	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/runs"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	root := NewRoot(IO{Out: &out, Err: &errb})
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString(err.Error())
	}
	return exitCode(err), out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("x"), 1},
		{&ExitErr{Code: ExitGateFailed}, 2},
		{fmt.Errorf("wrapped: %w", &ExitErr{Code: ExitWaiting}), 3},
		{fmt.Errorf("start: %w", &journal.LeaseHeldError{}), 5},
		{&ExitErr{Code: ExitRollbackFailed}, 6},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	// A report's exit code is what a command that shows it exits with.
	for _, code := range []int{ExitOK, ExitError, ExitGateFailed, ExitWaiting, ExitBlocked, ExitRollbackFailed, ExitAborted, ExitWaitTimeout} {
		if got := exitCode(reportExit(&Report{Run: "r", ExitCode: code})); got != code {
			t.Errorf("report exit %d: the command exits %d", code, got)
		}
	}
}

func TestValidateTheExampleFleetAsJSON(t *testing.T) {
	code, out, errs := run(t, "--config", "../..", "validate", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var v struct {
		Valid   bool
		Targets int
		Rings   []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.Valid || v.Targets != 6 || len(v.Rings) != 3 {
		t.Fatalf("validate --output json = %s (%v)", out, err)
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, errs := run(t, "--config", "../..", "validate", "--output", "yaml"); code != 1 || !strings.Contains(errs, "--output must be text or json") {
		t.Fatalf("bad --output: %d %s", code, errs)
	}
	if code, _, errs := run(t, "--config", "../..", "start"); code != 1 || !strings.Contains(errs, `"release" not set`) {
		t.Fatalf("start without --release: %d %s", code, errs)
	}
	if code, _, errs := run(t, "--config", t.TempDir(), "status"); code != 1 || !strings.Contains(errs, "no fleet configuration") {
		t.Fatalf("status without a fleet: %d %s", code, errs)
	}
	if _, err := parseVars([]string{"novalue"}); err == nil {
		t.Fatal("--var without = accepted")
	}
}

func TestProgressFooterAndPlainLines(t *testing.T) {
	v2 := rings.ReleaseRef{Name: "v2", Digest: "d"}
	plan := &rings.Plan{Kind: rings.KindRelease, Release: v2, Rings: []rings.RingPlan{
		{Name: "canary", MaxParallel: 1, Bake: rings.Duration(5 * time.Minute), Targets: []rings.TargetPlan{{Name: "c1", Release: v2}}},
		{Name: "gov", MaxParallel: 1, Approval: true, Quorum: 2, Targets: []rings.TargetPlan{{Name: "g1", Release: v2}}},
	}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := []rings.Event{{Type: rings.RunStarted, RunID: "r", Plan: plan, At: t0},
		{Type: rings.TargetApplied, Target: "c1", At: t0}, {Type: rings.TargetVerified, Target: "c1", At: t0}}
	s := rings.Replay(evs)
	if detail, counts := runs.RingLine(s, s.Rings[0]); detail != "baking" || counts != "1 verified" || runs.RingDone(s, s.Rings[0]) != 1 {
		t.Fatalf("canary: %q %q", detail, counts)
	}
	rings.Decide(s, rings.Event{Type: rings.RingBaked, Ring: "canary", At: t0.Add(5 * time.Minute)})
	if detail, counts := runs.RingLine(s, s.Rings[1]); detail != "awaiting approval (0 of 2)" || counts != "1 pending" {
		t.Fatalf("gov: %q %q", detail, counts)
	}

	var errb bytes.Buffer
	p := newProgress(IO{Err: &errb}, globals{v: viper.New()}, &rings.State{})
	for _, ev := range evs {
		p.event(ev)
	}
	p.close()
	if out := errb.String(); strings.Contains(out, "\x1b") || !strings.Contains(out, "c1: gates passed") || strings.Count(out, "\n") != 3 {
		t.Fatalf("not a terminal: want 3 plain lines, got %q", out)
	}
}

// The example fleets of every cloud must pass validate offline, through the same checks as any
// fleet (regions, partitions, universes, state backends), and a sovereign mistake must not.
func TestCloudExampleFleetsValidate(t *testing.T) {
	for _, f := range []string{"rollout.yaml", "rollout.azure.yaml", "rollout.aws.yaml", "rollout.gcp.yaml", "rollout.stack.yaml"} {
		code, out, errs := run(t, "--config", filepath.Join("..", "..", f), "validate")
		if code != 0 || !strings.Contains(out, "is valid") {
			t.Errorf("%s: exit %d\n%s%s", f, code, out, errs)
		}
	}
	dir := filepath.Dir(awsExample(t))
	gov := filepath.Join(dir, "environments", "aws", "govcloud.yaml")
	b, _ := os.ReadFile(gov)
	if err := os.WriteFile(gov, []byte(strings.Replace(string(b), "region: us-gov-east-1", "region: us-east-1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := run(t, "--config", filepath.Join(dir, "rollout.aws.yaml"), "validate")
	if code != ExitError || !strings.Contains(errs, "environments/aws/govcloud.yaml:17: targets[govcloud-east-1].region: us-east-1 is a region of partition aws, but boundary aws-us-gov is partition aws-us-gov") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

// awsExample copies the AWS example fleet into a temporary directory.
func awsExample(t *testing.T) string {
	dir := t.TempDir()
	for _, p := range []string{"environments/aws", "terraform/aws-stamp"} {
		if err := os.CopyFS(filepath.Join(dir, p), os.DirFS(filepath.Join("..", "..", p))); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "rollout.aws.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rollout.aws.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "rollout.aws.yaml")
}

func TestEnvAdd(t *testing.T) {
	cfg := awsExample(t)
	dir := filepath.Dir(cfg)
	code, out, errs := run(t, "--config", cfg, "env", "add", "--boundary", "aws-us-gov", "--region", "us-gov-east-1", "--name", "govcloud-east-2", "--ring", "govcloud", "--var", "aws_partition=aws-us-gov")
	if code != 0 || !strings.Contains(out, "wrote environments/aws/aws-us-gov/govcloud-east-2.yaml: target govcloud-east-2 (boundary aws-us-gov, region us-gov-east-1) in ring govcloud") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "environments", "aws", "aws-us-gov", "govcloud-east-2.yaml"))
	for _, want := range []string{"name: govcloud-east-2", "region: us-gov-east-1", "type: s3", "key: stamps/govcloud-east-2.tfstate", "bucket: acme-tfstate-govcloud", "aws_partition: aws-us-gov"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the written file lacks %q:\n%s", want, b)
		}
	}
	if code, _, errs := run(t, "--config", cfg, "env", "add", "--boundary", "aws-us-gov", "--region", "us-gov-east-1", "--name", "govcloud-east-2"); code != ExitError || !strings.Contains(errs, "target already declared") {
		t.Fatalf("a second time: exit %d %s", code, errs)
	}
	// A commercial region in GovCloud: refused by the fleet's validation, and nothing left behind.
	code, _, errs = run(t, "--config", cfg, "env", "add", "--boundary", "aws-us-gov", "--region", "us-east-1", "--name", "wrong-1")
	if code != ExitError || !strings.Contains(errs, "environments/aws/aws-us-gov/wrong-1.yaml was not kept") || !strings.Contains(errs, "us-east-1 is a region of partition aws") {
		t.Fatalf("wrong region: exit %d %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "environments", "aws", "aws-us-gov", "wrong-1.yaml")); err == nil {
		t.Fatal("the refused target's file was left behind")
	}
	if code, _, errs := run(t, "--config", cfg, "env", "add", "--boundary", "aws-us-gov", "--region", "us-gov-east-1", "--name", "x-1", "--ring", "china"); code != ExitError || !strings.Contains(errs, "ring china selects boundaries [aws-cn], not aws-us-gov") {
		t.Fatalf("wrong ring: exit %d %s", code, errs)
	}
}

// example copies one of the repository's example fleets into a temporary directory.
func example(t *testing.T, file, env, module string) string {
	dir := t.TempDir()
	for _, p := range []string{env, module} {
		if err := os.CopyFS(filepath.Join(dir, p), os.DirFS(filepath.Join("..", "..", p))); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join("..", "..", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, file)
}

// env add works for every example fleet: the new target validates, lacks none of the module's
// required variables (the boundary's own values come from release.vars templates), and keeps its
// state by the boundary's convention; a ring that selects by names gets the name in rollout.yaml;
// a cloud boundary without a convention is refused, and nothing is left behind. Before, the
// targets missed aws_partition or azure_environment, Azure China's got local state, the Azure gov
// ring was refused, and a refused add left an empty folder.
func TestEnvAddForEveryExampleFleet(t *testing.T) {
	for _, tc := range []struct {
		file, env, module      string
		args                   []string
		ring, wantInFile, note string
	}{
		{"rollout.aws.yaml", "environments/aws", "terraform/aws-stamp",
			[]string{"--boundary", "aws-us-gov", "--region", "us-gov-east-1", "--name", "govcloud-east-2", "--ring", "govcloud"}, "govcloud", "key: stamps/govcloud-east-2.tfstate", ""},
		{"rollout.azure.yaml", "environments/azure", "terraform/azure-stamp",
			[]string{"--boundary", "azure-usgov", "--region", "usgovarizona", "--name", "usgov-arizona-1", "--ring", "gov"}, "gov", "key: usgov-arizona-1.tfstate", ""},
		{"rollout.gcp.yaml", "environments/gcp", "terraform/gcp-stamp",
			[]string{"--boundary", "gcp", "--region", "europe-west1", "--name", "gcp-europe-west1-1", "--ring", "commercial", "--var", "project=acme-prod"}, "commercial", "prefix: stamps/gcp-europe-west1-1", ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cfg := example(t, tc.file, tc.env, tc.module)
			code, out, errs := run(t, append([]string{"--config", cfg, "env", "add"}, tc.args...)...)
			if code != 0 || !strings.Contains(out, "in ring "+tc.ring) || strings.Contains(errs, "note:") {
				t.Fatalf("exit %d\n%s%s", code, out, errs)
			}
			written, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg), tc.env, "*", "*.yaml"))
			found := false
			for _, p := range written {
				b, _ := os.ReadFile(p)
				found = found || strings.Contains(string(b), tc.wantInFile)
			}
			if !found {
				t.Fatalf("no written target file holds %q", tc.wantInFile)
			}
			if code, _, errs := run(t, "--config", cfg, "validate"); code != 0 || strings.Contains(errs, "note:") {
				t.Fatalf("the fleet after env add: exit %d %s", code, errs)
			}
		})
	}
	// Azure China without its backend convention: refused, not given local state, nothing left.
	cfg := example(t, "rollout.azure.yaml", "environments/azure", "terraform/azure-stamp")
	dir := filepath.Dir(cfg)
	b, _ := os.ReadFile(cfg)
	china := regexp.MustCompile(`(?s)    backend:\n      type: azurerm\n      config: \{environment: china,.*?\}\n`)
	if err := os.WriteFile(cfg, china.ReplaceAll(b, nil), 0o644); err != nil || china.Match(b) == false {
		t.Fatalf("could not take Azure China's convention out: %v", err)
	}
	code, _, errs := run(t, "--config", cfg, "env", "add", "--boundary", "azure-china", "--region", "chinanorth2", "--name", "china-north2-1", "--ring", "china")
	if code != ExitError || !strings.Contains(errs, "boundary azure-china (cloud azure) has no state backend convention") {
		t.Fatalf("no convention: exit %d %s", code, errs)
	}
	// A target no ring selects: refused, and the folder env add made is gone again.
	code, _, errs = run(t, "--config", cfg, "env", "add", "--boundary", "azure-usgov", "--region", "usgovarizona", "--name", "stray-1")
	if code != ExitError || !strings.Contains(errs, "is in no ring") {
		t.Fatalf("no ring: exit %d %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "environments", "azure", "azure-usgov")); err == nil {
		t.Fatal("a refused env add left its folder behind")
	}
	main, _ := os.ReadFile(cfg)
	if strings.Contains(string(main), "stray-1") || strings.Contains(string(main), "china-north2-1") {
		t.Fatalf("a refused env add changed %s:\n%s", cfg, main)
	}
}

// Every command's help shows examples.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.Hidden && c.Name() != "help" && c.Name() != "completion" && c.Example == "" {
			t.Errorf("%s has no Example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRoot(IO{}))
}

// A mistyped flag gets the nearest flag of the command as a suggestion; a stranger one none.
func TestAMistypedFlagGetsASuggestion(t *testing.T) {
	code, _, errText := run(t, "start", "--relase", "v1")
	if code != 1 || !strings.Contains(errText, "did you mean --release?") {
		t.Fatalf("--relase: exit %d: %s", code, errText)
	}
	if _, _, errText := run(t, "status", "--confg", "x"); !strings.Contains(errText, "did you mean --config?") {
		t.Fatalf("--confg (a flag of the root): %s", errText)
	}
	if _, _, errText := run(t, "start", "--zzzzzzzz"); strings.Contains(errText, "did you mean") {
		t.Fatalf("a suggestion for nothing near: %s", errText)
	}
}
