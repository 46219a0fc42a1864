package provision

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/terraform-exec/tfexec"
)

// How a release digest becomes a module tree on this machine: the snapshot, or a mirror.

// linkTree makes dir hold a symlink to every top-level entry of the snapshot (except its lock
// file, which the resolution provides), removing links to an earlier snapshot first.
func linkTree(dir, snapshot string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	old, _ := os.ReadDir(dir)
	for _, e := range old {
		if e.Type()&os.ModeSymlink != 0 {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	entries, err := os.ReadDir(snapshot)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == ".terraform.lock.hcl" {
			continue
		}
		if err := os.Symlink(filepath.Join(snapshot, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// resolve installs the snapshot's providers and modules once, in stateDir/providers/<digest>/,
// with the user's own CLI configuration (registry, mirror, credentials). Targets then install
// from there with -plugin-dir: reads of one finished, read-only directory, never concurrent writes
// to a shared plugin cache (which crashes OpenTofu and Terraform at high parallelism).
// A boundary with a provider mirror (a cloud that cannot reach a public registry) gets its own
// resolution, installed from that mirror only.
func (p *Terraform) resolve(ctx context.Context, digest, mirror string) (string, error) {
	key := digest + "\x00" + mirror
	p.mu.Lock()
	if p.resolved == nil {
		p.resolved = map[string]*resolution{}
	}
	r, ok := p.resolved[key]
	if !ok {
		r = &resolution{}
		p.resolved[key] = r
	}
	p.mu.Unlock()
	r.once.Do(func() { r.dir, r.err = p.resolveOnce(ctx, digest, mirror) })
	return r.dir, r.err
}

// mirrorCLIConfig is the CLI configuration of a boundary's provider mirror: that mirror and no
// direct installation, so a disconnected cloud never reaches for a public registry.
func mirrorCLIConfig(mirror string) string {
	block := fmt.Sprintf("  filesystem_mirror {\n    path = %q\n  }\n", mirror)
	if strings.HasPrefix(mirror, "https://") {
		block = fmt.Sprintf("  network_mirror {\n    url = %q\n  }\n", strings.TrimSuffix(mirror, "/")+"/")
	}
	return "# Written by rollout: this boundary's provider mirror, and no direct installation.\nprovider_installation {\n" + block + "}\n"
}

func (p *Terraform) resolveOnce(ctx context.Context, digest, mirror string) (string, error) {
	if err := CheckDigest(digest); err != nil {
		return "", err
	}
	snap := SnapshotDir(p.StateDir, digest)
	if _, err := os.Stat(snap); err == nil {
		// What is on disk under a digest's name is checked against it before anything runs it.
		if got, err := Digest(snap); err != nil || got != digest {
			return "", fmt.Errorf("release snapshot %s in %s does not hash to its name (%s, %v): it was changed on this machine; remove it and the journal's bundle is used", digest[:12], snap, short12(got), err)
		}
	}
	dst := p.resolutionDir(digest, mirror)
	if _, err := os.Stat(filepath.Join(dst, ".terraform.lock.hcl")); err == nil {
		return dst, nil
	}
	if err := p.ensureSnapshot(ctx, digest); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".tmp-"+digest[:12]+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := linkTree(tmp, snap); err != nil {
		return "", err
	}
	if lock, err := os.ReadFile(filepath.Join(snap, ".terraform.lock.hcl")); err == nil {
		if err := os.WriteFile(filepath.Join(tmp, ".terraform.lock.hcl"), lock, 0o600); err != nil {
			return "", err
		}
	}
	var log bytes.Buffer
	var extra map[string]string
	if mirror != "" {
		rc := filepath.Join(tmp, ".rollout-mirror.tfrc")
		if err := os.WriteFile(rc, []byte(mirrorCLIConfig(mirror)), 0o600); err != nil {
			return "", err
		}
		extra = map[string]string{"TF_CLI_CONFIG_FILE": rc}
	}
	tf, err := p.newTF(ctx, tmp, &log, p.baseEnv(), extra)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	if err := tf.Init(ctx, tfexec.Backend(false)); err != nil {
		return "", fmt.Errorf("install providers for release snapshot %s: %w", digest[:12], err)
	}
	// A module without providers gets no lock file; an empty one still marks the resolution done.
	// Terraform writes the lock file 0644 whatever the umask: it is the fleet's user's alone.
	if lock := filepath.Join(tmp, ".terraform.lock.hcl"); !exists(lock) {
		if err := os.WriteFile(lock, nil, 0o600); err != nil {
			return "", err
		}
	} else if err := os.Chmod(lock, 0o600); err != nil {
		return "", err
	}
	// The links point into the snapshot, which stays; the directory itself moves into place.
	if err := os.Rename(tmp, dst); err != nil {
		if _, statErr := os.Stat(filepath.Join(dst, ".terraform.lock.hcl")); statErr == nil {
			return dst, nil
		}
		return "", err
	}
	return dst, nil
}

// resolutionDir is where a snapshot's providers are installed through mirror ("": the user's CLI
// configuration).
func (p *Terraform) resolutionDir(digest, mirror string) string {
	dst := filepath.Join(p.StateDir, "providers", digest)
	if mirror != "" {
		dst += "-" + shortHash(mirror)
	}
	return dst
}

// ensureSnapshot unpacks the journal's bundle of a snapshot that is not on this machine.
func (p *Terraform) ensureSnapshot(ctx context.Context, digest string) error {
	if err := CheckDigest(digest); err != nil {
		return err // a damaged or crafted journal's: never a path
	}
	snap := SnapshotDir(p.StateDir, digest)
	if _, err := os.Stat(snap); err == nil {
		return nil
	}
	if p.Bundle == nil {
		return fmt.Errorf("release snapshot %s is missing from %s", digest[:12], filepath.Dir(snap))
	}
	data, err := p.Bundle(ctx, digest)
	if err != nil {
		return fmt.Errorf("release snapshot %s is not on this machine, and the journal has no bundle of it: %w", digest[:12], err)
	}
	return Unbundle(data, p.StateDir, digest)
}

// ResolveRelease installs a release snapshot's providers and modules, once, for each provider
// mirror (a boundary's own, or "" for the user's CLI configuration): done before a run is journaled,
// so that a registry or mirror that cannot serve them is an error of the environment, not a
// failed target.
func (p *Terraform) ResolveRelease(ctx context.Context, digest string, mirrors []string) error {
	digests := []string{digest}
	st, err := p.StackOf(ctx, digest)
	if err != nil {
		return err
	}
	if st != nil { // a stack: each component's providers
		digests = digests[:0]
		for _, c := range st.Components {
			digests = append(digests, c.Module)
		}
	}
	for _, d := range digests {
		for _, m := range mirrors {
			if _, err := p.resolve(ctx, d, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// Mirror is the provider mirror of a boundary ("" for none: the user's CLI configuration).
func (p *Terraform) Mirror(boundary string) string {
	if b := p.Config.Boundaries[boundary]; b != nil {
		return b.ProviderMirror
	}
	return ""
}
