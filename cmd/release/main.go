// Command release builds rollout's release (make release): see internal/release and docs/release.md.
//
//	go run ./cmd/release --version v1.4.0 --key keys/release.key --out dist
//
// Without --key it signs with a new key it writes into OUT/snapshot-key.* : a snapshot, to check
// the release's shape, never to publish.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rollout-dev/rollout/internal/evidence"
	"github.com/rollout-dev/rollout/internal/release"
)

func main() {
	var o release.Options
	var platforms string
	flag.StringVar(&o.Out, "out", "dist", "where the release goes (emptied first)")
	flag.StringVar(&o.Version, "version", "", "the release's version, e.g. v1.4.0 (required)")
	flag.StringVar(&o.Key, "key", "", "the signing key (PEM, mode 600), as for evidence; none: a snapshot key")
	flag.StringVar(&o.CycloneDX, "cyclonedx-gomod", ".tools/bin/cyclonedx-gomod", "the cyclonedx-gomod binary (scripts/tools.sh release builds it)")
	flag.StringVar(&platforms, "platforms", "", "OS_ARCH,... (default: every platform of the release)")
	flag.StringVar(&o.Builder, "builder", "", "the builder's ID in the provenance (default: https://rollout.dev/make-release)")
	flag.Parse()
	if err := run(&o, platforms); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(o *release.Options, platforms string) error {
	if o.Version == "" {
		return fmt.Errorf("--version is required")
	}
	for _, p := range strings.FieldsFunc(platforms, func(r rune) bool { return r == ',' }) {
		os, arch, ok := strings.Cut(p, "_")
		if !ok {
			return fmt.Errorf("--platforms %s: want OS_ARCH", p)
		}
		o.Platforms = append(o.Platforms, release.Platform{OS: os, Arch: arch})
	}
	var err error
	if o.Source, err = os.Getwd(); err != nil {
		return err
	}
	if o.CycloneDX, err = filepath.Abs(o.CycloneDX); err != nil {
		return err
	}
	o.Log = os.Stderr
	snapshot := ""
	if o.Key == "" { // a snapshot: signed by a key made for it, kept beside the release
		dir, err := os.MkdirTemp("", "rollout-release-key-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		snapshot = filepath.Join(dir, "snapshot-key")
		if err := evidence.GenerateKey(snapshot); err != nil {
			return err
		}
		o.Key = snapshot + ".key"
	}
	res, err := release.Build(context.Background(), *o)
	if err != nil {
		return err
	}
	if snapshot != "" {
		pub, err := os.ReadFile(snapshot + ".pub")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.Out, "snapshot-key.pub"), pub, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "release: a SNAPSHOT, signed by a key made for it (%s/snapshot-key.pub): give --key to sign a release\n", o.Out)
	}
	clean := "clean"
	if !res.Source.Clean {
		clean = "MODIFIED (uncommitted changes)"
	}
	fmt.Fprintf(os.Stderr, "release %s of %s (%s tree): %d artifacts in %s; checksums.txt(.sig), provenance.intoto.json, oci/\n",
		o.Version, res.Source.Commit, clean, len(res.Artifacts), o.Out)
	return nil
}
