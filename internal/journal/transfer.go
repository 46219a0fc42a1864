package journal

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/rollout-dev/rollout/internal/rings"
)

// ExportVersion is the version of the export format: NDJSON, one record per line.
const ExportVersion = 1

type record struct {
	Kind    string       `json:"kind"` // header | run | release | bundle | event
	V       int          `json:"v,omitempty"`
	Run     *Run         `json:"run,omitempty"`
	Release *Release     `json:"release,omitempty"`
	Digest  string       `json:"digest,omitempty"`
	Data    string       `json:"data,omitempty"` // a bundle, base64
	Event   *rings.Event `json:"event,omitempty"`
}

// ExportSource is what Export reads.
type ExportSource interface {
	Runs(ctx context.Context) ([]Run, error)
	Releases(ctx context.Context) ([]Release, error)
	BundleDigests(ctx context.Context) ([]string, error)
	Bundle(ctx context.Context, digest string) ([]byte, error)
	AllEvents(ctx context.Context, fn func(rings.Event) error) error
}

// Export writes everything in the store: runs (oldest first), releases, bundles, and every event
// in the order it was appended. Import of the output into an empty store gives a store whose
// export is byte for byte the same.
func Export(ctx context.Context, s ExportSource, w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(record{Kind: "header", V: ExportVersion}); err != nil {
		return err
	}
	runs, err := s.Runs(ctx)
	if err != nil {
		return err
	}
	slices.Reverse(runs)
	for i := range runs {
		if err := enc.Encode(record{Kind: "run", Run: &runs[i]}); err != nil {
			return err
		}
	}
	rels, err := s.Releases(ctx)
	if err != nil {
		return err
	}
	for i := range rels {
		if err := enc.Encode(record{Kind: "release", Release: &rels[i]}); err != nil {
			return err
		}
	}
	digests, err := s.BundleDigests(ctx)
	if err != nil {
		return err
	}
	for _, d := range digests {
		data, err := s.Bundle(ctx, d)
		if err != nil {
			return err
		}
		if err := enc.Encode(record{Kind: "bundle", Digest: d, Data: base64.StdEncoding.EncodeToString(data)}); err != nil {
			return err
		}
	}
	if err := s.AllEvents(ctx, func(ev rings.Event) error { return enc.Encode(record{Kind: "event", Event: &ev}) }); err != nil {
		return err
	}
	return bw.Flush()
}

// ErrNotEmpty is returned by Import into a store that already holds runs.
var ErrNotEmpty = errors.New("the destination journal is not empty")

// ImportSink is what Import writes to.
type ImportSink interface {
	Runs(ctx context.Context) ([]Run, error)
	CreateRun(ctx context.Context, r Run) error
	Append(ctx context.Context, events ...rings.Event) error
	RecordRelease(ctx context.Context, r Release) error
	PutBundle(ctx context.Context, digest string, data []byte) error
}

// Import reads an export into an empty store. Events keep their run, number, time and version.
func Import(ctx context.Context, s ImportSink, r io.Reader) (int, error) {
	if runs, err := s.Runs(ctx); err != nil {
		return 0, err
	} else if len(runs) > 0 {
		return 0, fmt.Errorf("%w (%d runs): import only into a new journal", ErrNotEmpty, len(runs))
	}
	dec := json.NewDecoder(bufio.NewReader(r))
	n := 0
	var batch []rings.Event
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		want := make([]int64, len(batch))
		for i, ev := range batch {
			want[i] = ev.Seq
		}
		if err := s.Append(ctx, batch...); err != nil {
			return err
		}
		for i, ev := range batch {
			if ev.Seq != want[i] {
				return fmt.Errorf("event %s #%d was numbered %d on import: the export has a gap", ev.RunID, want[i], ev.Seq)
			}
		}
		batch = batch[:0]
		return nil
	}
	for line := 1; ; line++ {
		var rec record
		if err := dec.Decode(&rec); err == io.EOF {
			break
		} else if err != nil {
			return n, fmt.Errorf("import line %d: %w", line, err)
		}
		var err error
		switch rec.Kind {
		case "header":
			if rec.V > ExportVersion {
				return n, fmt.Errorf("import: export version %d is newer than this rollout understands (%d)", rec.V, ExportVersion)
			}
		case "run":
			err = s.CreateRun(ctx, *rec.Run)
		case "release":
			err = s.RecordRelease(ctx, *rec.Release)
		case "bundle":
			var data []byte
			if data, err = base64.StdEncoding.DecodeString(rec.Data); err == nil {
				err = s.PutBundle(ctx, rec.Digest, data)
			}
		case "event":
			batch = append(batch, *rec.Event)
			if len(batch) == 500 {
				err = flush()
			}
		default:
			err = fmt.Errorf("unknown record kind %q", rec.Kind)
		}
		if err != nil {
			return n, fmt.Errorf("import line %d: %w", line, err)
		}
		n++
	}
	return n, flush()
}
