package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOnlyTheOwnersSecretIsRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("s3cret"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a group-readable secret: %v", err)
	}
	os.Chmod(p, 0o600)
	if b, err := Read(p); err != nil || string(b) != "s3cret" {
		t.Fatalf("%q %v", b, err)
	}
}
