// Package convtest checks what every converter's Convert promises: the
// shape of the API shared by convert/bson, convert/jld2,
// convert/safetensors and convert/auto.
package convtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
)

// ConvertFunc is the signature every converter's Convert has.
type ConvertFunc func(ctx context.Context, src, dst string, opts ...convert.Option) (*convert.Report, error)

// Check converts src, which must hold at least two tensors, and checks
// that:
//   - the provenance written into the file, the report and converter (the
//     package's Converter constant) name the same converter;
//   - WithProgress reports bytes written, never decreasing, ending at the
//     total of the report's tensors, with one total throughout;
//   - WithEncodeOptions reaches the writer;
//   - a context cancelled between tensors stops the conversion with its
//     error and leaves neither dst nor a temporary file in dst's directory;
//   - an option that fails stops the conversion before dst is created.
func Check(t *testing.T, conv ConvertFunc, src, converter string) {
	t.Helper()
	dir := t.TempDir()
	dst := filepath.Join(dir, "out.swt")

	var calls [][2]int64
	rep, err := conv(context.Background(), src, dst,
		convert.WithProgress(func(done, total int64) { calls = append(calls, [2]int64{done, total}) }),
		convert.WithEncodeOptions(encode.WithProducer("convtest")))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tensors) < 2 {
		t.Fatalf("source %s has %d tensors; the check needs two", src, len(rep.Tensors))
	}
	f, err := decode.Inspect(dst)
	if err != nil {
		t.Fatal(err)
	}
	prov, ok := f.Provenance()
	producer := f.Producer()
	f.Close()
	if !ok {
		t.Fatal("no provenance written")
	}
	if prov.Converter != converter || rep.Converter != converter {
		t.Errorf("converter: provenance %q, report %q, package %q", prov.Converter, rep.Converter, converter)
	}
	if producer != "convtest" {
		t.Errorf("producer %q: encoder options not passed through", producer)
	}
	var want int64
	for _, tr := range rep.Tensors {
		want += tr.Bytes
	}
	if len(calls) < len(rep.Tensors) {
		t.Fatalf("progress called %d times for %d tensors", len(calls), len(rep.Tensors))
	}
	for i, c := range calls {
		if c[1] != want {
			t.Fatalf("progress call %d: total %d, want %d", i, c[1], want)
		}
		if i > 0 && c[0] < calls[i-1][0] {
			t.Fatalf("progress went back: %v", calls)
		}
	}
	if last := calls[len(calls)-1]; last[0] != want {
		t.Fatalf("progress ended at %d of %d", last[0], want)
	}

	// Cancelled after the first tensor: the second is never written.
	cdir := t.TempDir()
	cdst := filepath.Join(cdir, "out.swt")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = conv(ctx, src, cdst, convert.WithProgress(func(done, total int64) {
		if done > 0 {
			cancel()
		}
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled conversion: error %v, want context.Canceled", err)
	}
	assertEmpty(t, cdir)

	// Cancelled before it starts.
	_, err = conv(ctx, src, cdst)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("conversion under a cancelled context: error %v, want context.Canceled", err)
	}
	assertEmpty(t, cdir)

	// A failing option: nothing is written.
	errOpt := errors.New("convtest: bad option")
	_, err = conv(context.Background(), src, cdst, func(*convert.Settings) error { return errOpt })
	if !errors.Is(err, errOpt) {
		t.Fatalf("failing option: error %v", err)
	}
	assertEmpty(t, cdir)
}

// assertEmpty fails unless dir has no entries: no output, no temporary.
func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in the output directory: %s", e.Name())
	}
}

// SpecVersion returns the version that the spec document at path declares
// on its "Version X.Y." line.
func SpecVersion(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := versionRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s declares no version", path)
	}
	return string(m[1])
}

var versionRE = regexp.MustCompile(`(?m)^Version ([0-9]+\.[0-9]+)\.`)
