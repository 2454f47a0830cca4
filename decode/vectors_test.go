package decode_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/testvectors"
)

// opener is one way of opening a file.
type opener struct {
	name string
	open func(path string, data []byte, opts ...decode.Option) (*decode.File, error)
}

var openers = []opener{
	{"mmap", func(p string, _ []byte, o ...decode.Option) (*decode.File, error) { return decode.Open(p, o...) }},
	{"pread", func(p string, _ []byte, o ...decode.Option) (*decode.File, error) {
		return decode.Open(p, append(o, decode.WithoutMmap())...)
	}},
	{"readerat", func(_ string, b []byte, o ...decode.Option) (*decode.File, error) {
		return decode.NewReader(bytes.NewReader(b), int64(len(b)), o...)
	}},
	{"inspect", func(p string, _ []byte, o ...decode.Option) (*decode.File, error) { return decode.Inspect(p, o...) }},
	{"eager", func(p string, _ []byte, o ...decode.Option) (*decode.File, error) {
		return decode.Open(p, append(o, decode.WithVerify(decode.VerifyEager))...)
	}},
	{"lazy", func(p string, _ []byte, o ...decode.Option) (*decode.File, error) {
		return decode.Open(p, append(o, decode.WithVerify(decode.VerifyLazy))...)
	}},
}

// contents is what a reader saw of an accepted file, for comparing readers.
type contents struct {
	names    []string
	dtypes   []format.DType
	shapes   [][]int64
	bytes    [][]byte
	attrs    []map[string]string
	meta     map[string]string
	producer string
	prov     format.Provenance
	hasProv  bool
}

// readAll reads every tensor of f twice (Bytes and ReadInto) and then
// verifies the file, returning the first error. Lazy files check each
// tensor's digests on first access, so the tensors are read before Verify.
func readAll(f *decode.File) (*contents, error) {
	c := &contents{meta: f.Metadata(), producer: f.Producer()}
	c.prov, c.hasProv = f.Provenance()
	for t := range f.All() {
		b, err := t.Bytes()
		if err != nil {
			return c, err
		}
		dst := make([]byte, t.Length)
		if err := t.ReadInto(dst); err != nil {
			return c, err
		}
		if !bytes.Equal(b, dst) {
			return c, errors.New("Bytes and ReadInto differ")
		}
		c.names = append(c.names, t.Name)
		c.dtypes = append(c.dtypes, t.DType)
		c.shapes = append(c.shapes, t.Shape)
		c.bytes = append(c.bytes, dst)
		c.attrs = append(c.attrs, t.Attributes)
	}
	return c, f.Verify(context.Background(), decode.VerifyOptions{})
}

// verifyAll runs full verification in the order of the vectors' README:
// Verify first, then decode every tensor.
func verifyAll(f *decode.File) (*contents, error) {
	if err := f.Verify(context.Background(), decode.VerifyOptions{}); err != nil {
		return nil, err
	}
	return readAll(f)
}

// checkKind fails unless err is of c's kind and, when err names a rule,
// of c's rule.
func checkKind(t *testing.T, how string, c testvectors.Case, err error) {
	t.Helper()
	if !errors.Is(err, c.Kind) {
		t.Errorf("%s: got %v, want kind %s", how, err, c.Expect)
		return
	}
	var fe *format.FormatError
	if errors.As(err, &fe) && fe.Rule != "" && c.Rule != "" && fe.Rule != c.Rule {
		t.Errorf("%s: got rule %s (%v), want %s", how, fe.Rule, err, c.Rule)
	}
}

func TestVectors(t *testing.T) {
	cases, err := testvectors.Core()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			path := filepath.Join(dir, filepath.Base(c.Name)+".swt")
			if err := os.WriteFile(path, c.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			var first *contents
			for _, o := range openers {
				f, err := o.open(path, c.Data, decode.WithLimits(c.Limits))
				if err != nil {
					if c.Kind == nil || (c.Full && o.name != "eager") {
						t.Errorf("%s: open: %v", o.name, err)
					} else {
						checkKind(t, o.name+": open", c, err)
					}
					continue
				}
				if c.Kind != nil && !c.Full {
					t.Errorf("%s: opened a file that must fail with %s", o.name, c.Expect)
					f.Close()
					continue
				}
				got, err := verifyAll(f)
				if o.name == "lazy" {
					// Lazy files check digests on first access: read first.
					got, err = readAll(f)
				}
				if c.Kind != nil {
					checkKind(t, o.name+": full verification", c, err)
				} else if err != nil {
					t.Errorf("%s: full verification: %v", o.name, err)
				} else {
					checkAccepted(t, o.name, f, c.Data)
					if first == nil {
						first = got
					} else if diff := compare(first, got); diff != "" {
						t.Errorf("%s disagrees with %s: %s", o.name, openers[0].name, diff)
					}
				}
				if err := f.Close(); err != nil {
					t.Errorf("%s: close: %v", o.name, err)
				}
			}
		})
	}
}

// checkAccepted checks the invariants of an accepted file that the header
// promises.
func checkAccepted(t *testing.T, how string, f *decode.File, data []byte) {
	t.Helper()
	if f.Size() != int64(len(data)) || !bytes.Equal(f.PreambleBytes(), data[:format.PreambleSize]) {
		t.Errorf("%s: size or preamble bytes wrong", how)
	}
	names := f.Names()
	if !slices.IsSorted(names) || len(names) != f.NumTensors() {
		t.Errorf("%s: names %q not sorted", how, names)
	}
	end := int64(-1)
	for tt := range f.All() {
		if got, err := f.Tensor(tt.Name); err != nil || got.Index() != tt.Index() {
			t.Errorf("%s: lookup %q: %v", how, tt.Name, err)
		}
		if tt.Offset%f.Alignment() != 0 || tt.Offset < end || tt.Offset+tt.StoredLength > f.Size() {
			t.Errorf("%s: %q at %d+%d, previous end %d", how, tt.Name, tt.Offset, tt.StoredLength, end)
		}
		end = tt.Offset + tt.StoredLength
		if n := format.NumChunks(uint64(tt.StoredLength), uint64(f.ChunkSize())); tt.NumChunks() != int(n) {
			t.Errorf("%s: %q: %d chunks, want %d", how, tt.Name, tt.NumChunks(), n)
		}
		for i := range tt.NumChunks() {
			lo := int64(i) * f.ChunkSize()
			n := min(f.ChunkSize(), tt.StoredLength-lo)
			sum := f.DigestAlgorithm().Sum(data[tt.Offset+lo : tt.Offset+lo+n])
			if !bytes.Equal(sum[:], tt.ChunkDigest(i)) {
				t.Errorf("%s: %q chunk %d digest differs", how, tt.Name, i)
			}
		}
		if err := tt.VerifyRange(0, tt.StoredLength); err != nil {
			t.Errorf("%s: %q: VerifyRange: %v", how, tt.Name, err)
		}
		if tt.Compression == format.None && !bytes.Equal(mustBytes(t, tt), data[tt.Offset:tt.Offset+tt.StoredLength]) {
			t.Errorf("%s: %q: bytes are not the stored bytes", how, tt.Name)
		}
	}
	if _, err := f.Tensor("\x00absent"); !errors.Is(err, format.ErrNotFound) {
		t.Errorf("%s: absent tensor: %v", how, err)
	}
}

func mustBytes(t *testing.T, tt *decode.Tensor) []byte {
	b, err := tt.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compare describes the first difference between two readings of a file.
func compare(a, b *contents) string {
	switch {
	case !slices.Equal(a.names, b.names):
		return "names"
	case !slices.Equal(a.dtypes, b.dtypes):
		return "dtypes"
	case !slices.EqualFunc(a.shapes, b.shapes, func(x, y []int64) bool { return slices.Equal(x, y) }):
		return "shapes"
	case !slices.EqualFunc(a.bytes, b.bytes, bytes.Equal):
		return "tensor bytes"
	case !slices.EqualFunc(a.attrs, b.attrs, mapsEqual):
		return "attributes"
	case !mapsEqual(a.meta, b.meta):
		return "metadata"
	case a.producer != b.producer:
		return "producer"
	case a.hasProv != b.hasProv || !provEqual(a.prov, b.prov):
		return "provenance"
	}
	return ""
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func provEqual(a, b format.Provenance) bool {
	return a.SourceFormat == b.SourceFormat && bytes.Equal(a.SourceSHA256, b.SourceSHA256) &&
		a.Converter == b.Converter && slices.Equal(a.Notes, b.Notes)
}

// TestTruncatedWhileMapped truncates a mapped file under the reader: Verify
// and the copying reads must report ErrIO instead of crashing the process
// with SIGBUS. (Slices from Bytes and View alias the mapping and are
// documented as unsafe after such a change, so they are not used here.)
func TestTruncatedWhileMapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.swt")
	w, err := encode.Create(path, encode.WithChunkSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	raw := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 10000)
	if err := w.Add("raw", format.U8, []int64{int64(len(raw))}, raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Add("zstd", format.U8, []int64{int64(len(raw))}, raw, encode.Compress(1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Mapping() == nil {
		t.Skip("no mmap on this platform")
	}
	lazy, err := decode.Open(path, decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		t.Fatal(err)
	}
	defer lazy.Close()
	// Cut the file at the start of the data region: every tensor page is
	// now past the end of the file, so touching it faults.
	if err := os.Truncate(path, int64(f.Preamble().DataOffset)); err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(context.Background(), decode.VerifyOptions{}); !errors.Is(err, format.ErrIO) {
		t.Errorf("Verify: %v, want ErrIO", err)
	}
	for _, name := range []string{"raw", "zstd"} {
		tt, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := tt.ReadInto(make([]byte, tt.Length)); !errors.Is(err, format.ErrIO) {
			t.Errorf("%s: ReadInto: %v, want ErrIO", name, err)
		}
		if err := tt.VerifyRange(0, tt.StoredLength); !errors.Is(err, format.ErrIO) {
			t.Errorf("%s: VerifyRange: %v, want ErrIO", name, err)
		}
		lt, _ := lazy.Tensor(name)
		if _, err := lt.Bytes(); !errors.Is(err, format.ErrIO) {
			t.Errorf("%s: lazy Bytes: %v, want ErrIO", name, err)
		}
	}
	if zt, _ := f.Tensor("zstd"); zt != nil {
		if _, err := zt.Bytes(); !errors.Is(err, format.ErrIO) {
			t.Errorf("zstd: Bytes: %v, want ErrIO", err)
		}
	}
	// A reader that does not map the file sees a short read.
	if _, err := decode.Open(path, decode.WithoutMmap()); !errors.Is(err, format.ErrTruncated) {
		t.Errorf("reopen: %v, want ErrTruncated", err)
	}
}
