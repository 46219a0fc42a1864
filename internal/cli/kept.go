package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/rollout-dev/rollout/internal/rings"
)

// keptFormat is how a finished run's report is kept in the journal: its JSON (ReportVersion),
// gzip-compressed and base64-encoded (the column is text in both dialects). A run of 10,000
// targets has a 4.8 MB report, kept in about 190 KB. A report kept in another format (another
// rollout version's) is stale: it is built again from the events.
// Raised whenever the report gains a field (1002: driver, waitingFor, next).
const keptFormat = 1002

// reportNeed says how much of a kept report a command decodes.
type reportNeed int

const (
	needHead reportNeed = iota // the run's own fields (phase, reason, exit code): history
	needJSON                   // and the whole report's JSON, not decoded: status --output json
	needAll                    // the whole report decoded: the table
)

// runReport builds a run's report. A finished run's report is kept in the journal for the run's
// last event number and keptFormat, so asking again does not replay the run; any later event (or
// another format) makes it stale, and it is built again. raw is the kept JSON when the report
// was kept and need is needJSON or needAll (nil when it was built now, or for needHead). Unless
// need is needAll, a kept report comes back with the run's own fields and no rings: decoding
// 10,000 targets is most of a status call's time.
func (f *fleet) runReport(ctx context.Context, id string, need reportNeed) (*Report, []byte, error) {
	last, err := f.store.LastSeq(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if seq, version, data, err := f.store.LoadReport(ctx, id); err == nil && seq == last && version == keptFormat {
		if rep, raw, err := unpackReport(data, need); err == nil {
			return rep, raw, nil
		}
	}
	s, gates, err := f.replay(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	rep := buildReport(s, gates)
	if !settled(s.Phase) {
		if err := f.withDriver(ctx, &rep); err != nil {
			return nil, nil, err
		}
	}
	rep.Next = nextAction(&rep)
	if rings.Terminal(s.Phase) {
		if data, err := packReport(rep); err == nil {
			_ = f.store.SaveReport(ctx, id, last, keptFormat, data) // derived data: a failure only costs the next replay
		}
	}
	return &rep, nil, nil
}

func packReport(rep Report) ([]byte, error) {
	var buf bytes.Buffer
	b64 := base64.NewEncoder(base64.StdEncoding, &buf)
	zw := gzip.NewWriter(b64)
	if err := json.NewEncoder(zw).Encode(rep); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := b64.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func unpackReport(data []byte, need reportNeed) (*Report, []byte, error) {
	zr, err := gzip.NewReader(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(data)))
	if err != nil {
		return nil, nil, err
	}
	if need == needHead {
		rep, err := decodeHead(zr) // reads no further than the report's rings
		return rep, nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, nil, err
	}
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	if need == needJSON {
		rep, err := decodeHead(bytes.NewReader(raw))
		return rep, raw, err
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, nil, err
	}
	return &rep, raw, nil
}

// decodeHead decodes a report's own fields, stopping at its rings (the last field, and all but
// a few hundred bytes of a large report).
func decodeHead(r io.Reader) (*Report, error) {
	dec := json.NewDecoder(r)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("kept report: not a JSON object (%v)", err)
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := t.(string)
		if !ok {
			return nil, errors.New("kept report: a key is not a string")
		}
		if key == "rings" {
			break
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		fields[key] = v
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	var rep Report
	return &rep, json.Unmarshal(b, &rep)
}

// withDriver says who drives a run in progress: the live holder of the fleet's lease; with none,
// the run waits for a driver (exit 3) until `rollout resume RUN`.
func (f *fleet) withDriver(ctx context.Context, rep *Report) error {
	lease, err := f.store.Lease(ctx)
	if err != nil {
		return err
	}
	if lease != nil && lease.Live(thisHost()) {
		h := lease.Holder
		rep.Driver, rep.ExitCode = &DriverReport{Name: h.Name, Host: h.Host, PID: h.PID, Doing: h.Doing}, exitForPhase(rep.Phase, true)
		return nil
	}
	rep.WaitingFor, rep.ExitCode = "driver", exitForPhase(rep.Phase, false)
	return nil
}
