// Package sshtest makes real SSH keys and signatures with ssh-keygen, as an approver does.
package sshtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Need skips the test when ssh-keygen is missing.
func Need(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("no ssh-keygen")
	}
}

// Key makes an ed25519 key in dir: its private key file and its public key line.
func Key(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.TrimSpace(string(pub))
}

// Sign signs text with ssh-keygen -Y sign in namespace: the signature file's path.
func Sign(t *testing.T, key, text, namespace string) string {
	t.Helper()
	msg := filepath.Join(t.TempDir(), "approval.txt")
	if err := os.WriteFile(msg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-f", key, "-n", namespace, msg).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v %s", err, out)
	}
	return msg + ".sig"
}
