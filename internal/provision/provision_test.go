package provision

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/config"
	"github.com/rollout-dev/rollout/internal/rings"
)

func module(t *testing.T) string {
	dir := t.TempDir()
	for p, c := range map[string]string{"main.tf": "# main\n", "modules/x/x.tf": "# x\n", "terraform.tfstate": "{}", ".terraform/junk": "x"} {
		_ = os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDigestCoversContentNotState(t *testing.T) {
	dir := module(t)
	d1, err := Digest(dir)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, "terraform.tfstate"), []byte(`{"changed":1}`), 0o644)
	_ = os.WriteFile(filepath.Join(dir, ".terraform", "junk"), []byte("y"), 0o644)
	if d2, _ := Digest(dir); d2 != d1 {
		t.Fatal("state or .terraform changed the release digest")
	}
	_ = os.WriteFile(filepath.Join(dir, "modules", "x", "x.tf"), []byte("# y\n"), 0o644)
	if d3, _ := Digest(dir); d3 == d1 {
		t.Fatal("a module file change did not change the digest")
	}
}

func TestSnapshotIsReadOnlyAndIdempotent(t *testing.T) {
	dir, state := module(t), t.TempDir()
	d, err := Snapshot(dir, state)
	if err != nil {
		t.Fatal(err)
	}
	snap := SnapshotDir(state, d)
	t.Cleanup(func() {
		_ = filepath.Walk(snap, func(p string, _ os.FileInfo, _ error) error { return os.Chmod(p, 0o755) })
	})
	if _, err := os.Stat(filepath.Join(snap, "modules", "x", "x.tf")); err != nil {
		t.Fatal("module subdirectory missing from the snapshot")
	}
	if _, err := os.Stat(filepath.Join(snap, "terraform.tfstate")); err == nil {
		t.Fatal("state copied into a snapshot")
	}
	if st, _ := os.Stat(filepath.Join(snap, "main.tf")); st.Mode().Perm()&0o222 != 0 {
		t.Fatalf("snapshot file is writable: %v", st.Mode())
	}
	if d2, err := Snapshot(dir, state); err != nil || d2 != d {
		t.Fatalf("second snapshot: %s %v", d2, err)
	}
}

func TestVarsForRendersReleaseThenTarget(t *testing.T) {
	tg := &config.Target{Name: "eu-1", Region: "eu-west", Labels: map[string]string{"tier": "gold"}, Vars: map[string]any{"size": 3, "tier": "override"}}
	got, err := VarsFor(rings.ReleaseRef{Name: "v9"}, map[string]any{
		"app_version": "{{ .Release.Name }}", "where": "{{ .Target.Region }}", "tier": `{{ index .Target.Labels "tier" }}`,
		"list": []any{"{{ .Target.Name }}"}, "n": 1, "partition": "{{ .Boundary.Partition }}", "universe": "{{ .Boundary.UniverseDomain }}",
	}, tg, &config.Boundary{Name: "gov", Cloud: "aws", Settings: map[string]string{"partition": "aws-us-gov", "universeDomain": ""}})
	if err != nil {
		t.Fatal(err)
	}
	if got["app_version"] != "v9" || got["where"] != "eu-west" || got["tier"] != "override" || got["size"] != 3 || got["list"].([]any)[0] != "eu-1" || got["n"] != 1 ||
		got["partition"] != "aws-us-gov" || got["universe"] != "" {
		t.Fatalf("vars = %v", got)
	}
	if _, err := VarsFor(rings.ReleaseRef{}, map[string]any{"x": "{{ .Nope }}"}, tg, nil); err == nil {
		t.Fatal("an unknown template field was not an error")
	}
}

func TestReadStreamTakesOutputsWithValues(t *testing.T) {
	plan := `{"type":"outputs","outputs":{"endpoint":{"sensitive":false,"action":"update"}}}`
	if r := readStream([]byte(plan)); r.outputs != nil {
		t.Fatalf("a plan's outputs (no values) were taken: %v", r.outputs)
	}
	apply := `{"type":"outputs","outputs":{"endpoint":{"sensitive":false,"type":"string","value":"http://x"},"token":{"sensitive":true,"type":"string","value":"s3cr3t"}}}`
	all, public := splitOutputs(readStream([]byte(apply)).outputs)
	if all["endpoint"] != "http://x" || all["token"] != "s3cr3t" || public["token"] != "(sensitive)" || public["endpoint"] != "http://x" {
		t.Fatalf("outputs: all %v public %v", all, public)
	}
}

func TestSummariseReadsPlanJSON(t *testing.T) {
	stream := strings.Join([]string{
		`{"@level":"info","type":"version","terraform":"1.10.10"}`,
		`{"@level":"info","type":"planned_change","change":{"resource":{"addr":"terraform_data.app"},"action":"replace"}}`,
		`{"@level":"info","type":"planned_change","change":{"resource":{"addr":"aws_db_instance.main"},"action":"delete"}}`,
		`{"@level":"info","type":"planned_change","change":{"resource":{"addr":"time_static.x"},"action":"create"}}`,
		`{"@level":"info","type":"change_summary","changes":{"add":2,"change":0,"remove":2,"operation":"plan"}}`,
		`{"@level":"error","type":"diagnostic","diagnostic":{"severity":"error","summary":"Invalid value","detail":"bad\n  thing","range":{"filename":"main.tf","start":{"line":7}}}}`,
		`not json`,
	}, "\n")
	r := readStream([]byte(stream))
	sum, diags := r.summary, r.diags
	if sum.Add != 2 || sum.Destroy != 2 || strings.Join(sum.Replaced, ",") != "terraform_data.app" || strings.Join(sum.Deleted, ",") != "aws_db_instance.main" {
		t.Fatalf("summary = %+v", sum)
	}
	if diags != "main.tf:7: Invalid value: bad thing" {
		t.Fatalf("diagnostics = %q", diags)
	}
}

func TestBundleRoundTripAndIntegrity(t *testing.T) {
	dir, state := module(t), t.TempDir()
	d, err := Snapshot(dir, state)
	if err != nil {
		t.Fatal(err)
	}
	snap := SnapshotDir(state, d)
	t.Cleanup(func() { _ = makeWritable(snap) })
	b1, err := Bundle(snap)
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := Bundle(snap); string(b1) != string(b2) {
		t.Fatal("bundling the same snapshot twice gave different bytes")
	}
	other := t.TempDir()
	t.Cleanup(func() { _ = makeWritable(other) })
	if err := Unbundle(b1, other, d); err != nil {
		t.Fatal(err)
	}
	if got, _ := Digest(SnapshotDir(other, d)); got != d {
		t.Fatalf("unbundled digest %s, want %s", got, d)
	}
	// A bundle stored under the wrong digest is refused, and leaves nothing behind.
	wrong := strings.Repeat("0", 64)
	if err := Unbundle(b1, other, wrong); err == nil || !strings.Contains(err.Error(), "does not match its digest") {
		t.Fatalf("mismatched bundle: %v", err)
	}
	if _, err := os.Stat(SnapshotDir(other, wrong)); err == nil {
		t.Fatal("a refused bundle left a snapshot")
	}
}

// A module holding a FIFO, a link or a device is refused at once, with the path named: a FIFO
// made start hang for ever holding the fleet's lease, a link shipped /etc/passwd in the snapshot.
func TestSnapshotRefusesWhatIsNotAFile(t *testing.T) {
	for name, plant := range map[string]func(dir string) error{
		"fifo":          func(dir string) error { return syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o600) },
		"outside link":  func(dir string) error { return os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")) },
		"inside link":   func(dir string) error { return os.Symlink("main.tf", filepath.Join(dir, "alias.tf")) },
		"link to a dir": func(dir string) error { return os.Symlink("/etc", filepath.Join(dir, "etc")) },
	} {
		t.Run(name, func(t *testing.T) {
			dir, state := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte("# module\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := plant(dir); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := Snapshot(dir, state); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "module") || !(strings.Contains(err.Error(), "symbolic link") || strings.Contains(err.Error(), "not a regular file")) {
					t.Fatalf("accepted: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Snapshot hangs")
			}
			if entries, _ := os.ReadDir(filepath.Join(state, "releases")); len(entries) != 0 {
				t.Fatalf("something was kept: %v", entries)
			}
		})
	}
}

// A small bundle that would expand past the cap is refused, and writing stops there: before, a
// 2 MB bundle expanded to 2 GiB before it was refused.
func TestUnbundleStopsAtItsCap(t *testing.T) {
	defer func(n int64) { MaxBundleSize = n }(MaxBundleSize)
	MaxBundleSize = 1 << 20
	dir := t.TempDir()
	for _, name := range []string{"a.tf", "b.tf", "c.tf"} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, 600<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	MaxBundleSize = 4 << 20
	data, err := Bundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := Digest(dir)
	MaxBundleSize = 1 << 20
	state := t.TempDir()
	if err := Unbundle(data, state, digest); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a bundle over the cap: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(state, "releases")); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
	if err := Unbundle(data, state, "../../evil"); err == nil || !strings.Contains(err.Error(), "not a release digest") {
		t.Fatalf("a digest that is a path: %v", err)
	}
}

// FuzzUnbundle: whatever bytes a journal or an archive holds, unbundling never panics, never
// writes outside the snapshot folder, and keeps nothing that does not hash to its digest.
func FuzzUnbundle(f *testing.F) {
	dir := f.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "main.tf"), []byte("# m\n"), 0o644)
	good, _ := Bundle(dir)
	digest, _ := Digest(dir)
	f.Add(good, digest)
	f.Add([]byte("not gzip"), digest)
	f.Add(good, "abc")
	f.Add(good, "../../../../evil")
	f.Fuzz(func(t *testing.T, data []byte, digest string) {
		root := t.TempDir()
		state := filepath.Join(root, "state")
		err := Unbundle(data, state, digest)
		entries, _ := os.ReadDir(root)
		if len(entries) > 1 || len(entries) == 1 && entries[0].Name() != "state" {
			t.Fatalf("wrote outside the state folder: %v", entries)
		}
		if err == nil {
			if got, derr := Digest(SnapshotDir(state, digest)); derr != nil || got != digest {
				t.Fatalf("kept a snapshot that does not hash to %s: %s %v", digest, got, derr)
			}
		}
	})
}

// TestPlannedChangesDigest: the digest of a plan is of its changes (action and address), in any
// order Terraform streamed them, and differs when a change differs.
func TestPlannedChangesDigest(t *testing.T) {
	line := func(action, addr string) string {
		return `{"type":"planned_change","change":{"resource":{"addr":"` + addr + `"},"action":"` + action + `"}}` + "\n"
	}
	a := readStream([]byte(line("create", "time_static.a") + line("update", "local_file.b"))).summary.Digest
	b := readStream([]byte(line("update", "local_file.b") + line("create", "time_static.a"))).summary.Digest
	c := readStream([]byte(line("replace", "local_file.b") + line("create", "time_static.a"))).summary.Digest
	none := readStream([]byte(`{"type":"change_summary","changes":{"add":0,"change":0,"remove":0}}` + "\n")).summary.Digest
	if len(a) != 64 || a != b || a == c || none != "" {
		t.Fatalf("digests: %q %q %q %q", a, b, c, none)
	}
}

// A value is text, not HTML: a label with &, <, >, + and quotes reaches Terraform byte for byte
// (html/template had turned "R&D <ops> a+b" into "R&amp;D &lt;ops&gt; a&#43;b").
func TestVarsForRendersBytesUnescaped(t *testing.T) {
	label := `R&D <ops> a+b "q" 'x' \n`
	tg := &config.Target{Name: "eu-1", Labels: map[string]string{"team": label}}
	got, err := VarsFor(rings.ReleaseRef{Name: "v1&<2>"}, map[string]any{
		"team": `{{ index .Target.Labels "team" }}`, "rel": "{{ .Release.Name }}",
		"nested": map[string]any{"l": []any{`{{ index .Target.Labels "team" }}!`}},
	}, tg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got["team"] != label || got["rel"] != "v1&<2>" || got["nested"].(map[string]any)["l"].([]any)[0] != label+"!" {
		t.Fatalf("escaped: %q", got)
	}
}
