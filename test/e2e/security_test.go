//go:build e2e

package e2e

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The security suite replays, as an attacker with a shell on the build host and write access to
// one environment file would, every attack that once got through (issue 15), and checks the
// refusal. Each test ends with the truth check of every end-to-end test.

// secretForms are the forms a secret travels in: as it is, URL-encoded, JSON-escaped, base64.
func secretForms(s string) []string {
	j, _ := json.Marshal(s)
	return []string{s, url.QueryEscape(s), url.PathEscape(s), strings.Trim(string(j), `"`),
		base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))}
}

// terraformsOwn are files Terraform itself writes, which hold secrets by design (its state, plans,
// variable files): they must be readable by their owner only, and are not searched.
func terraformsOwn(p string) bool {
	base := filepath.Base(p)
	return strings.HasSuffix(base, ".tfstate") || strings.HasSuffix(base, ".tfstate.backup") || strings.HasSuffix(base, ".tfplan") ||
		base == "rollout.tfvars.json" || strings.Contains(p, string(filepath.Separator)+".terraform"+string(filepath.Separator))
}

// Planted secrets (a secret release variable, a sensitive output, gate URL credentials, a value
// given in the environment) are in no byte rollout writes: the journal, its export, logs, events,
// reports, saved plans; Terraform's own files that hold them are 0600; every file and folder under
// the fleet's local directory is its owner's alone.
func TestPlantedSecretsAreNowhere(t *testing.T) {
	t.Parallel()
	// Planted where secrets come from (a command line, the environment), never in code.
	const password, apiToken = `Pa$$w0rd+/=~planted-1`, "TOKEN-planted-2"
	f := newFleet(t, fleetSpec{
		targets: "targets:\n" + targetsYAML("t", "local-a", "main", 2, ""),
		rings:   "  - name: only\n    targets: {boundaries: [local-a]}\n    gates: [healthz, creds]\n",
		gates: defaultGates + `  creds:
    http: {url: "{{ .Outputs.endpoint_with_creds }}/healthz?token={{ .Outputs.db_password | urlquery }}", jsonPath: status, expect: ok}
    interval: 100ms
    timeout: 20s
`})
	f.write("terraform/stamp/secret.tf", `variable "db_password" {
  type      = string
  sensitive = true
}
variable "api_token" {
  type = string
}
output "db_password" {
  value     = var.db_password
  sensitive = true
}
output "endpoint_with_creds" {
  value = replace("${var.service_url}/stamps/${var.target}", "http://", "http://admin:${var.api_token}@")
}
`)
	f.env = append(f.env, "ROLLOUT_VAR_api_token="+apiToken)
	events := filepath.Join(f.dir, "events.ndjson")
	var written []string
	keep := func(r result) { written = append(written, r.stdout, r.stderr) }
	keep(f.must(0, "start", "--release", "v1", "--var", "db_password="+password, "--events", events))
	f.env = append(f.env, "ROLLOUT_VAR_db_password="+password) // later processes get it from the environment
	keep(f.must(0, "plan", "--release", "v2", "--detail", "--save", filepath.Join(f.dir, "v2.plan.json")))
	keep(f.must(0, "start", "--release", "v2", "--detach", "--events", events))
	keep(f.must(0, "status", "--wait", "--every", "100ms", "--output", "json"))
	keep(f.must(0, "status"))
	keep(f.must(0, "history", "--target", "t-1", "--output", "json"))
	keep(f.must(0, "state", "export"))
	keep(f.run("state", "doctor", "--targets"))
	// What crosses an air gap: the release's archive and its signed evidence.
	keys, evDir, archive := t.TempDir(), filepath.Join(f.dir, "evidence"), filepath.Join(f.dir, "v2.rollout.tgz")
	f.must(0, "evidence", "keygen", "--out", filepath.Join(keys, "k"))
	keep(f.must(0, "evidence", f.status().Run, "--key", filepath.Join(keys, "k.key"), "--out", evDir))
	keep(f.must(0, "release", "export", "v2", "--out", archive))
	written = append(written, exportedTexts(t, archive, evDir)...)

	for _, text := range written {
		for _, form := range append(secretForms(password), secretForms(apiToken)...) {
			if strings.Contains(text, form) {
				t.Fatalf("planted secret (as %q) in a command's output:\n%s", form, text)
			}
		}
	}
	err := filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 || strings.HasPrefix(p, filepath.Join(f.dir, "terraform")) {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, form := range append(secretForms(password), secretForms(apiToken)...) {
			if strings.Contains(string(b), form) && !terraformsOwn(p) {
				t.Errorf("planted secret (as %q) in %s", form, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(f.dir, ".rollout")
	_ = filepath.WalkDir(local, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		if info, err := d.Info(); err == nil && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v: readable or writable by other users", p, info.Mode().Perm())
		}
		return nil
	})
	if st, err := os.Stat(filepath.Join(f.dir, "v2.plan.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the saved plan: %v %v", st.Mode(), err)
	}
	// A file made readable later is reported by state doctor.
	loose := filepath.Join(local, "tfstate", "t-1.tfstate")
	_ = os.Chmod(loose, 0o644)
	if r := f.run("state", "doctor"); r.code != 1 || !strings.Contains(r.stdout, "readable or writable by other users: tfstate/t-1.tfstate") {
		t.Errorf("state doctor on a world-readable state file: %d %s", r.code, r.stdout)
	}
	_ = os.Chmod(loose, 0o600)
}

// Names are checked against one pattern where they enter: a release name that is a path, that
// holds a slash, a newline or an escape sequence is refused before anything is written.
func TestHostileReleaseNamesAreRefused(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", ""))
	outside := filepath.Join(filepath.Dir(f.dir), "PWNED")
	for _, name := range []string{"../../../../PWNED", "feature/x", "v1\nrun v9 succeeded", "v1\x1b[2J", strings.Repeat("v", 64)} {
		r := f.run("start", "--release", name, "--detach")
		if r.code != 1 || !strings.Contains(r.stderr, "names are 1 to 63 letters") {
			t.Errorf("release %q: exit %d %s", name, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(outside); err == nil {
		t.Fatal("a release name wrote outside the fleet")
	}
	if r := f.must(0, "history", "--output", "json"); strings.TrimSpace(string(field(r.stdout, "runs"))) != "[]" {
		t.Fatalf("a refused release was journaled: %s", r.stdout)
	}
	f.must(0, "start", "--release", "v1.2.3_rc-1")
}

// Data never becomes code: a label written by an environment engineer, and a release variable that
// travels through a Terraform output, reach a command gate's script as arguments.
func TestCommandGateInjectionRunsNothing(t *testing.T) {
	t.Parallel()
	pwned := filepath.Join(t.TempDir(), "PWNED")
	f := newFleet(t, fleetSpec{
		targets: "targets:\n  - name: t-1\n    boundary: local-a\n    labels: {tier: \"prod; touch " + pwned + " #\"}\n",
		rings:   "  - name: only\n    targets: {boundaries: [local-a]}\n    gates: [label, output]\n",
		gates: `
  label:
    command: {run: 'echo checking {{ index .Target.Labels "tier" }}'}
    timeout: 20s
  output:
    command: {run: 'test -n "{{ .Outputs.version }}"'}
    timeout: 20s
`})
	f.must(0, "start", "--release", "v1", "--var", "app_version=$(touch "+pwned+")")
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a label or an output was run as code")
	}
	// A value inside single quotes cannot expand: refused where it is written.
	f.write("rollout.yaml", strings.Replace(readFile(t, filepath.Join(f.dir, "rollout.yaml")), `'echo checking {{ index .Target.Labels "tier" }}'`, `"echo '{{ .Target.Name }}'"`, 1))
	if r := f.run("validate"); r.code != 1 || !strings.Contains(r.stderr, "inside single quotes") {
		t.Fatalf("a value in single quotes: %d %s", r.code, r.stderr)
	}
}

// A module folder holding a FIFO or a link is refused at once, naming it, and the fleet's lease is
// free again: before, a FIFO hung start for ever while it held the lease, and a link shipped
// /etc/passwd in the snapshot and the journal's bundle.
func TestModuleFoldersWithFIFOsAndLinks(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", ""))
	fifo := filepath.Join(f.dir, "terraform", "stamp", "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if r := f.run("start", "--release", "v1"); r.code != 1 || !strings.Contains(r.stderr, "pipe is not a regular file") || time.Since(began) > 30*time.Second {
		t.Fatalf("a FIFO in the module: exit %d after %s: %s", r.code, time.Since(began), r.stderr)
	}
	_ = os.Remove(fifo)
	if err := os.Symlink("/etc/passwd", filepath.Join(f.dir, "terraform", "stamp", "passwd")); err != nil {
		t.Fatal(err)
	}
	if r := f.run("start", "--release", "v1"); r.code != 1 || !strings.Contains(r.stderr, "passwd is a symbolic link") {
		t.Fatalf("a link in the module: %d %s", r.code, r.stderr)
	}
	_ = os.Remove(filepath.Join(f.dir, "terraform", "stamp", "passwd"))
	f.must(0, "start", "--release", "v1") // the lease was given back each time
	if b, _ := os.ReadFile(filepath.Join(f.dir, ".rollout", "state.db")); strings.Contains(string(b), "root:x:0:0") {
		t.Fatal("/etc/passwd is in the journal")
	}
}

// A damaged journal is not trusted: a digest that is not one, or that is a path, is refused with
// exit 1 (never a panic, never exit 2), and nothing is applied from outside the fleet.
func TestDamagedJournalDigests(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"abc", "../../../../evil"} {
		t.Run(bad, func(t *testing.T) {
			f := newFleet(t, oneRing(1, "0", "    approval: {required: true}\n"))
			f.must(3, "start", "--release", "v1")
			run := f.status().Run
			db, err := sql.Open("sqlite", filepath.Join(f.dir, ".rollout", "state.db"))
			if err != nil {
				t.Fatal(err)
			}
			var module string
			if err := db.QueryRow(`SELECT module FROM releases WHERE name = 'v1'`).Scan(&module); err != nil || module == "" {
				t.Fatalf("module digest: %q %v", module, err)
			}
			for _, q := range []string{`UPDATE events SET data = replace(data, ?, ?)`, `UPDATE releases SET module = replace(module, ?, ?)`} {
				if _, err := db.ExecContext(context.Background(), q, module, bad); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
			f.must(0, "approve", run, "--ring", "only", "--reason", "ok")
			r := f.run("resume", run)
			if r.code != 1 || !strings.Contains(r.stderr, "is not a release digest") || strings.Contains(r.stderr, "panic") {
				t.Fatalf("resume with a damaged digest: exit %d\n%s", r.code, r.stderr)
			}
			if v := f.deployedVersion("t-1"); v != "" {
				t.Fatalf("applied %s from a damaged journal", v)
			}
		})
	}
}

// Small input, bounded work: a configuration file over the cap is refused at once.
func TestHugeConfigurationIsRefused(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", ""))
	big := strings.Repeat("# padding to make the file larger than any fleet needs\n", 9<<20/56+1)
	f.write("environments/huge.yaml", big)
	began := time.Now()
	if r := f.run("validate"); r.code != 1 || !strings.Contains(r.stderr, "is over 8 MiB") || time.Since(began) > 10*time.Second {
		t.Fatalf("a 9 MiB environment file: exit %d after %s: %s", r.code, time.Since(began), r.stderr)
	}
	_ = os.Remove(filepath.Join(f.dir, "environments", "huge.yaml"))
}

// An emptied journal is not a new fleet: with the fleet's Terraform state still there, start
// refuses (exit 1, naming what it found) unless --new-journal says so, and state doctor says it.
func TestEmptiedJournalIsNotANewFleet(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", ""))
	f.must(0, "start", "--release", "v1")
	db := filepath.Join(f.dir, ".rollout", "state.db")
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		_ = os.Truncate(p, 0)
	}
	r := f.run("start", "--release", "v2")
	if r.code != 1 || !strings.Contains(r.stderr, "holds no run") || !strings.Contains(r.stderr, "--new-journal") {
		t.Fatalf("start on an emptied journal: %d %s", r.code, r.stderr)
	}
	if r := f.run("state", "doctor"); r.code != 1 || !strings.Contains(r.stdout, "lost or emptied") {
		t.Fatalf("doctor on an emptied journal: %d %s", r.code, r.stdout)
	}
	f.must(0, "start", "--release", "v2", "--new-journal")
}

// A module outside the fleet's folder is refused unless allowed in so many words.
func TestModuleOutsideTheFleet(t *testing.T) {
	t.Parallel()
	f := newFleet(t, oneRing(1, "0", ""))
	cfg := readFile(t, filepath.Join(f.dir, "rollout.yaml"))
	f.write("rollout.yaml", strings.Replace(cfg, "module: terraform/stamp", "module: ../../../../etc", 1))
	if r := f.run("validate"); r.code != 1 || !strings.Contains(r.stderr, "is outside the fleet's folder") {
		t.Fatalf("a module outside the fleet: %d %s", r.code, r.stderr)
	}
	f.write("rollout.yaml", cfg)
}
