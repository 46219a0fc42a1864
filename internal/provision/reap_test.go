package provision

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/proc"
)

// recordedCommand starts, through the shim as terraform-exec would (its own process group), a
// command that leaves a child behind and then dies, as a killed apply leaves a provisioner: it
// returns the child's pid.
func recordedCommand(t *testing.T, shim, workDir string) int {
	t.Helper()
	if err := os.MkdirAll(procDir(workDir), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shim, "left-behind")
	cmd.Dir = workDir
	cmd.Env = append(os.Environ(), "ROLLOUT_PROC_DIR="+procDir(workDir))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if !proc.Alive(child) {
		t.Fatal("the left-behind child is not running")
	}
	return child
}

// What a dead command of this tool left running is killed: the child of a recorded command, in
// the recorded process group. A process merely running in the working directory (an operator's
// shell, a `sleep` started by hand) is never touched: before, it was killed for being there.
func TestReapKillsOnlyRecordedGroups(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-tf")
	script := "#!/bin/sh\nif [ \"$1\" = version ]; then echo '{\"terraform_version\":\"1.10.10\"}'; exit 0; fi\n" +
		"sleep 60 >/dev/null 2>&1 &\necho $!\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	p := &Terraform{Bin: bin, StateDir: filepath.Join(dir, ".rollout")}
	shim := p.execPath()
	work := p.WorkDir("t-1")
	child := recordedCommand(t, shim, work)
	if recs := readRecords(procDir(work)); len(recs) != 1 {
		t.Fatalf("records after one command: %+v", recs)
	}
	byHand := exec.Command("sleep", "60") // an operator's process in the working directory
	byHand.Dir = work
	if err := byHand.Start(); err != nil {
		t.Fatal(err)
	}
	defer byHand.Process.Kill()

	killed := reapOrphans(work)
	if !slices.Equal(killed, []int{child}) {
		t.Fatalf("killed %v; want only the recorded command's child %d (by hand: %d)", killed, child, byHand.Process.Pid)
	}
	if proc.Alive(child) {
		t.Fatal("the left-behind child still runs")
	}
	if err := byHand.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatal("a process started by hand in the working directory was killed")
	}
	if recs := readRecords(procDir(work)); len(recs) != 0 {
		t.Fatalf("records left after reaping: %+v", recs)
	}
	if again := reapOrphans(work); len(again) != 0 {
		t.Fatalf("reaped again: %v", again)
	}
}

// A record whose pid now names another process (the pid was reused) proves nothing: that
// process is left alone.
func TestReapLeavesAReusedPidAlone(t *testing.T) {
	work := t.TempDir()
	other := exec.Command("sleep", "60")
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer other.Process.Kill()
	st, err := proc.Read(other.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.MkdirAll(procDir(work), 0o700)
	rec := strconv.Itoa(st.PID) + " " + strconv.FormatUint(st.Start-1, 10) + "\n"
	if err := os.WriteFile(filepath.Join(procDir(work), strconv.Itoa(st.PID)), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	if killed := reapOrphans(work); len(killed) != 0 {
		t.Fatalf("killed %v: a process whose start time differs from the record", killed)
	}
	time.Sleep(20 * time.Millisecond)
	if !proc.Alive(other.Process.Pid) {
		t.Fatal("the unrelated process was killed")
	}
}

// What a recorded command started in a group of its own (Terraform runs provider plugins so)
// goes with it: the chaos suite saw a plugin of a killed Terraform outlive the reaping, still
// holding what its parent held, while the next apply of the target began.
func TestReapKillsWhatTheCommandStartedInAGroupOfItsOwn(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-tf")
	pidFile := filepath.Join(dir, "plugin")
	script := "#!/bin/sh\nif [ \"$1\" = version ]; then echo '{\"terraform_version\":\"1.10.10\"}'; exit 0; fi\n" +
		"setsid sleep 60 >/dev/null 2>&1 &\necho $! > " + pidFile + "\nexec sleep 60\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	p := &Terraform{Bin: bin, StateDir: filepath.Join(dir, ".rollout")}
	shim := p.execPath()
	work := p.WorkDir("t-1")
	if err := os.MkdirAll(procDir(work), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shim, "apply")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "ROLLOUT_PROC_DIR="+procDir(work))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var plugin int
	for deadline := time.Now().Add(10 * time.Second); plugin == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		plugin, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	defer syscall.Kill(plugin, syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); len(readRecords(procDir(work))) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if st, err := proc.Read(plugin); err != nil || st.PGID == cmd.Process.Pid {
		t.Fatalf("the plugin is not in a group of its own: %+v %v", st, err)
	}
	killed := reapOrphans(work)
	if !slices.Contains(killed, plugin) || !slices.Contains(killed, cmd.Process.Pid) {
		t.Fatalf("killed %v; want the command %d and its plugin %d", killed, cmd.Process.Pid, plugin)
	}
	if proc.Alive(plugin) {
		t.Fatal("the plugin outlived the reaping")
	}
}

// The lock file a resolution writes is the fleet user's alone (Terraform writes it 0644 whatever
// the umask, and state doctor reported it), and a release snapshot carries it.
func TestAResolutionsLockFileIsPrivateAndLocksTheRelease(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-tf")
	script := "#!/bin/sh\nif [ \"$1\" = version ]; then echo '{\"terraform_version\":\"1.10.10\"}'; exit 0; fi\n" +
		"printf 'provider \"registry.opentofu.org/hashicorp/time\" {\\n  version = \"0.14.2\"\\n  hashes = [\"h1:abc=\"]\\n}\\n' > .terraform.lock.hcl\nchmod 644 .terraform.lock.hcl\nmkdir -p .terraform/providers\nexit 0\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(dir, "module")
	os.MkdirAll(module, 0o755)
	os.WriteFile(filepath.Join(module, "main.tf"), []byte("terraform {}\n"), 0o644)
	t.Setenv("TF_CLI_CONFIG_FILE", "")
	p := &Terraform{Bin: bin, StateDir: filepath.Join(dir, ".rollout")}
	locked, plain, err := p.LockedSnapshot(context.Background(), module, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if locked == plain {
		t.Fatal("the release snapshot does not carry the lock file")
	}
	lock, err := os.ReadFile(filepath.Join(SnapshotDir(p.StateDir, locked), LockFile))
	if err != nil || !strings.Contains(string(lock), "h1:abc=") {
		t.Fatalf("the snapshot's lock file: %q %v", lock, err)
	}
	res := p.resolutionDir(locked, "")
	st, err := os.Stat(filepath.Join(res, LockFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the resolution's lock file: %v %v (want 0600)", st, err)
	}
	if _, err := os.Stat(p.resolutionDir(plain, "")); err == nil {
		t.Fatal("the first resolution was kept twice (it should move to the locked snapshot)")
	}
	again, _, err := p.LockedSnapshot(context.Background(), module, "", "")
	if err != nil || again != locked {
		t.Fatalf("the same tree again: %s %v, want %s", again, err, locked)
	}
}

// A lock file is read as the HCL Terraform writes: addresses, versions and every hash, whatever
// the layout (the constraint's "version" word and comments are not versions or hashes).
func TestReadLockReadsTerraformsLockFile(t *testing.T) {
	lock := `# This file is maintained automatically by "tofu init".
provider "registry.opentofu.org/hashicorp/time" {
  version     = "0.14.2"
  constraints = "0.14.2" # version = "9.9.9"
  hashes = [
    "h1:AAAA=",
    "zh:0123abcd",
  ]
}

provider "registry.terraform.io/hashicorp/aws" {
  version = "5.1.0"
  hashes  = ["h1:BBBB="]
}
`
	got, err := ReadLock([]byte(lock))
	if err != nil || len(got) != 2 || got[0].Address != "registry.opentofu.org/hashicorp/time" || got[0].Version != "0.14.2" ||
		!slices.Equal(got[0].Hashes, []string{"h1:AAAA=", "zh:0123abcd"}) || got[1].Version != "5.1.0" || !slices.Equal(got[1].Hashes, []string{"h1:BBBB="}) {
		t.Fatalf("ReadLock: %+v %v", got, err)
	}
	if _, err := ReadLock([]byte("provider \"x\" {\n")); err == nil {
		t.Fatal("a broken lock file was read")
	}
}
