package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// execPath is the program terraform-exec runs: a shim in front of the Terraform binary that
// answers `version -json` from an answer learned once per process (see versionShim), or the
// binary itself when no shim could be made.
func (p *Terraform) execPath() string {
	p.shimOnce.Do(func() { p.shimPath = p.versionShim() })
	return p.shimPath
}

// versionShim writes the shim and returns its path (the binary's, on any failure).
//
// terraform-exec checks the binary's version before most commands, once per handle, by running
// `version -json`; a handle belongs to one working directory, so every target operation paid a
// whole Terraform start (about 0.1 s of CPU, most of rollout's overhead against bare tofu in
// `make bench`) to learn the same answer again. The shim, a /bin/sh script in .rollout/bin/,
// prints the answer learned here and execs the real binary for everything else: the same
// process (pid, signals, parent-death signal) with the same arguments and environment.
func (p *Terraform) versionShim() string {
	out, err := p.version()
	if err != nil {
		return p.Bin
	}
	bin := p.Bin
	if strings.ContainsRune(bin, filepath.Separator) { // a path (a bare name is looked up in PATH)
		if bin, err = filepath.Abs(bin); err != nil {
			return p.Bin
		}
	}
	dir := filepath.Join(p.StateDir, "bin")
	h := shortHash(bin + "\x00" + string(out))
	answer, shim := filepath.Join(dir, "version-"+h+".json"), filepath.Join(dir, "tf-"+h)
	script := "#!/bin/sh\n" +
		"# Written by rollout for terraform-exec: `version -json` is answered from the answer the binary\n" +
		"# gave once; everything else runs the binary itself, recorded first (pid and start time) in\n" +
		"# $ROLLOUT_PROC_DIR when set, so that a later rollout can prove its leftovers are its own.\n" +
		"if [ \"$#\" = 2 ] && [ \"$1\" = version ] && [ \"$2\" = -json ]; then exec cat " + shellQuote(answer) + "; fi\n" +
		"rollout_record() { shift 21; printf '%s %s\\n' \"$$\" \"$1\" > \"$ROLLOUT_PROC_DIR/$$\"; }\n" +
		"if [ -n \"${ROLLOUT_PROC_DIR:-}\" ] && { read -r rollout_stat < /proc/$$/stat; } 2>/dev/null; then rollout_record $rollout_stat 2>/dev/null; fi\n" +
		"exec " + shellQuote(bin) + " \"$@\"\n"
	if os.MkdirAll(dir, 0o700) != nil || writeAtomic(answer, out, 0o600) != nil || writeAtomic(shim, []byte(script), 0o700) != nil {
		return p.Bin
	}
	return shim
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// writeAtomic writes a file whole or not at all (another rollout may be reading it).
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// version is the binary's `version -json` answer, asked once per process: an error says the
// binary does not run as a Terraform-compatible binary here.
func (p *Terraform) version() ([]byte, error) {
	p.versionOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, p.Bin, "version", "-json")
		for k, v := range p.baseEnv() {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var v struct {
			Version string `json:"terraform_version"`
		}
		switch {
		case err != nil:
			p.versionErr = fmt.Errorf("`%s version -json`: %v %s", p.Bin, err, strings.TrimSpace(stderr.String()))
		case json.Unmarshal(out, &v) != nil || v.Version == "":
			p.versionErr = fmt.Errorf("`%s version -json` did not answer as Terraform or OpenTofu does", p.Bin)
		default:
			p.versionOut = out
		}
	})
	return p.versionOut, p.versionErr
}
