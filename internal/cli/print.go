package cli

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/rollout-dev/rollout/internal/rings"
	"github.com/rollout-dev/rollout/internal/runs"
)

// Report is the run service's report of a run (its JSON is public API: docs/schema/report.v1.json).
type Report = runs.Report

// showReport prints a run's report (JSON to stdout with --output json, else a table to text) and
// returns the exit code its outcome maps to (nil for 0).
func showReport(ctx context.Context, io IO, g globals, f *runs.Fleet, id string, text io.Writer) error {
	if id == "" { // nothing was started (nothing to roll back, expand or resume): say so in JSON too
		if g.json() {
			return writeJSON(io.Out, map[string]any{"v": 1, "run": nil, "nothingToDo": true, "exitCode": 0})
		}
		return nil
	}
	need := runs.NeedAll
	if g.json() {
		need = runs.NeedJSON
	}
	rep, raw, err := f.Report(ctx, id, need)
	if err != nil {
		return err
	}
	switch {
	case g.json() && raw != nil:
		err = writeRawJSON(io.Out, raw)
	case g.json():
		err = writeJSON(io.Out, rep)
	default:
		st := style{} // tables on stdout are plain; the report after a run, on stderr, may be coloured
		if text == io.Err {
			st = newStyle(io, g)
		}
		printReport(text, *rep, st)
	}
	if err != nil {
		return err
	}
	return reportExit(rep)
}

// reportExit is a report's exit code, as the error Main turns into it (nil for 0).
func reportExit(rep *Report) error {
	switch rep.ExitCode {
	case ExitOK:
		return nil
	case ExitError:
		why := rep.Reason
		if why == "" {
			why = "stopped in phase " + cmp.Or(string(rep.Phase), "(never started)")
		}
		return &ExitErr{Code: ExitError, Err: fmt.Errorf("run %s %s", rep.Run, why)}
	}
	return &ExitErr{Code: rep.ExitCode}
}

// writeJSON prints one JSON document: indented when a person reads it (out is a terminal),
// compact for a pipeline (indenting a 10,000-target report took a fifth of `status`'s time).
func writeJSON(out io.Writer, v any) error {
	w := bufio.NewWriterSize(out, 64<<10)
	enc := json.NewEncoder(w)
	if isTerminal(out) {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return err
	}
	return w.Flush()
}

// writeRawJSON prints a JSON document kept as compact bytes, indented for a terminal.
func writeRawJSON(out io.Writer, raw []byte) error {
	if isTerminal(out) {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return err
		}
		raw = buf.Bytes()
	}
	if _, err := out.Write(raw); err != nil {
		return err
	}
	_, err := out.Write([]byte("\n"))
	return err
}

func isTerminal(w io.Writer) bool {
	if p, ok := w.(*printed); ok {
		w = p.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func relName(r *rings.ReleaseRef) string {
	if r == nil {
		return "-"
	}
	return clean(r.Name)
}

func planText(p *rings.PlanSummary) string { return runs.PlanText(p) }

func dur(a, b *time.Time) string {
	if a == nil || b == nil {
		return "-"
	}
	return b.Sub(*a).Round(100 * time.Millisecond).String()
}

// printReport writes the report for a person: the run, then a table of rings and targets (not
// coloured: escape codes would break the table's alignment).
func printReport(w io.Writer, rep Report, st style) {
	fmt.Fprintf(w, "\nrun %s  %s %s  %s", clean(rep.Run), rep.Kind, clean(rep.Release.Name), st.phase(string(rep.Phase)))
	if rep.Reason != "" {
		fmt.Fprintf(w, "  (%s)", clean(rep.Reason))
	}
	fmt.Fprintf(w, "\nstarted %s, %s ago; exit code %d\n", rep.Started.Local().Format("2006-01-02 15:04:05"),
		time.Since(rep.Started).Round(time.Second), rep.ExitCode)
	for _, l := range rep.Notes() {
		fmt.Fprintln(w, clean(l))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RING\tTARGET\tBOUNDARY\tSTATE\tRELEASE\tPLAN\tTOOK\tDETAIL")
	for _, r := range rep.Rings {
		ringNote := string(r.Phase)
		if r.BakeUntil != nil {
			ringNote += fmt.Sprintf(" (%s left)", time.Until(*r.BakeUntil).Round(time.Second))
		}
		fmt.Fprintf(tw, "%s\t\t\t%s\t\t\t%s\t%s\n", clean(r.Name), ringNote, dur(r.Started, r.Ended), truncate(r.Reason, 100))
		for _, t := range r.Targets {
			detail := t.Message
			if detail == "" && len(t.Gates) > 0 {
				g := t.Gates[len(t.Gates)-1]
				detail = fmt.Sprintf("%s: %s", g.Gate, g.Message)
			}
			phase := string(t.Phase)
			if t.Queued {
				phase = "queued (" + phase + ")"
			}
			if t.FailedHere {
				phase += " (failed here)"
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(t.Name), clean(t.Boundary), phase, relName(t.Release),
				planText(t.Plan), dur(t.Started, t.Ended), truncate(detail, 100))
			for _, c := range t.Components { // a stack: each component as this run left it
				fmt.Fprintf(tw, "\t  /%s\t\t%s\t%s\t%s\t\t%s\n", clean(c.Name), c.State, clean(c.Release), planText(c.Plan), truncate(c.Message, 100))
			}
		}
	}
	tw.Flush()
}

// clean makes text from the journal safe to print on a terminal: control characters (a newline,
// an ANSI escape) are shown escaped, never sent.
func clean(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

func truncate(s string, n int) string {
	s = clean(strings.Join(strings.Fields(s), " "))
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}
