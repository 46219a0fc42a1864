package provision

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The shim answers `version -json` from the one answer the binary gave, and passes everything
// else to the binary with its arguments intact.
func TestVersionShim(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	bin := filepath.Join(dir, "fake tf") // a space in the path: the shim quotes it
	script := "#!/bin/sh\necho \"$*\" >> '" + calls + "'\n" +
		"if [ \"$1\" = version ]; then echo '{\"terraform_version\":\"1.10.10\",\"platform\":\"linux_amd64\"}'; exit 0; fi\n" +
		"echo \"ran: $*\"\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	p := &Terraform{Bin: bin, StateDir: filepath.Join(dir, ".rollout")}
	shim := p.execPath()
	if shim == bin || !strings.HasPrefix(shim, filepath.Join(dir, ".rollout", "bin")) {
		t.Fatalf("no shim: %s", shim)
	}
	for i := 0; i < 3; i++ {
		out, err := exec.CommandContext(context.Background(), shim, "version", "-json").Output()
		if err != nil || !strings.Contains(string(out), `"terraform_version":"1.10.10"`) {
			t.Fatalf("shim version -json: %v %s", err, out)
		}
	}
	out, err := exec.Command(shim, "plan", "-out=x y.tfplan", "-var", "a='b'").Output()
	if err != nil || strings.TrimSpace(string(out)) != "ran: plan -out=x y.tfplan -var a='b'" {
		t.Fatalf("shim plan: %v %q", err, out)
	}
	log, _ := os.ReadFile(calls)
	if got := strings.Split(strings.TrimSpace(string(log)), "\n"); len(got) != 2 || got[0] != "version -json" || !strings.HasPrefix(got[1], "plan ") {
		t.Fatalf("the binary ran %q: want version once (learning the answer), then plan", got)
	}
	// A binary that gives no version answer gets no shim.
	bad := &Terraform{Bin: filepath.Join(dir, "missing"), StateDir: filepath.Join(dir, ".rollout2")}
	if got := bad.execPath(); got != bad.Bin {
		t.Fatalf("shim for a missing binary: %s", got)
	}
}
