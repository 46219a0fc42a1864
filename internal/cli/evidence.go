package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/internal/evidence"
	"github.com/rollout-dev/rollout/internal/runs"
)

func newEvidenceCmd(io IO, g globals) *cobra.Command {
	var ring, key, out string
	cmd := &cobra.Command{
		Use:   "evidence RUN --key FILE --out DIR [--ring R]",
		Short: "Write signed in-toto attestations of what a run did in each ring and boundary it finished",
		Long: `Write, for every ring (or --ring R) and boundary the run finished, an in-toto Statement v1 in a
DSSE envelope, signed with --key (ECDSA P-256 or ed25519, PEM, mode 600; rollout evidence keygen
makes one): DIR/RUN.RING.BOUNDARY.intoto.json. Its subject is the release's digest; its predicate
(https://rollout.dev/attestation/ring-passed/v1) the run, ring, boundary, the identity the
boundary's preflight proved, each target's final phase, plan summary and plan digest, the
gates' verdicts with their measurements summarised, the approvals with their proofs, a break-glass
record, start and end. DIR/RELEASE.release is what the release digest is the SHA-256 of, for a
verifier that is not rollout (cosign verify-blob-attestation). A fleet whose promotion policy
requires them takes them with 'rollout start --release R --evidence DIR'.`,
		Example: `  rollout evidence keygen --out keys/commercial        # keys/commercial.key (600) and .pub
  rollout evidence v42-1a2b3c --key keys/commercial.key --out evidence/
  rollout evidence verify evidence/v42-1a2b3c.commercial.aws.intoto.json --trust keys/commercial.pub
  cosign verify-blob-attestation --key keys/commercial.pub --insecure-ignore-tlog \
      --type https://rollout.dev/attestation/ring-passed/v1 \
      --signature evidence/v42-1a2b3c.commercial.aws.intoto.json evidence/v42.release`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" || out == "" {
				return &ExitErr{Code: ExitError, Err: errors.New("--key and --out are required")}
			}
			return act(cmd.Context(), io, g, func(ctx context.Context, f *runs.Fleet) error {
				files, err := f.WriteEvidence(ctx, args[0], ring, key, out)
				if g.json() && err == nil {
					return writeJSON(io.Out, map[string]any{"v": 1, "run": args[0], "files": files})
				}
				for _, p := range files {
					fmt.Fprintln(io.Out, p)
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&ring, "ring", "", "only this ring")
	cmd.Flags().StringVar(&key, "key", "", "the private key to sign with (PEM, mode 600)")
	cmd.Flags().StringVar(&out, "out", "", "the directory to write into")
	cmd.AddCommand(newEvidenceVerifyCmd(io, g), newEvidenceKeygenCmd(io, g))
	return cmd
}

func newEvidenceVerifyCmd(io IO, g globals) *cobra.Command {
	var trust []string
	cmd := &cobra.Command{
		Use:     "verify FILE --trust PUBKEY [--trust PUBKEY ...]",
		Short:   "Check an attestation's signature against trusted public keys, and say what it attests (rollout's evidence, or a release's SLSA provenance)",
		Example: "  rollout evidence verify evidence/v42-1a2b3c.commercial.aws.intoto.json --trust keys/commercial.pub",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var vs []dsse.SignerVerifier
			for _, t := range trust {
				v, err := evidence.LoadVerifier(t)
				if err != nil {
					return &ExitErr{Code: ExitError, Err: fmt.Errorf("--trust: %w", err)}
				}
				vs = append(vs, v)
			}
			b, err := evidence.ReadFile(args[0])
			if err != nil {
				return &ExitErr{Code: ExitError, Err: err}
			}
			st, err := evidence.VerifyStatement(cmd.Context(), b, vs...)
			if err != nil {
				return &ExitErr{Code: ExitError, Err: fmt.Errorf("%s: %w", args[0], err)}
			}
			if st.PredicateType != evidence.PredicateType { // another statement: a release's provenance
				if g.json() {
					return writeJSON(io.Out, map[string]any{"v": 1, "verified": true, "keyId": st.KeyID, "predicateType": st.PredicateType,
						"subjects": st.Subjects, "predicate": st.Predicate})
				}
				fmt.Fprintf(io.Out, "verified: signed by key %s\na %s statement about:\n", st.KeyID, st.PredicateType)
				for _, s := range st.Subjects {
					fmt.Fprintf(io.Out, "  %s  %s\n", s.SHA256, clean(s.Name))
				}
				return nil
			}
			v, err := evidence.Verify(cmd.Context(), b, vs...)
			if err != nil {
				return &ExitErr{Code: ExitError, Err: fmt.Errorf("%s: %w", args[0], err)}
			}
			p := v.Predicate
			if g.json() {
				return writeJSON(io.Out, map[string]any{"v": 1, "verified": true, "keyId": v.KeyID, "predicateType": evidence.PredicateType, "subject": v.Subject, "predicate": p})
			}
			fmt.Fprintf(io.Out, "verified: signed by key %s\nrelease %s (digest %s)\nfleet %s, run %s: ring %s %s in boundary %s, %d target(s), ended %s\n",
				v.KeyID, p.Release.Name, v.Subject, p.Fleet, p.Run, p.Ring, p.RingPhase, p.Boundary, len(p.Targets), p.Ended.UTC().Format("2006-01-02 15:04:05Z"))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&trust, "trust", nil, "a trusted public key (PEM; repeatable)")
	_ = cmd.MarkFlagRequired("trust")
	return cmd
}

func newEvidenceKeygenCmd(io IO, g globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:     "keygen --out PREFIX",
		Short:   "Make an ECDSA P-256 signing key: PREFIX.key (mode 600) and PREFIX.pub",
		Example: "  rollout evidence keygen --out keys/commercial",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := evidence.GenerateKey(out); err != nil {
				return &ExitErr{Code: ExitError, Err: err}
			}
			if g.json() {
				return writeJSON(io.Out, map[string]any{"v": 1, "key": out + ".key", "pub": out + ".pub"})
			}
			fmt.Fprintf(io.Out, "%s.key\n%s.pub\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the key files' path without extension (required)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
