package decode

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/safeweights/safeweights/format"
)

// VerifyOptions choose what Verify checks and how.
type VerifyOptions struct {
	// Tensors names the tensors to check; empty means all of them, and then
	// the padding between tensors is checked too (R25).
	Tensors []string
	// Progress, if set, is called with the stored bytes checked so far and
	// the total, from one goroutine at a time.
	Progress func(done, total int64)
	// Workers is the number of hashing goroutines; 0 means GOMAXPROCS.
	Workers int

	ctx context.Context
}

// Verify checks the chunk digests of the chosen tensors in parallel (R26)
// and, when checking every tensor, that all padding is zero (R25). Each
// compressed tensor's frame is also checked and decoded, streaming (R27;
// zverify.go). It returns
// the first mismatch as a *format.FormatError naming the tensor and chunk, or
// ctx's error if ctx is cancelled first.
func (f *File) Verify(ctx context.Context, opts VerifyOptions) error {
	var idx []int
	if len(opts.Tensors) == 0 {
		idx = make([]int, f.NumTensors())
		for i := range idx {
			idx[i] = i
		}
	} else {
		for _, name := range opts.Tensors {
			t, err := f.Tensor(name)
			if err != nil {
				return err
			}
			idx = append(idx, t.index)
		}
	}
	opts.ctx = ctx
	if err := f.verifyTensors(idx, opts); err != nil {
		return err
	}
	if len(opts.Tensors) == 0 {
		return f.checkGaps(ctx)
	}
	return nil
}

// Gap checks read padding in windows: gaps with at most gapMerge bytes of
// tensor data between them are read together, up to gapWindow bytes, and
// the windows are checked in parallel. A remote source pays a request per
// read, and a model of many small tensors has a gap after nearly every one.
const (
	gapMerge  = 4 << 10
	gapWindow = 1 << 20
)

type gapRange struct{ lo, hi int64 }

type gapWin struct {
	lo, hi int64
	gaps   []gapRange
}

// checkGaps checks the padding between tensors (R25). It reports the first
// non-zero byte in file order, however the windows were scheduled.
func (f *File) checkGaps(ctx context.Context) error {
	var wins []gapWin
	add := func(lo, hi int64) {
		if lo >= hi {
			return
		}
		if n := len(wins); n > 0 && lo-wins[n-1].hi <= gapMerge && hi-wins[n-1].lo <= gapWindow {
			wins[n-1].hi = hi
			wins[n-1].gaps = append(wins[n-1].gaps, gapRange{lo, hi})
			return
		}
		wins = append(wins, gapWin{lo: lo, hi: hi, gaps: []gapRange{{lo, hi}}})
	}
	end := int64(f.pre.DataOffset)
	for i := range f.NumTensors() {
		e := f.hdr.Tensor(i)
		off := int64(f.pre.DataOffset + e.Offset)
		add(end, off)
		end = off + int64(e.StoredLength)
	}
	add(end, int64(f.pre.DataEnd()))
	if len(wins) == 0 {
		return nil
	}
	read := func(b []byte, off int64) error { return f.readCopyContext(ctx, b, off) }
	workers := max(1, min(f.readers(0), len(wins)))
	var (
		next atomic.Int64
		stop atomic.Bool
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	errs := map[int]error{}
	for range workers {
		wg.Go(func() {
			var buf []byte
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(wins) {
					return
				}
				w := wins[i]
				err := ctx.Err()
				if err == nil {
					err = f.checkWindow(w, &buf, read)
				}
				if err != nil {
					// Windows are taken in order and each taken one is
					// finished, so every window before i is checked too.
					mu.Lock()
					errs[i] = err
					mu.Unlock()
					stop.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	first := -1
	for i := range errs {
		if first < 0 || i < first {
			first = i
		}
	}
	if first >= 0 {
		return errs[first]
	}
	return nil
}

// checkWindow checks the gaps of w: in one read when w fits gapWindow, else
// (one gap, under a large alignment) in pieces.
func (f *File) checkWindow(w gapWin, buf *[]byte, read func([]byte, int64) error) error {
	n := w.hi - w.lo
	if n > gapWindow {
		return f.checkZero(w.lo, w.hi, read)
	}
	if int64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if err := read(b, w.lo); err != nil {
		return err
	}
	for _, g := range w.gaps {
		if i := nonZero(b[g.lo-w.lo : g.hi-w.lo]); i >= 0 {
			return format.Errorf(format.ErrPadding, "R25", g.lo+int64(i), "padding", "byte not zero")
		}
	}
	return nil
}

// ReadParallelism is implemented by readers that serve more reads at once
// than there are CPUs, such as a remote source, whose reads wait on the
// network: decode then keeps that many reads in flight where it reads in
// parallel (Verify, checked reads of a tensor).
type ReadParallelism interface {
	ReadParallelism() int
}

// ReadSizer is implemented by readers for which each read costs a round
// trip, such as a remote source: where decode reads chunks in parallel
// (Verify, checked reads of a tensor) it reads runs of whole chunks of up
// to ReadSize bytes at once, so that a request carries a part of the
// source's size rather than one chunk.
type ReadSizer interface {
	ReadSize() int64
}

// maxGroupRead bounds the bytes of one grouped read of chunks, and so the
// scratch memory of a verifying worker: no more than a worker holds for one
// large chunk (maxWholeChunk).
const maxGroupRead = 16 << 20

// chunksPerRead is the number of whole chunks of size cs that one read
// takes: 1, or as many as fit in the reader's ReadSize.
func (f *File) chunksPerRead(cs int64) int64 {
	rs, ok := f.ra.(ReadSizer)
	if !ok || cs <= 0 {
		return 1
	}
	return max(1, min(rs.ReadSize(), maxGroupRead)/cs)
}

// readers is the number of reading goroutines for workers asked for (0:
// GOMAXPROCS), raised to the reader's parallelism.
func (f *File) readers(workers int) int {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if rp, ok := f.ra.(ReadParallelism); ok {
		workers = max(workers, min(rp.ReadParallelism(), 256))
	}
	return workers
}

// readHashed reads t's stored bytes into b (len(b) == t.StoredLength) and
// hashes each chunk in b itself, in parallel: every worker reads a chunk
// straight into its place in b and hashes it there, so reading overlaps
// hashing and every byte is read once. workers <= 0 means GOMAXPROCS.
func (f *File) readHashed(t *Tensor, b []byte, workers int) error {
	if int64(len(b)) != t.StoredLength {
		return fmt.Errorf("decode: tensor %q: buffer of %d bytes, want %d", t.Name, len(b), t.StoredLength)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	n := t.NumChunks()
	if n == 0 {
		return nil
	}
	cs := f.ChunkSize()
	g := f.chunksPerRead(cs) // chunks per read
	reads := (int64(n) + g - 1) / g
	// With fewer chunks than workers, each chunk is hashed on several
	// goroutines (BLAKE3 is a tree).
	per := max(1, workers/n)
	workers = max(1, min(f.readers(workers), int(reads)))
	var (
		next     atomic.Int64
		firstErr error
		errOnce  sync.Once
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for !stop.Load() {
				r := next.Add(1) - 1
				if r >= reads {
					return
				}
				c0 := r * g
				lo := c0 * cs
				err := f.readCopy(b[lo:min(lo+g*cs, t.StoredLength)], t.Offset+lo)
				for c := c0; err == nil && c < min(c0+g, int64(n)); c++ {
					p := b[c*cs : min((c+1)*cs, t.StoredLength)]
					sum := f.pre.DigestAlgorithm.SumParallel(p, per)
					if !bytes.Equal(sum[:], t.ChunkDigest(int(c))) {
						err = &format.FormatError{Kind: format.ErrDigest, Rule: "R26", Offset: t.Offset + c*cs,
							Field: fmt.Sprintf("tensor %q chunk %d", t.Name, c), Reason: "stored bytes do not match the header"}
					}
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					stop.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// A chunkJob is one chunk of one tensor, or, when group is set, every
// chunk of a run of small tensors that lie close together, read in one
// read of [lo, hi): a remote source pays a request per read.
type chunkJob struct {
	t      *Tensor
	chunk  int
	count  int // chunks from chunk on, read at once (chunksPerRead)
	group  []*Tensor
	lo, hi int64
	bytes  int64 // stored bytes checked, for progress
}

// Small raw tensors are verified in groups: a tensor of at most
// groupTensor stored bytes joins the group before it when at most gapMerge
// bytes lie between them and the group spans at most gapWindow bytes.
const groupTensor = 64 << 10

// VerifyRange checks the chunks that cover the stored bytes [off, off+n) of
// the tensor, such as one rank's row slice in tensor-parallel loading.
func (t *Tensor) VerifyRange(off, n int64) error {
	if off < 0 || n < 0 || off > t.StoredLength || n > t.StoredLength-off {
		return fmt.Errorf("decode: tensor %q: range [%d, +%d) outside its %d bytes", t.Name, off, n, t.StoredLength)
	}
	if n == 0 {
		return nil
	}
	if t.f.closed.Load() {
		return errClosed
	}
	cs := t.f.ChunkSize()
	buf := make([]byte, min(t.f.scratchSize(), t.StoredLength))
	for c := off / cs; c <= (off+n-1)/cs; c++ {
		if err := t.f.checkChunk(context.Background(), t, int(c), buf); err != nil {
			return err
		}
	}
	return nil
}

func (f *File) verifyTensors(idx []int, opts VerifyOptions) error {
	if f.closed.Load() {
		return errClosed
	}
	ctx := opts.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	var jobs []chunkJob
	var frames []*Tensor // compressed tensors: zverify.go
	var total, largest int64
	for _, i := range idx {
		if f.verified != nil && f.verified[i].Load() {
			continue
		}
		t := f.TensorAt(i)
		if t.Compression != format.None {
			frames = append(frames, t)
			total += t.StoredLength
			continue
		}
		total += t.StoredLength
		if t.StoredLength > 0 && t.StoredLength <= groupTensor {
			end := t.Offset + t.StoredLength
			if n := len(jobs); n > 0 && jobs[n-1].group != nil && t.Offset >= jobs[n-1].hi &&
				t.Offset-jobs[n-1].hi <= gapMerge && end-jobs[n-1].lo <= gapWindow {
				g := &jobs[n-1]
				g.group, g.hi, g.bytes = append(g.group, t), end, g.bytes+t.StoredLength
				continue
			}
			jobs = append(jobs, chunkJob{group: []*Tensor{t}, lo: t.Offset, hi: end, bytes: t.StoredLength})
			continue
		}
		cs := f.ChunkSize()
		g := f.chunksPerRead(cs)
		for c := int64(0); c < int64(t.NumChunks()); c += g {
			k := min(g, int64(t.NumChunks())-c)
			jobs = append(jobs, chunkJob{t: t, chunk: int(c), count: int(k), bytes: min(k*cs, t.StoredLength-c*cs)})
		}
		largest = max(largest, t.StoredLength)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = f.readers(0)
	}
	workers = max(1, min(workers, len(jobs)))

	var (
		next     atomic.Int64
		done     atomic.Int64
		firstErr error
		errOnce  sync.Once
		stop     atomic.Bool
		progMu   sync.Mutex
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		stop.Store(true)
	}
	for range workers {
		wg.Go(func() {
			// Scratch is bounded by the largest tensor as well as the
			// chunk size, which a file may set to 1 GiB.
			buf := make([]byte, min(f.scratchSize(), largest))
			var gbuf []byte // for groups of small tensors, grown to the largest
			for !stop.Load() {
				j := next.Add(1) - 1
				if j >= int64(len(jobs)) {
					return
				}
				if err := ctx.Err(); err != nil {
					fail(err)
					return
				}
				job := jobs[j]
				var err error
				switch {
				case job.group != nil:
					err = f.checkGroup(ctx, job, &gbuf)
				case job.count > 1:
					err = f.checkChunks(ctx, job, &gbuf)
				default:
					err = f.checkChunk(ctx, job.t, job.chunk, buf)
				}
				if err != nil {
					fail(err)
					return
				}
				n := job.bytes
				d := done.Add(n)
				if opts.Progress != nil {
					progMu.Lock()
					opts.Progress(d, total)
					progMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	for _, t := range frames {
		if err := f.verifyFrame(ctx, t, func(n int64) {
			if d := done.Add(n); opts.Progress != nil {
				opts.Progress(d, total)
			}
		}); err != nil {
			return err
		}
	}
	if f.verified != nil {
		for _, i := range idx {
			f.verified[i].Store(true)
		}
	}
	return nil
}

// checkGroup reads the span of a group of small tensors in one read and
// checks every chunk of each tensor in it. buf is grown to the span.
func (f *File) checkGroup(ctx context.Context, job chunkJob, buf *[]byte) error {
	n := job.hi - job.lo
	if int64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if err := f.readCopyContext(ctx, b, job.lo); err != nil {
		return err
	}
	cs := f.ChunkSize()
	for _, t := range job.group {
		stored := b[t.Offset-job.lo : t.Offset-job.lo+t.StoredLength]
		for c := range t.NumChunks() {
			lo := int64(c) * cs
			sum := f.pre.DigestAlgorithm.Sum(stored[lo:min(lo+cs, t.StoredLength)])
			if !bytes.Equal(sum[:], t.ChunkDigest(c)) {
				return &format.FormatError{Kind: format.ErrDigest, Rule: "R26", Offset: t.Offset + lo,
					Field: fmt.Sprintf("tensor %q chunk %d", t.Name, c), Reason: "stored bytes do not match the header"}
			}
		}
	}
	return nil
}

// checkChunks reads job.count consecutive chunks of job.t in one read and
// checks each. buf is grown to the span (at most maxGroupRead).
func (f *File) checkChunks(ctx context.Context, job chunkJob, buf *[]byte) error {
	t, cs := job.t, f.ChunkSize()
	lo := int64(job.chunk) * cs
	n := job.bytes
	if int64(cap(*buf)) < n {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if err := f.readCopyContext(ctx, b, t.Offset+lo); err != nil {
		return err
	}
	for k := range job.count {
		c := job.chunk + k
		p := b[int64(k)*cs : min(int64(k+1)*cs, n)]
		sum := f.pre.DigestAlgorithm.Sum(p)
		if !bytes.Equal(sum[:], t.ChunkDigest(c)) {
			return &format.FormatError{Kind: format.ErrDigest, Rule: "R26", Offset: t.Offset + int64(c)*cs,
				Field: fmt.Sprintf("tensor %q chunk %d", t.Name, c), Reason: "stored bytes do not match the header"}
		}
	}
	return nil
}

// maxWholeChunk is the largest chunk a worker reads whole before hashing
// it; larger chunks (a file may ask for up to 1 GiB) are streamed through
// the hash in pieces of this size.
const maxWholeChunk = 16 << 20

// scratchSize is the size of a hashing worker's scratch buffer.
func (f *File) scratchSize() int64 { return min(f.ChunkSize(), maxWholeChunk) }

// checkChunk hashes one chunk of t's stored bytes and compares it with the
// header. buf is the worker's scratch space.
//
// The chunk is read into buf, also for a mapped file, rather than hashed in
// place: BLAKE3 hashes large inputs on goroutines of its own, where a fault
// on a file truncated under the mapping could not be caught; and a read
// takes no page fault per page of a mapping not yet touched, which made
// hashing in place slower (docs/BENCHMARKS.md).
func (f *File) checkChunk(ctx context.Context, t *Tensor, c int, buf []byte) error {
	cs := f.ChunkSize()
	lo := int64(c) * cs
	n := min(cs, t.StoredLength-lo)
	if len(buf) == 0 {
		buf = make([]byte, min(f.scratchSize(), n))
	}
	var sum [format.DigestSize]byte
	if n <= int64(len(buf)) {
		if err := f.readCopyContext(ctx, buf[:n], t.Offset+lo); err != nil {
			return err
		}
		sum = f.pre.DigestAlgorithm.Sum(buf[:n])
	} else {
		h := f.pre.DigestAlgorithm.New()
		for off := int64(0); off < n; {
			p := buf[:min(int64(len(buf)), n-off)]
			if err := f.readCopyContext(ctx, p, t.Offset+lo+off); err != nil {
				return err
			}
			h.Write(p)
			off += int64(len(p))
		}
		h.Sum(sum[:0])
	}
	if !bytes.Equal(sum[:], t.ChunkDigest(c)) {
		return &format.FormatError{Kind: format.ErrDigest, Rule: "R26", Offset: t.Offset + lo,
			Field: fmt.Sprintf("tensor %q chunk %d", t.Name, c), Reason: "stored bytes do not match the header"}
	}
	return nil
}
