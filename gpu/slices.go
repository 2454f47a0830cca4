package gpu

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/tp"
)

// sliceAlign is the alignment of each slice inside a shared allocation:
// what cuMemAlloc guarantees, and enough for any element type.
const sliceAlign = 256

// A piece is one box of a part's slice, staged and copied as a unit: its
// dense bytes are the part's bytes [off, off+n).
type piece struct {
	part  int
	slice decode.Slice
	off   int64
	n     int64
}

// planPart is one tensor of the plan as the loader sees it.
type planPart struct {
	tp.Part
	t     *decode.Tensor
	n     int64 // the slice's bytes
	alloc int   // index into the model's allocations, or -1 when empty
	off   int64 // offset inside that allocation
}

// LoadPlan copies one tensor-parallel rank's share of src to the device:
// for every tensor of plan (tp.NewPlan), only its slice, dense and row-major,
// as tp.Plan.Read would return it. src is a *decode.File or a sharded model
// (shard.Model); plan must have been made from it.
//
// Only the chunks each slice touches are read, from whatever source src
// reads (a local file, HTTP, S3), into pinned staging buffers, and every one
// of them is hashed there against the header before the buffer is copied to
// the device, whatever verify mode the files were opened with: the bytes on
// the device are the bytes that were checked. Each tensor's padding is
// checked first. A slice larger than the window size (WithWindowSize, or the
// chunk size when that is larger) is staged in boxes of at most that size,
// so pinned memory stays at one window per worker; a chunk cut by the edge
// of a box is read once for each box it serves. A compressed tensor is
// decoded whole from a checked copy and then sliced.
//
// The options of Load apply but WithPath (slices always take the buffered
// path; another choice is reported in Stats.Note) and WithHashers, which
// here sets the chunk reads each worker keeps in flight, divided among the
// workers (WithWorkers, default 4). WithTensors limits the load to those
// tensors of the plan. Stats.Times.Read covers reading and hashing the
// slices, which happen together. Tensor.Shape is the slice's shape and Tensor.Slice the
// slice; by default one allocation holds every slice, each at a multiple of
// 256 bytes.
func LoadPlan(ctx context.Context, src tp.Source, plan *tp.Plan, opts ...Option) (_ *Model, err error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if plan == nil || src == nil {
		return nil, errors.New("gpu: LoadPlan needs a source and a plan")
	}
	start := time.Now()
	parts, err := planParts(src, plan, cfg)
	if err != nil {
		return nil, err
	}
	allocs, err := layoutParts(parts, cfg.perTensor)
	if err != nil {
		return nil, err
	}
	var ps []piece
	var total, largest int64
	for i := range parts {
		pt := &parts[i]
		var ok bool
		if total, ok = addOK(total, pt.n); !ok {
			return nil, fmt.Errorf("gpu: slices total over 2^63 bytes: %w", format.ErrLimit)
		}
		if pt.n == 0 {
			continue
		}
		if pt.t.Compression != format.None {
			// Decoded once into host memory, then copied through the
			// pinned buffers in pieces of their size.
			continue
		}
		size := max(cfg.window, pt.t.ChunkSize())
		splitSlice(pt.Slice, int64(pt.t.DType.Size()), size, func(s decode.Slice, off, n int64) {
			ps = append(ps, piece{part: i, slice: s, off: off, n: n})
			largest = max(largest, n)
		})
	}
	for _, pt := range parts {
		if pt.t.Compression != format.None {
			largest = max(largest, min(pt.n, cfg.window))
		}
	}

	m, err := cfg.newModel(len(parts))
	if err != nil {
		return nil, err
	}
	dev := m.dev
	m.Stats.Path = Buffered
	if cfg.path == Mapped || cfg.path == Direct {
		m.Stats.Note = "tensor-parallel slices are read into pinned buffers"
	}
	var lost atomic.Bool // a copy may still write device memory: do not free it
	defer func() {
		if err != nil {
			if lost.Load() {
				m.allocs = nil
			}
			_ = m.Close()
		}
	}()
	m.Stats.Setup = time.Since(start)

	unbind, err := dev.bind()
	if err != nil {
		return nil, err
	}
	defer unbind()

	start = time.Now()
	workers := max(1, min(cfg.workersOr(4), len(ps)))
	ws := make([]*sliceStager, 0, workers)
	defer func() {
		if lost.Load() {
			return // the pinned buffers may still be read by a copy
		}
		for _, w := range ws {
			w.close(dev)
		}
	}()
	if largest > 0 {
		for range workers {
			w := &sliceStager{}
			ws = append(ws, w)
			if w.buf, err = dev.hostAlloc(largest); err != nil {
				return nil, fmt.Errorf("gpu: allocating %d pinned bytes: %w", largest, err)
			}
			if w.ev, err = dev.newEvent(); err != nil {
				return nil, err
			}
			w.hasEv = true
		}
	}
	m.Stats.Times.Staging = time.Since(start)
	start = time.Now()

	for _, n := range allocs {
		ptr, err := dev.alloc(n)
		if err != nil {
			return nil, fmt.Errorf("gpu: allocating %d bytes: %w", n, err)
		}
		m.allocs = append(m.allocs, ptr)
		m.Allocations = append(m.Allocations, Allocation{Ptr: DevicePtr(ptr), Size: n})
	}
	streams := []stream{stream(cfg.stream)}
	if cfg.stream == 0 {
		streams = streams[:0]
		for range min(cfg.streams, max(1, len(ws))) {
			s, err := dev.newStream()
			if err != nil {
				return nil, err
			}
			streams = append(streams, s)
			defer func() { _ = dev.destroyStream(s) }()
		}
	}
	for i, w := range ws {
		w.s = streams[i%len(streams)]
	}

	var prog *progress
	if cfg.progress != nil {
		prog = &progress{fn: cfg.progress, total: total}
		prog.add(0)
	}
	tm := new(timers)
	reads := max(1, min(64, cfg.hashers/max(1, len(ws))))
	dst := func(pt *planPart) devPtr { return m.allocs[pt.alloc] + devPtr(pt.off) }

	if len(ps) > 0 {
		lctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		var next atomic.Int64
		var wg sync.WaitGroup
		for _, w := range ws {
			wg.Go(func() {
				unbind, err := dev.bind()
				if err != nil {
					cancel(err)
					return
				}
				defer unbind()
				for lctx.Err() == nil {
					i := next.Add(1) - 1
					if i >= int64(len(ps)) {
						return
					}
					p := &ps[i]
					pt := &parts[p.part]
					err := w.put(dev, tm, &lost, dst(pt)+devPtr(p.off), p.n, func(b []byte) error {
						t0 := time.Now()
						defer tm.read.add(t0)
						if err := pt.t.ReadSliceWith(p.slice, b, decode.SliceOptions{Verify: true, Reads: reads}); err != nil {
							return fmt.Errorf("gpu: tensor %q, slice [%v]: %w", pt.Name, p.slice, err)
						}
						return nil
					})
					if err != nil {
						cancel(err)
						return
					}
					prog.add(p.n)
				}
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if err := context.Cause(lctx); err != nil {
			return nil, err // a worker's
		}
	}

	// Compressed tensors, one at a time on this goroutine.
	for i := range parts {
		pt := &parts[i]
		if pt.n == 0 || pt.t.Compression == format.None {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		t0 := time.Now()
		full := make([]byte, pt.n)
		err := pt.t.ReadSliceWith(pt.Slice, full, decode.SliceOptions{Verify: true})
		tm.decompress.add(t0)
		if err != nil {
			return nil, fmt.Errorf("gpu: tensor %q, slice [%v]: %w", pt.Name, pt.Slice, err)
		}
		w := ws[0]
		for off := int64(0); off < pt.n; off += int64(len(w.buf)) {
			n := min(int64(len(w.buf)), pt.n-off)
			if err := w.put(dev, tm, &lost, dst(pt)+devPtr(off), n, func(b []byte) error {
				copy(b, full[off:off+n])
				return nil
			}); err != nil {
				return nil, err
			}
		}
		prog.add(pt.n)
	}
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}

	for i := range parts {
		pt := &parts[i]
		lt := Tensor{
			Name: pt.Name, DType: pt.t.DType, Shape: pt.Slice.Dims(), Size: pt.n, Offset: pt.off,
			FileOffset: pt.t.Offset, StoredLength: pt.t.StoredLength, Compression: pt.t.Compression,
			Slice: slices.Clone(pt.Slice),
		}
		if pt.alloc >= 0 {
			lt.Ptr = DevicePtr(m.allocs[pt.alloc]) + DevicePtr(pt.off)
		}
		m.byName[pt.Name] = len(m.Tensors)
		m.Tensors = append(m.Tensors, lt)
	}
	m.Stats.Bytes = total
	m.Stats.Windows = len(ps)
	m.Stats.Verified = true
	m.Stats.Load = time.Since(start)
	staging := m.Stats.Times.Staging
	m.Stats.Times = tm.times()
	m.Stats.Times.Staging = staging
	return m, nil
}

// planParts looks every tensor of the plan up in src (those named by
// WithTensors only, if given) and sizes its slice.
func planParts(src tp.Source, plan *tp.Plan, cfg *config) ([]planPart, error) {
	var want map[string]bool
	if cfg.tensors != nil {
		want = make(map[string]bool, len(cfg.tensors))
		for _, n := range cfg.tensors {
			want[n] = true
		}
	}
	parts := make([]planPart, 0, len(plan.Parts))
	seen := make(map[string]bool, len(plan.Parts))
	for _, p := range plan.Parts {
		if want != nil && !want[p.Name] {
			continue
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("gpu: tensor %q is twice in the plan", p.Name)
		}
		seen[p.Name] = true
		t, err := src.Tensor(p.Name)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(t.Shape, p.Shape) {
			return nil, fmt.Errorf("gpu: tensor %q has shape %v in the source and %v in the plan: %w", p.Name, t.Shape, p.Shape, tp.ErrPlan)
		}
		n, err := t.SliceLength(p.Slice)
		if err != nil {
			return nil, fmt.Errorf("gpu: tensor %q: %w", p.Name, err)
		}
		if t.Compression != format.None && t.Length > cfg.maxDecompressed {
			return nil, format.Errorf(format.ErrLimit, "limits", t.Offset, "length",
				fmt.Sprintf("tensor %q decodes to %d bytes, over the limit of %d", t.Name, t.Length, cfg.maxDecompressed))
		}
		parts = append(parts, planPart{Part: p, t: t, n: n, alloc: -1})
	}
	for n := range want {
		if !seen[n] {
			return nil, fmt.Errorf("gpu: tensor %q is not in the plan: %w", n, format.ErrNotFound)
		}
	}
	return parts, nil
}

// layoutParts places the non-empty slices: each in its own allocation, or
// all in one at multiples of sliceAlign. It returns the allocation sizes.
func layoutParts(parts []planPart, perTensor bool) ([]int64, error) {
	var allocs []int64
	var end int64
	for i := range parts {
		pt := &parts[i]
		if pt.n == 0 {
			continue
		}
		if perTensor {
			pt.alloc = len(allocs)
			allocs = append(allocs, pt.n)
			continue
		}
		off, ok := alignUp(end, sliceAlign)
		if !ok {
			return nil, fmt.Errorf("gpu: slices total over 2^63 bytes: %w", format.ErrLimit)
		}
		if end, ok = addOK(off, pt.n); !ok {
			return nil, fmt.Errorf("gpu: slices total over 2^63 bytes: %w", format.ErrLimit)
		}
		pt.alloc, pt.off = 0, off
	}
	if !perTensor && end > 0 {
		allocs = append(allocs, end)
	}
	return allocs, nil
}

// splitSlice cuts s, a box of a tensor of elem-byte elements, into boxes of
// at most size bytes (size >= elem) whose dense bytes, in order, are s's:
// emit gets each box with its offset and length in s's dense bytes. The
// dimensions outside the first one whose single index fits in size are
// taken one index at a time; that one is taken in groups of indices.
func splitSlice(s decode.Slice, elem, size int64, emit func(box decode.Slice, off, n int64)) {
	dims := s.Dims()
	inner := make([]int64, len(dims)+1) // inner[k]: bytes of one index of dimension k
	inner[len(dims)] = elem
	for k := len(dims) - 1; k >= 0; k-- {
		if dims[k] == 0 {
			return
		}
		// The slice's length was checked against the tensor, which the
		// header bounds: these products cannot overflow.
		inner[k] = inner[k+1] * dims[k]
	}
	// inner[k] is one index of dimension k-1; find the outermost k with
	// inner[k+1] <= size.
	k := 0
	for k < len(dims) && inner[k+1] > size {
		k++
	}
	if k == len(dims) {
		emit(slices.Clone(s), 0, inner[0])
		return
	}
	group := size / inner[k+1]
	box := slices.Clone(s)
	for i := range box {
		box[i].Index = false
	}
	var off int64
	var walk func(d int)
	walk = func(d int) {
		if d == k {
			for a := s[k].Start; a < s[k].Stop; a += group {
				b := min(a+group, s[k].Stop)
				out := slices.Clone(box)
				out[k] = decode.Range{Start: a, Stop: b}
				n := (b - a) * inner[k+1]
				emit(out, off, n)
				off += n
			}
			return
		}
		for i := s[d].Start; i < s[d].Stop; i++ {
			box[d] = decode.Range{Start: i, Stop: i + 1}
			walk(d + 1)
		}
	}
	walk(0)
}

// A sliceStager owns one pinned buffer and the event that says when the copy out
// of it has completed.
type sliceStager struct {
	buf   []byte
	ev    event
	hasEv bool
	s     stream
}

// put fills the first n bytes of the buffer, copies them to dst and waits
// for the copy. When the wait fails the copy may still be pending: the
// stream is synchronised, and if that fails too, lost is set so that neither
// the buffer nor the device memory is released under the copy.
func (w *sliceStager) put(dev device, tm *timers, lost *atomic.Bool, dst devPtr, n int64, fill func([]byte) error) error {
	b := w.buf[:n]
	if err := fill(b); err != nil {
		return err
	}
	t0 := time.Now()
	if err := dev.copyAsync(dst, b, w.s); err != nil {
		tm.copyQueue.add(t0)
		return fmt.Errorf("gpu: queueing a copy of %d bytes: %w", n, err)
	}
	err := dev.record(w.ev, w.s)
	tm.copyQueue.add(t0)
	t0 = time.Now()
	if err == nil {
		err = dev.wait(w.ev)
	}
	if err != nil {
		if serr := dev.syncStream(w.s); serr != nil {
			lost.Store(true)
		}
		tm.copyWait.add(t0)
		return fmt.Errorf("gpu: waiting for a copy: %w", err)
	}
	tm.copyWait.add(t0)
	return nil
}

func (w *sliceStager) close(dev device) {
	if w.hasEv {
		_ = dev.destroyEvent(w.ev)
	}
	if w.buf != nil {
		_ = dev.hostFree(w.buf)
	}
}
