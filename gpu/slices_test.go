package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/shard"
	"github.com/safeweights/safeweights/tp"
)

// tpTensor is one tensor of the tensor-parallel test model.
type tpTensor struct {
	name  string
	dt    format.DType
	shape []int64
	zstd  bool
}

var tpModel = []tpTensor{
	{"embed", format.F32, []int64{97, 64}, false},
	{"attn.qkv", format.BF16, []int64{64, 3, 40}, false},
	{"attn.out", format.F16, []int64{120, 64}, false},
	{"norm", format.F32, []int64{60}, false}, // padded to the alignment
	{"mlp.up", format.F32, []int64{64, 150}, true},
	{"empty", format.F32, []int64{0, 8}, false},
	{"scale", format.F64, []int64{}, false},
}

// writeTPFile writes tpModel with small chunks (so that slices cut chunks)
// and returns its path and bytes.
func writeTPFile(t *testing.T, chunk int64) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tp.swt")
	w, err := encode.Create(path, encode.WithChunkSize(int(chunk)), encode.WithAlignment(64))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, tt := range tpModel {
		n, _ := format.NumElements(tt.shape)
		b := make([]byte, int64(n)*int64(tt.dt.Size()))
		for i := range b {
			b[i] = byte(r.Uint32() & 0x3F)
		}
		var opts []encode.TensorOption
		if tt.zstd {
			opts = append(opts, encode.Compress(1))
		}
		if err := w.Add(tt.name, tt.dt, tt.shape, b, opts...); err != nil {
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

// openTPPlan writes the test model and opens it with rank's plan of world.
func openTPPlan(t *testing.T, rank, world int, layout tp.Layout) (*decode.File, *tp.Plan) {
	t.Helper()
	path, _ := writeTPFile(t, 1024)
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	plan, err := tp.NewPlan(f, rank, world, layout)
	if err != nil {
		t.Fatal(err)
	}
	return f, plan
}

// deviceBytes copies every loaded tensor back from the fake.
func deviceBytes(t *testing.T, f *fakeDev, m *Model) map[string][]byte {
	t.Helper()
	unbind, err := f.bind()
	if err != nil {
		t.Fatal(err)
	}
	defer unbind()
	out := map[string][]byte{}
	for _, lt := range m.Tensors {
		b := make([]byte, lt.Size)
		if lt.Size > 0 {
			if err := f.copyToHost(b, devPtr(lt.Ptr)); err != nil {
				t.Fatal(err)
			}
		}
		out[lt.Name] = b
	}
	return out
}

// TestLoadPlan: for every rank of worlds of 1, 3 and 8, row- and
// column-parallel, the device holds exactly what tp.Plan.Read returns, and
// the fake saw no misuse.
func TestLoadPlan(t *testing.T) {
	path, _ := writeTPFile(t, 1024)
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	layouts := map[string]tp.Layout{"rows": tp.Rows, "columns": tp.Columns}
	for _, world := range []int{1, 3, 8} {
		for lname, layout := range layouts {
			for rank := range world {
				for _, perTensor := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%d-of-%d/per-tensor=%v", lname, rank, world, perTensor), func(t *testing.T) {
						plan, err := tp.NewPlan(f, rank, world, layout)
						if err != nil {
							t.Fatal(err)
						}
						want, err := plan.Read(context.Background(), f)
						if err != nil {
							t.Fatal(err)
						}
						dev := newFakeDev()
						opts := []Option{withFake(dev), WithWindowSize(4096), WithWorkers(3), WithStreams(2)}
						if perTensor {
							opts = append(opts, WithAllocPerTensor())
						}
						m, err := LoadPlan(context.Background(), f, plan, opts...)
						if err != nil {
							t.Fatal(err)
						}
						if len(m.Tensors) != len(plan.Parts) {
							t.Fatalf("%d tensors loaded, want %d", len(m.Tensors), len(plan.Parts))
						}
						got := deviceBytes(t, dev, m)
						var total int64
						for i, lt := range m.Tensors {
							p := plan.Parts[i]
							if lt.Name != p.Name || !slices.Equal(lt.Shape, p.Slice.Dims()) || lt.Slice.String() != p.Slice.String() {
								t.Errorf("tensor %d: %s %v [%v], want %s %v [%v]", i, lt.Name, lt.Shape, lt.Slice, p.Name, p.Slice.Dims(), p.Slice)
							}
							if !bytes.Equal(got[lt.Name], want[lt.Name]) {
								t.Errorf("tensor %q: device bytes differ from Plan.Read", lt.Name)
							}
							if !perTensor && lt.Offset%sliceAlign != 0 {
								t.Errorf("tensor %q at offset %d, not a multiple of %d", lt.Name, lt.Offset, sliceAlign)
							}
							total += lt.Size
						}
						if m.Stats.Bytes != total || !m.Stats.Verified || m.Stats.Path != Buffered {
							t.Errorf("stats %+v: want %d bytes, verified, buffered", m.Stats, total)
						}
						if err := m.CheckSource(context.Background(), f); err != nil {
							t.Fatal(err)
						}
						live := len(m.Allocations)
						dev.assertClean(t, live)
						if err := m.Close(); err != nil {
							t.Fatal(err)
						}
						dev.assertClean(t, 0)
					})
				}
			}
		}
	}
}

// TestLoadPlanChecksDigests: a file opened without any verify mode still
// has every chunk a slice touches checked; a rank whose slices do not touch
// the changed chunk loads.
func TestLoadPlanChecksDigests(t *testing.T) {
	_, raw := writeTPFile(t, 1024)
	clean, err := decode.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"embed", "mlp.up"} {
		t.Run(name, func(t *testing.T) {
			tt, _ := clean.Tensor(name)
			bad := slices.Clone(raw)
			bad[tt.Offset+tt.StoredLength-3] ^= 0x10 // in the last rows
			f, err := decode.NewReader(bytes.NewReader(bad), int64(len(bad)))
			if err != nil {
				t.Fatal(err)
			}
			var failed, loaded int
			for rank := range 4 {
				plan, err := tp.NewPlan(f, rank, 4, tp.Rows)
				if err != nil {
					t.Fatal(err)
				}
				dev := newFakeDev()
				m, err := LoadPlan(context.Background(), f, plan, withFake(dev), WithWindowSize(4096))
				if err != nil {
					if !errors.Is(err, format.ErrDigest) {
						t.Fatalf("rank %d: %v, want a digest error", rank, err)
					}
					failed++
					dev.assertClean(t, 0)
					continue
				}
				loaded++
				if err := m.CheckSource(context.Background(), clean); err != nil {
					t.Errorf("rank %d: %v", rank, err)
				}
				m.Close()
				dev.assertClean(t, 0)
			}
			// Row-parallel, the last rank's rows hold the byte; a
			// compressed tensor is decoded whole, so every rank fails.
			if name == "embed" && (failed != 1 || loaded != 3) {
				t.Errorf("%d ranks failed and %d loaded, want 1 and 3", failed, loaded)
			}
			if name == "mlp.up" && failed != 4 {
				t.Errorf("%d ranks failed, want 4", failed)
			}
		})
	}

	// The padding after a tensor is checked too.
	tt, _ := clean.Tensor("norm")
	bad := slices.Clone(raw)
	bad[tt.Offset+tt.StoredLength+5] = 1
	f, err := decode.NewReader(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := tp.NewPlan(f, 0, 2, tp.Columns)
	if err != nil {
		t.Fatal(err)
	}
	dev := newFakeDev()
	if _, err := LoadPlan(context.Background(), f, plan, withFake(dev)); !errors.Is(err, format.ErrPadding) {
		t.Fatalf("got %v, want a padding error", err)
	}
	dev.assertClean(t, 0)
}

// flipReader returns the file's bytes, except that it changes a random byte
// in [from, to) of a read that overlaps it with probability 1/40: a source
// whose tensor bytes change between reads.
type flipReader struct {
	mu       sync.Mutex
	raw      []byte
	from, to int64
	r        *rand.Rand
}

func (f *flipReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(f.raw)) {
		return 0, nil
	}
	n := copy(p, f.raw[off:])
	f.mu.Lock()
	defer f.mu.Unlock()
	lo, hi := max(f.from, off), min(f.to, off+int64(n))
	if lo < hi && f.r.IntN(40) == 0 {
		p[lo-off+f.r.Int64N(hi-lo)] ^= 0x01
	}
	return n, nil
}

// TestLoadPlanChangingSource: whatever the source returns on each read, the
// device holds either the signed bytes or nothing.
func TestLoadPlanChangingSource(t *testing.T) {
	_, raw := writeTPFile(t, 1024)
	clean, err := decode.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := clean.Tensor("embed")
	last := clean.TensorAt(clean.NumTensors() - 1)
	var failed, loaded int
	for seed := range uint64(40) {
		fr := &flipReader{raw: raw, from: first.Offset, to: last.Offset + last.StoredLength, r: rand.New(rand.NewPCG(seed, 7))}
		f, err := decode.NewReader(fr, int64(len(raw)))
		if err != nil {
			t.Fatal(err)
		}
		plan, err := tp.NewPlan(f, int(seed%3), 3, tp.Columns)
		if err != nil {
			t.Fatal(err)
		}
		dev := newFakeDev()
		m, err := LoadPlan(context.Background(), f, plan, withFake(dev), WithWindowSize(4096), WithWorkers(2))
		if err != nil {
			if !errors.Is(err, format.ErrDigest) && !errors.Is(err, format.ErrPadding) {
				t.Fatalf("seed %d: %v, want a digest or padding error", seed, err)
			}
			failed++
			dev.assertClean(t, 0)
			continue
		}
		loaded++
		if err := m.CheckSource(context.Background(), clean); err != nil {
			t.Fatalf("seed %d: the device holds bytes that were not signed: %v", seed, err)
		}
		m.Close()
		dev.assertClean(t, 0)
	}
	if failed == 0 || loaded == 0 {
		t.Fatalf("the changing source did not exercise both outcomes: %d failed, %d loaded", failed, loaded)
	}
}

// countingReader counts the bytes read at or past from.
type countingReader struct {
	raw  []byte
	from int64
	n    atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(c.raw)) {
		return 0, nil
	}
	n := copy(p, c.raw[off:])
	if off+int64(n) > c.from {
		c.n.Add(off + int64(n) - max(off, c.from))
	}
	return n, nil
}

// TestLoadPlanReadsItsShare: row-parallel over 8 ranks, each rank reads its
// eighth of the tensor plus at most two chunks for each box it was staged in.
func TestLoadPlanReadsItsShare(t *testing.T) {
	const chunk = 4096
	path := filepath.Join(t.TempDir(), "big.swt")
	w, err := encode.Create(path, encode.WithChunkSize(chunk))
	if err != nil {
		t.Fatal(err)
	}
	shape := []int64{512, 512}
	data := make([]byte, 512*512*4)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := w.Add("w", format.F32, shape, data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, window := range []int64{16 << 10, 1 << 20} {
		for rank := range 8 {
			cr := &countingReader{raw: raw}
			f, err := decode.NewReader(cr, int64(len(raw)))
			if err != nil {
				t.Fatal(err)
			}
			tt, _ := f.Tensor("w")
			cr.from = tt.Offset
			cr.n.Store(0)
			plan, err := tp.NewPlan(f, rank, 8, tp.Rows)
			if err != nil {
				t.Fatal(err)
			}
			dev := newFakeDev()
			m, err := LoadPlan(context.Background(), f, plan, withFake(dev), WithWindowSize(window))
			if err != nil {
				t.Fatal(err)
			}
			share := tt.Length / 8
			bound := share + 2*chunk*int64(m.Stats.Windows)
			if got := cr.n.Load(); got < share || got > bound {
				t.Errorf("window %d, rank %d: read %d bytes in %d boxes; want %d to %d", window, rank, got, m.Stats.Windows, share, bound)
			}
			if window == 1<<20 && m.Stats.Windows != 1 {
				t.Errorf("rank %d: %d boxes for a slice of %d bytes in windows of %d", rank, m.Stats.Windows, share, window)
			}
			m.Close()
			dev.assertClean(t, 0)
		}
	}
}

// TestLoadPlanDeviceFailures: a driver call failing anywhere ends in the
// driver's error and nothing left behind, or in a correct load.
func TestLoadPlanDeviceFailures(t *testing.T) {
	f, plan := openTPPlan(t, 1, 3, tp.Columns)
	want, err := plan.Read(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"bind", "alloc", "hostAlloc", "newEvent", "newStream", "copyAsync", "record", "wait", "syncStream"} {
		for _, n := range []int{1, 2, 5} {
			t.Run(fmt.Sprintf("%s#%d", op, n), func(t *testing.T) {
				dev := newFakeDev()
				dev.failAt[op] = n
				m, err := LoadPlan(context.Background(), f, plan, withFake(dev), WithWindowSize(4096), WithWorkers(2), WithAllocPerTensor())
				if err == nil {
					defer m.Close()
					if dev.calls[op] >= n && op != "syncStream" {
						t.Fatalf("load succeeded though %s #%d failed", op, n)
					}
					for name, b := range deviceBytes(t, dev, m) {
						if !bytes.Equal(b, want[name]) {
							t.Errorf("tensor %q differs", name)
						}
					}
					return
				}
				if !errors.Is(err, errFake) {
					t.Fatalf("got %v, want the device's error", err)
				}
				if op == "wait" || op == "record" {
					// The stream was synchronised: nothing is pending.
					dev.assertClean(t, 0)
					return
				}
				if op == "syncStream" {
					return // never called unless a wait failed
				}
				dev.assertClean(t, 0)
			})
		}
	}
}

// TestLoadPlanFailedWaitKeepsMemory: when a copy's wait and the stream's
// synchronisation both fail, the copy may still be running: its pinned
// buffer and device memory are not freed under it.
func TestLoadPlanFailedWaitKeepsMemory(t *testing.T) {
	f, plan := openTPPlan(t, 0, 2, tp.Rows)
	dev := newFakeDev()
	dev.failAt["wait"] = 2
	dev.failAt["syncStream"] = 1
	if _, err := LoadPlan(context.Background(), f, plan, withFake(dev), WithWindowSize(4096), WithWorkers(1), WithStreams(1)); !errors.Is(err, errFake) {
		t.Fatalf("got %v, want the device's error", err)
	}
	dev.mu.Lock()
	defer dev.mu.Unlock()
	for _, v := range dev.violations {
		t.Error("fake device:", v)
	}
	if len(dev.allocs) == 0 || len(dev.hosts) == 0 {
		t.Errorf("%d allocations and %d pinned buffers left: freed under a pending copy", len(dev.allocs), len(dev.hosts))
	}
}

// TestLoadPlanOptions: WithTensors picks tensors of the plan, and refuses a
// name outside it; a plan that does not fit the source is refused; a
// cancelled context stops the load.
func TestLoadPlanOptions(t *testing.T) {
	f, plan := openTPPlan(t, 0, 2, tp.Rows)
	dev := newFakeDev()
	m, err := LoadPlan(context.Background(), f, plan, withFake(dev), WithTensors("norm", "embed"), WithPath(Mapped))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 2 || m.Tensors[0].Name != "embed" || m.Tensors[1].Name != "norm" || m.Stats.Note == "" {
		t.Errorf("loaded %+v with note %q: want embed and norm, in plan order, and a note on the path", m.Tensors, m.Stats.Note)
	}
	m.Close()
	if _, err := LoadPlan(context.Background(), f, plan, withFake(newFakeDev()), WithTensors("nope")); !errors.Is(err, format.ErrNotFound) {
		t.Errorf("unknown tensor: got %v", err)
	}
	other := *plan
	other.Parts = slices.Clone(plan.Parts)
	other.Parts[0].Shape = []int64{1, 2}
	if _, err := LoadPlan(context.Background(), f, &other, withFake(newFakeDev())); !errors.Is(err, tp.ErrPlan) {
		t.Errorf("plan of another shape: got %v", err)
	}
	other.Parts[0] = plan.Parts[0]
	other.Parts[0].Slice = decode.Slice{{Start: 0, Stop: 1000}, {Start: 0, Stop: 64}}
	if _, err := LoadPlan(context.Background(), f, &other, withFake(newFakeDev())); !errors.Is(err, decode.ErrSlice) {
		t.Errorf("slice outside the tensor: got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dev = newFakeDev()
	if _, err := LoadPlan(ctx, f, plan, withFake(dev)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
	dev.assertClean(t, 0)
}

// TestSplitSlice: the boxes of a slice, in order, are its bytes, each at
// most the size asked for.
func TestSplitSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	for range 300 {
		rank := 1 + r.IntN(4)
		shape := make([]int64, rank)
		n := int64(1)
		for i := range shape {
			shape[i] = 1 + r.Int64N(9)
			n *= shape[i]
		}
		elem := int64([]int{1, 2, 4, 8}[r.IntN(4)])
		full := make([]byte, n*elem)
		for i := range full {
			full[i] = byte(r.Uint32())
		}
		s := make(decode.Slice, rank)
		for i, d := range shape {
			a := r.Int64N(d)
			s[i] = decode.Range{Start: a, Stop: a + 1 + r.Int64N(d-a)}
		}
		size := elem * (1 + r.Int64N(40))
		want := cut(full, shape, elem, s)
		var got []byte
		var next int64
		splitSlice(s, elem, size, func(box decode.Slice, off, n int64) {
			if off != next || n > size || n <= 0 {
				t.Fatalf("[%v] in %d: box [%v] at %d of %d bytes, want at %d and at most %d", s, size, box, off, n, next, size)
			}
			b := cut(full, shape, elem, box)
			if int64(len(b)) != n {
				t.Fatalf("box [%v]: %d bytes, said %d", box, len(b), n)
			}
			got = append(got, b...)
			next += n
		})
		if !bytes.Equal(got, want) {
			t.Fatalf("[%v] of %v in boxes of %d: bytes differ", s, shape, size)
		}
	}
}

// cut is a slice's bytes, element by element.
func cut(full []byte, shape []int64, elem int64, s decode.Slice) []byte {
	var out []byte
	idx := make([]int64, len(shape))
	for i := range s {
		idx[i] = s[i].Start
	}
	for {
		flat := int64(0)
		for i := range shape {
			flat = flat*shape[i] + idx[i]
		}
		out = append(out, full[flat*elem:(flat+1)*elem]...)
		j := len(shape) - 1
		for ; j >= 0; j-- {
			if idx[j]++; idx[j] < s[j].Stop {
				break
			}
			idx[j] = s[j].Start
		}
		if j < 0 {
			return out
		}
	}
}

// TestLoadPlanShardedModel: a rank's slices of a model split across shard
// files of different chunk sizes, read through shard.Model.
func TestLoadPlanShardedModel(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(5, 6))
	var paths []string
	for s, part := range [][]tpTensor{tpModel[:3], tpModel[3:]} {
		path := filepath.Join(dir, fmt.Sprintf("model-%d.swt", s))
		w, err := encode.Create(path, encode.WithChunkSize(1024<<s), encode.WithAlignment(64))
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range part {
			n, _ := format.NumElements(tt.shape)
			b := make([]byte, int64(n)*int64(tt.dt.Size()))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			if err := w.Add(tt.name, tt.dt, tt.shape, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	ix, err := shard.Build("test/tp", paths)
	if err != nil {
		t.Fatal(err)
	}
	idx := filepath.Join(dir, "model.swtidx")
	if err := shard.WriteFile(idx, ix); err != nil {
		t.Fatal(err)
	}
	model, err := shard.Open(context.Background(), idx, shard.LocalOpener, nil, shard.UnsafeSkipSignature())
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	for rank := range 3 {
		plan, err := tp.NewPlan(model, rank, 3, tp.Columns)
		if err != nil {
			t.Fatal(err)
		}
		want, err := plan.Read(context.Background(), model)
		if err != nil {
			t.Fatal(err)
		}
		dev := newFakeDev()
		m, err := LoadPlan(context.Background(), model, plan, withFake(dev), WithWindowSize(4096))
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range deviceBytes(t, dev, m) {
			if !bytes.Equal(b, want[name]) {
				t.Errorf("rank %d, tensor %q: device bytes differ from Plan.Read", rank, name)
			}
		}
		if err := m.CheckSource(context.Background(), model); err != nil {
			t.Fatal(err)
		}
		m.Close()
		dev.assertClean(t, 0)
	}
}
