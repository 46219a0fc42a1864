package runs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollout-dev/rollout/internal/journal"
)

// archiveOf writes a tar.gz whose headers claim sizes; only the first `write` bytes of each body
// are written (a small archive can claim gigabytes: the reader must refuse before reading).
func archiveOf(t *testing.T, sizes map[string]int64, write int) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, size := range sizes {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(make([]byte, min(int64(write), size)))
	}
	_ = tw.Flush()
	_ = gz.Close()
	p := filepath.Join(t.TempDir(), "a.tgz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Import stops at the entry that crosses a cap, names the cap, and reads nothing past it.
func TestImportStopsAtItsCaps(t *testing.T) {
	start := time.Now()
	_, err := readArchive(archiveOf(t, map[string]int64{"a": 2 << 30}, 0))
	if err == nil || !strings.Contains(err.Error(), "over the cap of 1073741824 for one entry") {
		t.Fatalf("a 2 GiB entry: %v", err)
	}
	was := maxArchiveTotal
	maxArchiveTotal = 100
	_, err = readArchive(archiveOf(t, map[string]int64{"a": 60, "b": 60}, 60))
	maxArchiveTotal = was
	if err == nil || !strings.Contains(err.Error(), "brings the unpacked size to 120 bytes, over the cap of 100") {
		t.Fatalf("two entries over the total: %v", err)
	}
	many := map[string]int64{}
	for i := range maxArchiveEntries + 1 {
		many[fmt.Sprint("f", i)] = 1
	}
	if _, err = readArchive(archiveOf(t, many, 1)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("cap of %d entries", maxArchiveEntries)) {
		t.Fatalf("%d entries: %v", maxArchiveEntries+1, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("refusing took %s: the entries were read", d)
	}
	// The providers tarball has caps of its own.
	was = maxProvidersTotal
	maxProvidersTotal = 10
	defer func() { maxProvidersTotal = was }()
	b, _ := os.ReadFile(archiveOf(t, map[string]int64{"registry/x": 11}, 11))
	if err := untarGz(b, t.TempDir()); err == nil || !strings.Contains(err.Error(), "over the cap of 10") {
		t.Fatalf("providers over their total cap: %v", err)
	}
}

// A release name from an archive is a name: no path, no escapes, not empty.
func TestImportRefusesWhatIsNotAName(t *testing.T) {
	for _, name := range []string{"../../x", "v1\x1b[31m\nrun finished", ""} {
		rel, _ := json.Marshal(journal.Release{Name: name, Digest: strings.Repeat("a", 64), Module: strings.Repeat("b", 64)})
		m := transferManifest{V: 1, Release: journal.Release{Name: name, Digest: strings.Repeat("a", 64)}}
		_, _, _, err := checkRelease(m, map[string][]byte{fileRelease: rel}, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "names are 1 to 63 letters") {
			t.Errorf("release name %q: %v", name, err)
		}
	}
}
