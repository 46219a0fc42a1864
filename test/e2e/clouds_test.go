//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollout-dev/rollout/internal/testsupport/ststest"
)

// envDump is a root module whose apply writes the environment Terraform's own process tree saw
// (local-exec runs under terraform/tofu) to out_dir/<target>.env.
const envDump = `
variable "app_version" { type = string }
variable "target" { type = string }
variable "out_dir" { type = string }
resource "terraform_data" "env" {
  triggers_replace = [var.app_version]
  provisioner "local-exec" {
    command = "env > '${var.out_dir}/${var.target}.env'"
  }
}
output "seen" { value = var.target }
`

// TestBoundariesSeeOnlyTheirOwnCredentials runs one ring over a commercial AWS target and a
// GovCloud one, from a runner whose environment holds both boundaries' keys and ambient commercial
// credentials besides. Each Terraform process must see its own boundary's keys only, preflight
// must prove each identity against (a stand-in for) STS, and no secret may reach the journal,
// the events or the output.
func TestBoundariesSeeOnlyTheirOwnCredentials(t *testing.T) {
	t.Parallel()
	sts := ststest.New(t)
	sts.Set("AKIACOMMERCIAL0001", "arn:aws:iam::111111111111:user/deployer")
	sts.Set("AKIAGOVCLOUD000001", "arn:aws-us-gov:iam::222222222222:user/deployer")

	dir := t.TempDir()
	out := filepath.Join(dir, "seen")
	f := &fleet{t: t, dir: dir}
	f.write("terraform/envdump/main.tf", envDump)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	f.write("rollout.yaml", fmt.Sprintf(`release:
  module: terraform/envdump
  vars: {app_version: "{{ .Release.Name }}", target: "{{ .Target.Name }}", out_dir: %q}
boundaries:
  aws:
    cloud: aws
    partition: aws
    identity: {accessKeyIdEnv: COM_KEY, secretAccessKeyEnv: COM_SECRET, accountId: "111111111111"}
    endpoints: {sts: %q}
  aws-us-gov:
    cloud: aws
    partition: aws-us-gov
    identity: {accessKeyIdEnv: GOV_KEY, secretAccessKeyEnv: GOV_SECRET, accountId: "222222222222"}
    endpoints: {sts: %q}
rings:
  - name: everywhere
    targets: {boundaries: [aws, aws-us-gov]}
`, out, sts.URL, sts.URL))
	f.write("environments/aws.yaml", `targets:
  - {name: use1, boundary: aws, region: us-east-1, backend: {type: local}}
  - {name: gov-w1, boundary: aws-us-gov, region: us-gov-west-1, backend: {type: local}}
`)
	const govSecret, comSecret, ambientSecret = "planted-GOV-secret-5f3a9c", "planted-COM-secret-0b7e21", "ambient-runner-secret-77d1"
	f.env = []string{"COM_KEY=AKIACOMMERCIAL0001", "COM_SECRET=" + comSecret, "GOV_KEY=AKIAGOVCLOUD000001", "GOV_SECRET=" + govSecret,
		"AWS_ACCESS_KEY_ID=AKIAAMBIENTRUNNER1", "AWS_SECRET_ACCESS_KEY=" + ambientSecret, "AWS_PROFILE=runner-default",
		"ARM_CLIENT_SECRET=" + ambientSecret, "GOOGLE_APPLICATION_CREDENTIALS=/runner/commercial.json"}

	f.must(0, "validate")
	pf := f.must(0, "preflight")
	if !strings.Contains(pf.stdout, "aws-us-gov  aws    aws-us-gov  arn:aws-us-gov:iam::222222222222:user/deployer  222222222222  ok") {
		t.Fatalf("preflight:\n%s", pf.stdout)
	}
	r := f.must(0, "start", "--release", "v1", "--output", "json")

	seen := func(target string) string {
		b, err := os.ReadFile(filepath.Join(out, target+".env"))
		if err != nil {
			t.Fatalf("%s's Terraform run wrote no environment: %v", target, err)
		}
		return string(b)
	}
	gov, com := seen("gov-w1"), seen("use1")
	for _, c := range []struct {
		name, env string
		want      []string
		not       []string
	}{
		{"gov-w1", gov, []string{"AWS_ACCESS_KEY_ID=AKIAGOVCLOUD000001", "AWS_SECRET_ACCESS_KEY=" + govSecret, "AWS_REGION=us-gov-west-1", "AWS_ENDPOINT_URL_STS=" + sts.URL},
			[]string{"AKIACOMMERCIAL0001", comSecret, "AKIAAMBIENT", ambientSecret, "runner-default", "GOOGLE_APPLICATION_CREDENTIALS", "ARM_", "COM_KEY", "GOV_KEY="}},
		{"use1", com, []string{"AWS_ACCESS_KEY_ID=AKIACOMMERCIAL0001", "AWS_SECRET_ACCESS_KEY=" + comSecret, "AWS_REGION=us-east-1"},
			[]string{"AKIAGOVCLOUD000001", govSecret, "AKIAAMBIENT", ambientSecret, "runner-default", "ARM_"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.env, w+"\n") {
				t.Errorf("%s: Terraform's environment lacks %s", c.name, w)
			}
		}
		for _, n := range c.not {
			if strings.Contains(c.env, n) {
				t.Errorf("%s: Terraform's environment holds %q, which is not its boundary's", c.name, n)
			}
		}
	}

	// Preflight proved each identity in its own partition, and the report says so.
	var rep struct {
		Phase string `json:"phase"`
		Rings []struct {
			Boundaries []struct {
				Boundary string `json:"boundary"`
				Verified bool   `json:"verified"`
				Identity struct {
					Scope, Principal, Account, Region string
				} `json:"identity"`
			} `json:"boundaries"`
		} `json:"rings"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, r.stdout)
	}
	got := map[string]string{}
	for _, b := range rep.Rings[0].Boundaries {
		got[b.Boundary] = fmt.Sprintf("%v %s %s %s %s", b.Verified, b.Identity.Scope, b.Identity.Principal, b.Identity.Account, b.Identity.Region)
	}
	if got["aws-us-gov"] != "true aws-us-gov arn:aws-us-gov:iam::222222222222:user/deployer 222222222222 us-gov-west-1" ||
		got["aws"] != "true aws arn:aws:iam::111111111111:user/deployer 111111111111 us-east-1" {
		t.Fatalf("boundaries in the report: %v", got)
	}
	scopes := strings.Join(sts.Requested(), "\n")
	if !strings.Contains(scopes, "GetCallerIdentity 20") || !strings.Contains(scopes, "/us-gov-west-1/sts/aws4_request") || !strings.Contains(scopes, "/us-east-1/sts/aws4_request") {
		t.Fatalf("STS requests:\n%s", scopes)
	}

	// A GovCloud key that turns out to be commercial: the boundary is refused before Terraform
	// runs there, the ring fails, and the commercial target is rolled back.
	f.env = append(f.env, "GOV_KEY=AKIACOMMERCIAL0001")
	r2 := f.run("start", "--release", "v2")
	if r2.code != 2 || !strings.Contains(r2.stderr, "boundary aws-us-gov refused") || !strings.Contains(r2.stderr, "the credentials are of partition aws") {
		t.Fatalf("a commercial key in GovCloud: exit %d\n%s", r2.code, lastLines(r2.stderr, 30))
	}
	if strings.Contains(seen("gov-w1"), "AKIACOMMERCIAL0001") {
		t.Fatal("Terraform ran in GovCloud with the commercial key")
	}

	// No secret anywhere: the journal (its file and its export), events, output.
	exp := f.must(0, "state", "export")
	db, _ := os.ReadFile(filepath.Join(dir, ".rollout", "state.db"))
	st := f.run("status", "--output", "json")
	if !strings.Contains(st.stdout, `"name":"gov-w1","boundary":"aws-us-gov","phase":"rollback_skipped"`) || !strings.Contains(st.stdout, "Terraform never ran there") {
		t.Errorf("the refused target was untouched, so nothing is rolled back there:\n%s", st.stdout)
	}
	for name, text := range map[string]string{"journal file": string(db), "journal export": exp.stdout, "start output": r.stdout + r.stderr,
		"failed start": r2.stdout + r2.stderr, "status": st.stdout} {
		for _, secret := range []string{govSecret, comSecret, ambientSecret} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds a secret", name)
			}
		}
	}
}

// TestBoundaryProviderMirror: a boundary with a provider mirror installs providers from it alone.
// The runner's own CLI configuration here offers no way to get providers at all, so the run can
// only succeed through the boundary's mirror.
func TestBoundaryProviderMirror(t *testing.T) {
	t.Parallel()
	rc, err := os.ReadFile(os.Getenv("TF_CLI_CONFIG_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(rc), `path = "`)
	mirror, _, _ := strings.Cut(after, `"`)
	f := newFleet(t, fleetSpec{rings: "  - name: only\n    targets: {boundaries: [local-a]}\n", targets: "targets:\n" + targetsYAML("m", "local-a", "commercial", 2, "")})
	cfg, _ := os.ReadFile(filepath.Join(f.dir, "rollout.yaml"))
	f.write("rollout.yaml", strings.Replace(string(cfg), "local-a: {cloud: local}", fmt.Sprintf("local-a: {cloud: local, providerMirror: %q}", mirror), 1)+
		"\n")
	f.write("empty.tfrc", "provider_installation {\n  direct {\n    include = [\"example.invalid/*/*\"]\n  }\n}\n")
	f.env = []string{"TF_CLI_CONFIG_FILE=" + filepath.Join(f.dir, "empty.tfrc")}
	f.must(0, "start", "--release", "v1")
	if f.deployedVersion("m-1") != "v1" || f.deployedVersion("m-2") != "v1" {
		t.Fatal("not deployed through the boundary's mirror")
	}
	links, _ := filepath.Glob(filepath.Join(f.dir, ".rollout", "providers", "*-*", ".rollout-mirror.tfrc"))
	if len(links) != 1 {
		t.Fatalf("want one resolution from the mirror, got %v", links)
	}
}

// rollout init writes a starter fleet for each cloud and its scopes that validates at once; the
// local one plans and starts, and the AWS one (GovCloud and commercial) plans once its identities
// are there (keys in the variables it names, an STS stand-in for the partitions' endpoints).
func TestInitWritesAFleetThatValidatesAndPlans(t *testing.T) {
	t.Parallel()
	for _, c := range [][]string{{"local"}, {"azure", "--scope", "public", "--scope", "usgovernment", "--scope", "china"},
		{"gcp", "--scope", "googleapis.com", "--scope", "s3nsapis.fr"}} {
		f := &fleet{t: t, dir: t.TempDir()}
		r := f.must(0, append([]string{"init", "--dir", f.dir, "--output", "json", "--cloud"}, c...)...)
		conformsTo(t, "init.v1.json", r.stdout)
		f.must(0, "validate")
		if c[0] == "local" {
			f.must(0, "plan", "--release", "v1")
			f.must(0, "start", "--release", "v1")
			for _, target := range []string{"local-1", "local-2"} {
				if rel, _ := f.stateRelease(target); rel != "v1" {
					t.Fatalf("the local starter's %s: Terraform's state says %q", target, rel)
				}
			}
		}
	}
	f := &fleet{t: t, dir: t.TempDir()}
	f.must(1, "init", "--dir", f.dir, "--cloud", "aws", "--scope", "aws-us-gvo") // did you mean
	f.must(0, "init", "--dir", f.dir, "--cloud", "aws", "--scope", "aws", "--scope", "aws-us-gov")
	f.must(1, "init", "--dir", f.dir, "--cloud", "aws") // never over a fleet
	sts := ststest.New(t)
	sts.Set("AKIACOMMERCIAL0001", "arn:aws:iam::111111111111:user/deployer")
	sts.Set("AKIAGOVCLOUD000001", "arn:aws-us-gov:iam::222222222222:user/deployer")
	cfg := readFile(t, filepath.Join(f.dir, "rollout.yaml"))
	for _, p := range []string{"aws", "aws-us-gov"} {
		cfg = strings.Replace(cfg, "    partition: "+p+"\n", "    partition: "+p+"\n    endpoints: {sts: \""+sts.URL+"\"}\n", 1)
	}
	f.write("rollout.yaml", cfg)
	f.env = []string{"AWS_ACCESS_KEY_ID=AKIACOMMERCIAL0001", "AWS_SECRET_ACCESS_KEY=commercial-secret",
		"AWS_US_GOV_ACCESS_KEY_ID=AKIAGOVCLOUD000001", "AWS_US_GOV_SECRET_ACCESS_KEY=govcloud-secret"}
	f.must(0, "validate")
	if r := f.must(0, "plan", "--release", "v1"); !strings.Contains(r.stdout, "aws-us-gov-2") || !strings.Contains(r.stdout, "+1 ~0 -0") {
		t.Fatalf("plan of the AWS starter:\n%s", r.stdout)
	}
}
