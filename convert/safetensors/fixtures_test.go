package safetensors

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/bson"
	"github.com/safeweights/safeweights/convert/jld2"
	"github.com/safeweights/safeweights/internal/fixtures"
)

// fixturesDir returns the shared Flux fixtures, or skips the test.
func fixturesDir(t *testing.T) string { return fixtures.Require(t, "") }

// TestFixturesRoundTrip converts each Flux fixture to .swt, exports it to
// safetensors, converts that back to .swt, and checks that every step keeps
// the names and bytes of the tensors.
func TestFixturesRoundTrip(t *testing.T) {
	fx := fixturesDir(t)
	readers := map[string]func(data []byte) (*convert.Model, error){
		".jld2": func(data []byte) (*convert.Model, error) { return jld2.Read(data) },
		".bson": func(data []byte) (*convert.Model, error) { return bson.Read(data) },
	}
	var files []string
	for _, sub := range []string{"flux-jld2", "flux-bson"} {
		ents, _ := os.ReadDir(filepath.Join(fx, sub))
		for _, e := range ents {
			if readers[filepath.Ext(e.Name())] != nil {
				files = append(files, filepath.Join(fx, sub, e.Name()))
			}
		}
	}
	if len(files) == 0 {
		t.Skip("no fixtures")
	}
	converted := 0
	for _, src := range files {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir := t.TempDir()
			swt := filepath.Join(dir, "a.swt")
			if _, err := convert.Convert(context.Background(), src, swt, readers[filepath.Ext(src)]); err != nil {
				// The Flux readers' own tests decide which fixtures they
				// must convert; this test needs only those they do.
				t.Skipf("source converter: %v", err)
			}
			want, _ := swtTensors(t, swt)
			st := filepath.Join(dir, "b.safetensors")
			if err := ExportFile(context.Background(), swt, st); err != nil {
				if errors.Is(err, ErrExport) {
					t.Skipf("not representable in safetensors: %v", err)
				}
				t.Fatal(err)
			}
			compareTensors(t, want, readFile(t, st).Tensors)
			swt2 := filepath.Join(dir, "c.swt")
			if _, err := Convert(context.Background(), st, swt2); err != nil {
				t.Fatal(err)
			}
			got, meta := swtTensors(t, swt2)
			compareTensors(t, want, got)
			if meta[convert.MetaReport] == "" || !strings.Contains(meta[convert.MetaReport], "dropped") {
				t.Errorf("report metadata %q", meta[convert.MetaReport])
			}
			converted++
		})
	}
	t.Logf("%d of %d fixtures round-tripped", converted, len(files))
}
