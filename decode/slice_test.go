package decode_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// sliceTensor is one tensor written for the slice tests.
type sliceTensor struct {
	name  string
	dt    format.DType
	shape []int64
	data  []byte
	zstd  bool
}

func writeSliceFile(t testing.TB, ts []sliceTensor, opts ...encode.Option) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.swt")
	w, err := encode.Create(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ts {
		var topts []encode.TensorOption
		if s.zstd {
			topts = append(topts, encode.Compress(1))
		}
		if err := w.Add(s.name, s.dt, s.shape, s.data, topts...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, raw
}

// refSlice cuts a slice out of full row-major bytes one element at a time,
// independently of the runs the decoder computes.
func refSlice(full []byte, shape []int64, elem int, s decode.Slice) []byte {
	var out []byte
	idx := make([]int64, len(shape))
	for i, r := range s {
		if r.Len() == 0 {
			return out
		}
		idx[i] = r.Start
	}
	for {
		flat := int64(0)
		for i := range shape {
			flat = flat*shape[i] + idx[i]
		}
		out = append(out, full[flat*int64(elem):(flat+1)*int64(elem)]...)
		j := len(shape) - 1
		for ; j >= 0; j-- {
			idx[j]++
			if idx[j] < s[j].Stop {
				break
			}
			idx[j] = s[j].Start
		}
		if j < 0 {
			return out
		}
	}
}

func randomSlice(r *rand.Rand, shape []int64) decode.Slice {
	s := make(decode.Slice, len(shape))
	for i, d := range shape {
		a, b := r.Int64N(d+1), r.Int64N(d+1)
		if a > b {
			a, b = b, a
		}
		switch r.IntN(4) {
		case 0:
			a, b = 0, d
		case 1:
			if d > 0 {
				a = r.Int64N(d)
				s[i] = decode.Range{Start: a, Stop: a + 1, Index: true}
				continue
			}
		}
		s[i] = decode.Range{Start: a, Stop: b}
	}
	return s
}

func randomSliceTensors(r *rand.Rand) []sliceTensor {
	var ts []sliceTensor
	for _, dt := range format.DTypes() {
		for rank := 1; rank <= 4; rank++ {
			shape := make([]int64, rank)
			n := int64(1)
			for i := range shape {
				shape[i] = 1 + r.Int64N([]int64{300, 40, 12, 7}[rank-1])
				n *= shape[i]
			}
			data := make([]byte, n*int64(dt.Size()))
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			ts = append(ts, sliceTensor{name: fmt.Sprintf("%s.r%d", dt, rank), dt: dt, shape: shape, data: data, zstd: r.IntN(4) == 0})
		}
	}
	return ts
}

func TestSliceMatchesFullRead(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ts := randomSliceTensors(r)
	for _, alg := range []format.DigestAlgorithm{format.BLAKE3, format.SHA256} {
		path, raw := writeSliceFile(t, ts, encode.WithChunkSize(1024), encode.WithAlignment(64), encode.WithDigest(alg))
		opens := map[string]func() (*decode.File, error){
			"mmap-lazy": func() (*decode.File, error) { return decode.Open(path, decode.WithVerify(decode.VerifyLazy)) },
			"reader-eager": func() (*decode.File, error) {
				return decode.NewReader(bytes.NewReader(raw), int64(len(raw)), decode.WithVerify(decode.VerifyEager))
			},
			"reader-none": func() (*decode.File, error) { return decode.NewReader(bytes.NewReader(raw), int64(len(raw))) },
		}
		for how, open := range opens {
			f, err := open()
			if err != nil {
				t.Fatalf("%s: %v", how, err)
			}
			for _, s := range ts {
				tt, err := f.Tensor(s.name)
				if err != nil {
					t.Fatal(err)
				}
				for range 12 {
					sl := randomSlice(r, s.shape)
					want := refSlice(s.data, s.shape, s.dt.Size(), sl)
					got, err := tt.ReadSlice(sl)
					if err != nil {
						t.Fatalf("%s %s %s [%v]: %v", alg, how, s.name, sl, err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("%s %s %s [%v]: slice differs from the full read", alg, how, s.name, sl)
					}
					into := make([]byte, len(want)+16)
					for i := range into {
						into[i] = 0xa5 // canaries around the destination
					}
					if err := tt.ReadSliceWith(sl, into[8:8+len(want)], decode.SliceOptions{Reads: r.IntN(5)}); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(into[8:8+len(want)], want) || !bytes.Equal(into[:8], bytes.Repeat([]byte{0xa5}, 8)) || !bytes.Equal(into[8+len(want):], bytes.Repeat([]byte{0xa5}, 8)) {
						t.Fatalf("%s %s %s [%v]: ReadSliceInto differs or wrote outside its buffer", alg, how, s.name, sl)
					}
					if shape := sl.Shape(); int64(len(want)) != prod(shape)*int64(s.dt.Size()) {
						t.Fatalf("%s [%v]: Shape %v does not match %d bytes", s.name, sl, shape, len(want))
					}
				}
				if err := tt.ReadSliceInto(decode.FullSlice(s.shape), make([]byte, len(s.data)+1)); err == nil {
					t.Fatal("ReadSliceInto accepted a buffer of the wrong size")
				}
			}
			f.Close()
		}
	}
}

func prod(s []int64) int64 {
	n := int64(1)
	for _, d := range s {
		n *= d
	}
	return n
}

func TestSliceOutsideShape(t *testing.T) {
	_, raw := writeSliceFile(t, []sliceTensor{{name: "w", dt: format.F32, shape: []int64{4, 6}, data: make([]byte, 96)}})
	f, err := decode.NewReader(bytes.NewReader(raw), int64(len(raw)), decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		t.Fatal(err)
	}
	tt, _ := f.Tensor("w")
	for _, s := range []decode.Slice{
		{{Start: 0, Stop: 4}},
		{{Start: 0, Stop: 5}, {Start: 0, Stop: 6}},
		{{Start: -1, Stop: 2}, {Start: 0, Stop: 6}},
		{{Start: 3, Stop: 2}, {Start: 0, Stop: 6}},
		{{Start: 0, Stop: 2, Index: true}, {Start: 0, Stop: 6}},
	} {
		if _, err := tt.ReadSlice(s); !errors.Is(err, decode.ErrSlice) {
			t.Errorf("slice %v: got %v, want ErrSlice", s, err)
		}
	}
}

func TestParseSlice(t *testing.T) {
	shape := []int64{10, 20, 30}
	for _, c := range []struct {
		expr string
		want string // String of the result, or "" for an error
	}{
		{"", "0:10,0:20,0:30"},
		{"0:128,:", "0:10,0:20,0:30"},
		{"2:5", "2:5,0:20,0:30"},
		{":, 5:9", "0:10,5:9,0:30"},
		{"[1:2, :, -3:]", "1:2,0:20,27:30"},
		{"-1", "9,0:20,0:30"},
		{"3, -20, 0", "3,0,0"},
		{"::1, 1::", "0:10,1:20,0:30"},
		{"5:2", "5:5,0:20,0:30"},
		{"-100:-5", "0:5,0:20,0:30"},
		{"1,", "1,0:20,0:30"},
		{"10", ""},
		{"-11", ""},
		{"::2", ""},
		{"1:2:3:4", ""},
		{"a:b", ""},
		{"0:99999999999999999999", ""},
		{":,:,:,:", ""},
		{"...", ""},
		{",", ""},
		{"1,,2", ""},
	} {
		s, err := decode.ParseSlice(c.expr, shape)
		if c.want == "" {
			if !errors.Is(err, decode.ErrSlice) {
				t.Errorf("%q: got %v, want ErrSlice", c.expr, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.expr, err)
			continue
		}
		if s.String() != c.want {
			t.Errorf("%q: got %s, want %s", c.expr, s, c.want)
		}
		if err := s.Check(shape); err != nil {
			t.Errorf("%q: the parsed slice fails Check: %v", c.expr, err)
		}
	}
	if s, err := decode.ParseSlice("", nil); err != nil || len(s) != 0 {
		t.Errorf("scalar: %v, %v", s, err)
	}
	if _, err := decode.ParseSlice(":", nil); !errors.Is(err, decode.ErrSlice) {
		t.Errorf("scalar with an item: %v", err)
	}
}

// countingReader records every range read through it.
type countingReader struct {
	r      *bytes.Reader
	mu     sync.Mutex
	ranges [][2]int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.ranges = append(c.ranges, [2]int64{off, off + int64(len(p))})
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

func (c *countingReader) reset() { c.mu.Lock(); c.ranges = nil; c.mu.Unlock() }

// fetched sums the bytes read inside [lo, hi) and checks that no byte of
// it was read twice.
func (c *countingReader) fetched(t testing.TB, lo, hi int64) int64 {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	rs := slices.Clone(c.ranges)
	sort.Slice(rs, func(i, j int) bool { return rs[i][0] < rs[j][0] })
	var n, end int64
	for _, r := range rs {
		a, b := max(r[0], lo), min(r[1], hi)
		if a >= b {
			continue
		}
		if a < end {
			t.Errorf("bytes [%d, %d) read twice", a, min(b, end))
		}
		end = max(end, b)
		n += b - a
	}
	return n
}

func TestSliceReadsOnlyItsChunks(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const chunk = 1024
	shapes := [][]int64{{4096}, {64, 96}, {9, 17, 33}, {5, 6, 7, 8}}
	var ts []sliceTensor
	for i, sh := range shapes {
		data := make([]byte, prod(sh)*4)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		ts = append(ts, sliceTensor{name: fmt.Sprint("t", i), dt: format.F32, shape: sh, data: data})
	}
	_, raw := writeSliceFile(t, ts, encode.WithChunkSize(chunk), encode.WithAlignment(64))
	cr := &countingReader{r: bytes.NewReader(raw)}
	for _, mode := range []decode.VerifyMode{decode.VerifyLazy, decode.VerifyNone} {
		f, err := decode.NewReader(cr, int64(len(raw)), decode.WithVerify(mode))
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range ts {
			tt := f.TensorAt(i)
			for range 40 {
				sl := randomSlice(r, s.shape)
				n0, _ := tt.SliceLength(sl)
				got := make([]byte, n0)
				cr.reset()
				if r.IntN(2) == 0 {
					// Several reads in flight fetch the same chunks.
					if err := tt.ReadSliceWith(sl, got, decode.SliceOptions{Reads: 2 + r.IntN(3)}); err != nil {
						t.Fatal(err)
					}
				} else if got, err = tt.ReadSlice(sl); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, refSlice(s.data, s.shape, 4, sl)) {
					t.Fatalf("%s [%v]: wrong bytes", s.name, sl)
				}
				n := cr.fetched(t, tt.Offset, tt.Offset+tt.StoredLength)
				want, runs := expectedFetch(s.shape, sl, 4, chunk, tt.StoredLength, mode != decode.VerifyNone)
				if n != want {
					t.Errorf("%v %s [%v]: read %d bytes of the tensor, want %d", mode, s.name, sl, n, want)
				}
				if lim := int64(len(got)) + 2*chunk*runs; mode != decode.VerifyNone && n > lim {
					t.Errorf("%s [%v]: read %d bytes, over the slice's %d plus two chunks for each of %d runs", s.name, sl, n, len(got), runs)
				}
				// Outside the tensor only its trailing padding is read.
				if out := cr.fetched(t, 0, tt.Offset) + cr.fetched(t, tt.Offset+tt.StoredLength, int64(len(raw))); out >= 64 {
					t.Errorf("%s [%v]: read %d bytes outside the tensor", s.name, sl, out)
				}
			}
		}
	}
}

// expectedFetch computes, element by element, the bytes a slice read must
// fetch: the union of the chunks holding a selected element (verified), or
// just the selected bytes (unverified); and the number of contiguous runs.
func expectedFetch(shape []int64, s decode.Slice, elem, chunk, stored int64, verified bool) (n, runs int64) {
	sel := map[int64]bool{}
	var prev int64 = -2
	for _, e := range selectedElements(shape, s) {
		sel[e] = true
		if e != prev+1 {
			runs++
		}
		prev = e
	}
	if !verified {
		return int64(len(sel)) * elem, runs
	}
	chunks := map[int64]bool{}
	for e := range sel {
		chunks[e*elem/chunk] = true
		chunks[((e+1)*elem-1)/chunk] = true
	}
	for c := range chunks {
		n += min(chunk, stored-c*chunk)
	}
	return n, runs
}

func selectedElements(shape []int64, s decode.Slice) []int64 {
	var out []int64
	for flat := range prod(shape) {
		rem, ok := flat, true
		for j := len(shape) - 1; j >= 0; j-- {
			v := rem % shape[j]
			rem /= shape[j]
			if v < s[j].Start || v >= s[j].Stop {
				ok = false
			}
		}
		if ok {
			out = append(out, flat)
		}
	}
	return out
}

// mutatingReader answers reads of the data region with flipped bits at
// random, as a hostile server or a file rewritten under the reader would.
type mutatingReader struct {
	raw      []byte
	dataFrom int64
	r        *rand.Rand
	mu       sync.Mutex
}

func (m *mutatingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := bytes.NewReader(m.raw).ReadAt(p, off)
	m.mu.Lock()
	defer m.mu.Unlock()
	if off >= m.dataFrom && n > 0 && m.r.IntN(3) == 0 {
		p[m.r.IntN(n)] ^= 1 << m.r.IntN(8)
	}
	return n, err
}

func TestSliceNeverReturnsChangedBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	data := make([]byte, 48*40*4)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	shape := []int64{48, 40}
	ts := []sliceTensor{{name: "w", dt: format.F32, shape: shape, data: data}, {name: "b", dt: format.F32, shape: []int64{3}, data: make([]byte, 12)}}
	_, raw := writeSliceFile(t, ts, encode.WithChunkSize(1024), encode.WithAlignment(64))
	m := &mutatingReader{raw: raw, r: rand.New(rand.NewPCG(9, 9))}
	f, err := decode.NewReader(m, int64(len(raw)), decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		t.Fatal(err)
	}
	tt, _ := f.Tensor("w")
	m.dataFrom = tt.Offset
	var failed, ok int
	for range 400 {
		sl := randomSlice(r, shape)
		n, _ := tt.SliceLength(sl)
		got := make([]byte, n)
		err := tt.ReadSliceWith(sl, got, decode.SliceOptions{Reads: r.IntN(4)})
		if err != nil {
			if !errors.Is(err, format.ErrDigest) {
				t.Fatalf("[%v]: %v, want a digest error", sl, err)
			}
			failed++
			continue
		}
		if !bytes.Equal(got, refSlice(data, shape, 4, sl)) {
			t.Fatalf("[%v]: returned bytes that differ from the signed ones", sl)
		}
		ok++
	}
	if failed == 0 || ok == 0 {
		t.Fatalf("the mutating reader did not exercise both outcomes: %d failed, %d ok", failed, ok)
	}
}

func TestSliceChecksPadding(t *testing.T) {
	ts := []sliceTensor{{name: "a", dt: format.U8, shape: []int64{10}, data: bytes.Repeat([]byte{1}, 10)}, {name: "b", dt: format.U8, shape: []int64{3}, data: []byte{1, 2, 3}}}
	_, raw := writeSliceFile(t, ts, encode.WithChunkSize(1024), encode.WithAlignment(64))
	f, err := decode.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.Tensor("a")
	bad := slices.Clone(raw)
	bad[a.Offset+a.StoredLength+3] = 7
	g, err := decode.NewReader(bytes.NewReader(bad), int64(len(bad)), decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		t.Fatal(err)
	}
	ga, _ := g.Tensor("a")
	if _, err := ga.ReadSlice(decode.Slice{{Start: 0, Stop: 2}}); !errors.Is(err, format.ErrPadding) {
		t.Fatalf("got %v, want a padding error", err)
	}
}

// TestSliceVerifyOption: SliceOptions.Verify checks a slice's chunks and
// padding, raw or compressed, on a File opened without a verify mode; without
// it such a File hands out what it reads.
func TestSliceVerifyOption(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	data := make([]byte, 63*31*4) // padded to the alignment of 64
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	shape := []int64{63, 31}
	ts := []sliceTensor{
		{name: "raw", dt: format.F32, shape: shape, data: data},
		{name: "z", dt: format.F32, shape: shape, data: data, zstd: true},
		{name: "tail", dt: format.U8, shape: []int64{5}, data: []byte{1, 2, 3, 4, 5}},
	}
	_, raw := writeSliceFile(t, ts, encode.WithChunkSize(1024), encode.WithAlignment(64))
	clean, err := decode.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	sl := decode.Slice{{Start: 3, Stop: 40}, {Start: 5, Stop: 9}}
	for _, name := range []string{"raw", "z"} {
		tt, _ := clean.Tensor(name)
		n, _ := tt.SliceLength(sl)
		got := make([]byte, n)
		if err := tt.ReadSliceWith(sl, got, decode.SliceOptions{Verify: true}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, refSlice(data, shape, 4, sl)) {
			t.Fatalf("%s: verified slice differs from the data", name)
		}
	}

	for _, c := range []struct {
		name string
		at   func(tt *decode.Tensor) int64
		want error
	}{
		{"raw", func(tt *decode.Tensor) int64 { return tt.Offset + 10*31*4 + 6*4 }, format.ErrDigest},
		{"z", func(tt *decode.Tensor) int64 { return tt.Offset + tt.StoredLength/2 }, format.ErrDigest},
		{"raw", func(tt *decode.Tensor) int64 { return tt.Offset + tt.StoredLength + 1 }, format.ErrPadding},
	} {
		tt, _ := clean.Tensor(c.name)
		bad := slices.Clone(raw)
		bad[c.at(tt)] ^= 0x40
		f, err := decode.NewReader(bytes.NewReader(bad), int64(len(bad)))
		if err != nil {
			t.Fatal(err)
		}
		bt, _ := f.Tensor(c.name)
		n, _ := bt.SliceLength(sl)
		got := make([]byte, n)
		if err := bt.ReadSliceWith(sl, got, decode.SliceOptions{Verify: true, Reads: 2}); !errors.Is(err, c.want) {
			t.Errorf("%s, byte %d changed: got %v, want %v", c.name, c.at(tt), err, c.want)
		}
		if c.name == "raw" {
			// Unverified, the same read succeeds: the option is what checks.
			if err := bt.ReadSliceWith(sl, got, decode.SliceOptions{}); err != nil {
				t.Errorf("%s unverified: %v", c.name, err)
			}
		}
	}
}
