package decode_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// shifty is an io.ReaderAt over a file's bytes that answers differently
// after a while, as a remote object replaced between requests, or a file
// rewritten by another process, does: the bytes of the data region are
// XORed with 0x5a on every read that evil says is evil. The preamble and
// header are never changed, so Open succeeds and every check that follows
// is a data check.
type shifty struct {
	data     []byte
	lo, hi   int64 // the data region
	mu       sync.Mutex
	reads    int
	dataSeen bool // since armed
	armed    bool // set once the File is open, so eager checks pass first
	evil     func(s *shifty) bool
}

func (s *shifty) ReadAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	s.reads++
	bad := false
	if off < s.hi && off+int64(len(p)) > s.lo {
		if s.armed {
			bad = s.evil(s)
			s.dataSeen = true
		}
	}
	s.mu.Unlock()
	if off >= int64(len(s.data)) {
		return 0, os.ErrClosed
	}
	n := copy(p, s.data[off:])
	if bad {
		for i := range n {
			if o := off + int64(i); o >= s.lo && o < s.hi {
				p[i] ^= 0x5a
			}
		}
	}
	return n, nil
}

// afterFirst is evil on every read of the data region but the first.
func afterFirst(s *shifty) bool { return s.dataSeen }

// everyOther is evil on every second read.
func everyOther(s *shifty) bool { return s.reads%2 == 0 }

type toctouTensor struct {
	name  string
	shape []int64
	comp  bool
	data  []byte
}

func toctouFile(t *testing.T) (string, []toctouTensor) {
	t.Helper()
	var ts []toctouTensor
	for i, n := range []int64{3000, 1 << 14, 77} {
		d := make([]byte, n*4)
		for j := range d {
			d[j] = byte(j*31 + i)
		}
		ts = append(ts, toctouTensor{name: string(rune('a' + i)), shape: []int64{n}, comp: i == 1, data: d})
	}
	path := filepath.Join(t.TempDir(), "m.swt")
	w, err := encode.Create(path, encode.WithChunkSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ts {
		var o []encode.TensorOption
		if x.comp {
			o = append(o, encode.Compress(1))
		}
		if err := w.Add(x.name, format.F32, x.shape, x.data, o...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path, ts
}

// readPaths are every way a caller gets tensor bytes.
var readPaths = map[string]func(tn *decode.Tensor) ([]byte, error){
	"Bytes": func(tn *decode.Tensor) ([]byte, error) { return tn.Bytes() },
	"ReadInto": func(tn *decode.Tensor) ([]byte, error) {
		b := make([]byte, tn.Length)
		return b, tn.ReadInto(b)
	},
	"Stored": func(tn *decode.Tensor) ([]byte, error) {
		if tn.Compression != format.None {
			return tn.Bytes()
		}
		return tn.Stored()
	},
	"View": func(tn *decode.Tensor) ([]byte, error) {
		v, err := decode.View[float32](tn)
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, len(v)*4)
		for _, x := range v {
			b := [4]byte{}
			u := math.Float32bits(x)
			b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
			out = append(out, b[:]...)
		}
		return out, nil
	},
	"ReadSlice": func(tn *decode.Tensor) ([]byte, error) { return tn.ReadSlice(decode.FullSlice(tn.Shape)) },
	"CopyTo": func(tn *decode.Tensor) ([]byte, error) {
		var buf bytes.Buffer
		_, err := tn.CopyTo(&buf)
		return buf.Bytes(), err
	},
	"ReadSliceWith": func(tn *decode.Tensor) ([]byte, error) {
		b := make([]byte, tn.Length)
		return b, tn.ReadSliceWith(decode.FullSlice(tn.Shape), b, decode.SliceOptions{Reads: 4})
	},
	"VerifyRange+ReadInto": func(tn *decode.Tensor) ([]byte, error) {
		if err := tn.VerifyRange(0, tn.StoredLength); err != nil {
			return nil, err
		}
		b := make([]byte, tn.Length)
		return b, tn.ReadInto(b)
	},
}

// TestChangingSource: under a verify mode a read returns the bytes that
// were written or a digest error, never the bytes a source gives on a
// later read, on every read path, in every mode, read twice.
func TestChangingSource(t *testing.T) {
	path, ts := toctouFile(t)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f0, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	pre := f0.Preamble()
	f0.Close()
	modes := map[string][]decode.Option{
		"lazy":          {decode.WithVerify(decode.VerifyLazy)},
		"eager":         {decode.WithVerify(decode.VerifyEager)},
		"checked":       {decode.WithCheckedReads()},
		"eager+checked": {decode.WithVerify(decode.VerifyEager), decode.WithCheckedReads()},
	}
	evils := map[string]func(*shifty) bool{"after-first": afterFirst, "every-other": everyOther}
	for mname, opts := range modes {
		for ename, evil := range evils {
			for pname, read := range readPaths {
				t.Run(mname+"/"+ename+"/"+pname, func(t *testing.T) {
					src := &shifty{data: raw, lo: int64(pre.DataOffset), hi: int64(pre.DataEnd()), evil: evil}
					f, err := decode.NewReader(src, int64(len(raw)), opts...)
					if err != nil {
						if errors.Is(err, format.ErrDigest) || errors.Is(err, format.ErrPadding) {
							return // eager verification saw the change
						}
						t.Fatal(err)
					}
					defer f.Close()
					src.mu.Lock()
					src.armed = true
					src.mu.Unlock()
					for range 2 {
						for _, want := range ts {
							tn, err := f.Tensor(want.name)
							if err != nil {
								t.Fatal(err)
							}
							got, err := read(tn)
							if err != nil {
								// The source XORs padding too, which
								// the padding check may see first.
								if !errors.Is(err, format.ErrDigest) && !errors.Is(err, format.ErrPadding) {
									t.Fatalf("%s: %v, want a digest error or the bytes", want.name, err)
								}
								continue
							}
							if !bytes.Equal(got, want.data) {
								t.Fatalf("%s: returned bytes that differ from the file's digests", want.name)
							}
						}
					}
				})
			}
		}
	}
}

// TestRewrittenMappedFile: a mapped file opened with checked reads, or
// under a policy that asks for them, hands out no bytes that another
// writer put there after the first check.
func TestRewrittenMappedFile(t *testing.T) {
	path, ts := toctouFile(t)
	f, err := decode.Open(path, decode.WithCheckedReads())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, want := range ts {
		tn, _ := f.Tensor(want.name)
		got, err := tn.Bytes()
		if err != nil || !bytes.Equal(got, want.data) {
			t.Fatalf("%s: first read: %v", want.name, err)
		}
	}
	// Another process rewrites every tensor's bytes in place.
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range ts {
		tn, _ := f.Tensor(want.name)
		junk := bytes.Repeat([]byte{0xee}, int(tn.StoredLength))
		if _, err := w.WriteAt(junk, tn.Offset); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	for pname, read := range readPaths {
		for _, want := range ts {
			tn, _ := f.Tensor(want.name)
			got, err := read(tn)
			if err == nil {
				t.Fatalf("%s %s: read the rewritten bytes without an error", pname, want.name)
			}
			if !errors.Is(err, format.ErrDigest) {
				t.Fatalf("%s %s: %v, want a digest error", pname, want.name, err)
			}
			_ = got
		}
	}
	if err := f.Verify(context.Background(), decode.VerifyOptions{}); !errors.Is(err, format.ErrDigest) {
		t.Fatalf("Verify of the rewritten file: %v", err)
	}
}

// TestPaddingCheckedOnEveryPath: bytes hidden in the padding between
// tensors are refused by the first read of a neighbouring tensor, not only
// by a whole-file Verify.
func TestPaddingCheckedOnEveryPath(t *testing.T) {
	path, ts := toctouFile(t)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f0, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f0.Tensor(ts[0].name) // 12000 bytes: padding follows up to 12288
	hole := a.Offset + a.StoredLength + 10
	f0.Close()
	raw[hole] = '#'
	for pname, read := range readPaths {
		for _, m := range [][]decode.Option{{decode.WithVerify(decode.VerifyLazy)}, {decode.WithCheckedReads()}} {
			f, err := decode.NewReader(bytes.NewReader(raw), int64(len(raw)), m...)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range []int{0, 1} { // the tensors before and after the hole
				tn := f.TensorAt(i)
				if _, err := read(tn); !errors.Is(err, format.ErrPadding) {
					t.Fatalf("%s %s: %v, want a padding error", pname, tn.Name, err)
				}
			}
			f.Close()
		}
	}
	// Without a verify mode the bytes are returned unchecked, as documented.
	f, err := decode.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.TensorAt(0).Bytes(); err != nil {
		t.Fatalf("unverified read: %v", err)
	}
	if err := f.Verify(context.Background(), decode.VerifyOptions{}); !errors.Is(err, format.ErrPadding) {
		t.Fatalf("Verify: %v, want a padding error", err)
	}
}

func TestViewElementType(t *testing.T) {
	path, _ := toctouFile(t)
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := decode.View[int32](f.TensorAt(0)); !errors.Is(err, decode.ErrElementType) {
		t.Fatalf("View[int32] of F32: %v", err)
	}
}
