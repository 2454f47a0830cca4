package decode

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"

	"github.com/safeweights/safeweights/format"
)

// Slices: reading a box of a tensor (one index range per dimension) without
// reading the rest of it (docs/SLICES.md).
//
// The selected elements of a row-major tensor form runs of contiguous stored
// bytes: one run when the slice cuts only the outermost dimension it cuts at
// all, one run per outer index otherwise (a column slice of a matrix is one
// run per row). Under a verify mode every digest chunk (spec/SPEC.md section
// 5, R26) that a run touches is read whole, once, into a scratch buffer, or
// straight into the destination when a read lies inside one run, and hashed
// there; only then are the run's bytes copied out of that buffer. Chunks that
// touch are read together, so a slice costs its own bytes plus at most two
// chunks per run, and never more than the tensor.

// ErrSlice reports a slice that does not fit the tensor's shape, or a slice
// expression that does not parse. errors.Is(err, ErrSlice) tests for it.
var ErrSlice = errors.New("decode: invalid slice")

type sliceError string

func (e sliceError) Error() string        { return "decode: invalid slice: " + string(e) }
func (e sliceError) Is(target error) bool { return target == ErrSlice }

func sliceErrorf(format string, args ...any) error { return sliceError(fmt.Sprintf(format, args...)) }

// A Range selects the indices [Start, Stop) of one dimension, with step 1.
type Range struct {
	Start, Stop int64
	// Index marks a dimension chosen by a single index, as NumPy's t[3]
	// does: it selects [Start, Start+1) and has no dimension in Shape.
	Index bool
}

// Len is the number of indices the range selects.
func (r Range) Len() int64 { return r.Stop - r.Start }

// A Slice selects a box of a tensor: one Range per dimension, outermost
// first. Its bytes are the selected elements in row-major order.
type Slice []Range

// FullSlice selects every element of a tensor of the given shape.
func FullSlice(shape []int64) Slice {
	s := make(Slice, len(shape))
	for i, d := range shape {
		s[i] = Range{0, d, false}
	}
	return s
}

// maxSliceExpr bounds the length of a slice expression: a rank of 64 with
// 20-digit bounds fits easily, and a hostile string cannot make the parser
// allocate more than this.
const maxSliceExpr = 4096

// ParseSlice parses a slice expression in NumPy's basic-indexing syntax and
// resolves it against shape: comma-separated items, one per dimension from
// the outermost; "a:b", "a:", ":b" and ":" select a range, a lone integer
// selects one index (and drops its dimension from Shape, as NumPy does).
// Missing trailing items select whole dimensions; "..." is not supported.
// Negative bounds count from the end, and out-of-range range bounds are
// clipped to the dimension, both as in NumPy; a lone index out of range is
// an error. A step, if given, must be 1. Optional surrounding brackets and
// white space are allowed: "[0:128, :]" is "0:128,:". The empty expression
// selects the whole tensor (and is the only one a scalar accepts).
func ParseSlice(expr string, shape []int64) (Slice, error) {
	if len(expr) > maxSliceExpr {
		return nil, sliceErrorf("expression of %d bytes is over the limit of %d", len(expr), maxSliceExpr)
	}
	for _, d := range shape {
		if d < 0 {
			return nil, sliceErrorf("negative dimension %d in shape", d)
		}
	}
	e := strings.TrimSpace(expr)
	if strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]") {
		e = strings.TrimSpace(e[1 : len(e)-1])
	}
	s := FullSlice(shape)
	if e == "" {
		return s, nil
	}
	// Count before splitting: the split allocates per item.
	if n := strings.Count(e, ",") + 1; n > len(shape) {
		// NumPy allows one trailing comma ("3,"); so do we.
		if !(n == len(shape)+1 && strings.HasSuffix(e, ",")) {
			return nil, sliceErrorf("%d items for a tensor of rank %d", n, len(shape))
		}
	}
	items := strings.Split(e, ",")
	if len(items) > 1 && strings.TrimSpace(items[len(items)-1]) == "" {
		items = items[:len(items)-1]
	}
	for i, item := range items {
		r, err := parseItem(strings.TrimSpace(item), shape[i])
		if err != nil {
			return nil, sliceErrorf("item %d (%q): %v", i, item, err)
		}
		s[i] = r
	}
	return s, nil
}

func parseItem(item string, dim int64) (Range, error) {
	parts := strings.Split(item, ":")
	switch len(parts) {
	case 1:
		i, err := parseBound(parts[0])
		if err != nil {
			return Range{}, err
		}
		if i == nil {
			return Range{}, errors.New("empty item")
		}
		v := *i
		if v < 0 {
			v += dim
		}
		if v < 0 || v >= dim {
			return Range{}, fmt.Errorf("index %d out of range for a dimension of %d", *i, dim)
		}
		return Range{v, v + 1, true}, nil
	case 2, 3:
		if len(parts) == 3 {
			st := strings.TrimSpace(parts[2])
			if st != "" && st != "1" && st != "+1" {
				return Range{}, errors.New("steps other than 1 are not supported")
			}
		}
		lo, err := parseBound(parts[0])
		if err != nil {
			return Range{}, err
		}
		hi, err := parseBound(parts[1])
		if err != nil {
			return Range{}, err
		}
		start, stop := int64(0), dim
		if lo != nil {
			start = clip(*lo, dim)
		}
		if hi != nil {
			stop = clip(*hi, dim)
		}
		stop = max(stop, start)
		return Range{start, stop, false}, nil
	}
	return Range{}, errors.New("too many colons")
}

// parseBound parses a decimal integer with an optional sign; nil for an
// omitted bound. strconv rejects values outside int64.
func parseBound(s string) (*int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("bad integer %q", s)
	}
	return &v, nil
}

// clip resolves a NumPy range bound: negative counts from the end, then the
// result is clipped to [0, dim]. dim >= 0 and v < 0 make v+dim safe.
func clip(v, dim int64) int64 {
	if v < 0 {
		v += dim
	}
	return min(max(v, 0), dim)
}

// Check reports whether s fits a tensor of the given shape: one range per
// dimension, 0 <= Start <= Stop <= dimension, and an Index range of length 1.
func (s Slice) Check(shape []int64) error {
	if len(s) != len(shape) {
		return sliceErrorf("%d ranges for a tensor of rank %d", len(s), len(shape))
	}
	for i, r := range s {
		if r.Start < 0 || r.Stop < r.Start || r.Stop > shape[i] {
			return sliceErrorf("range %d:%d of dimension %d outside [0, %d]", r.Start, r.Stop, i, shape[i])
		}
		if r.Index && r.Stop != r.Start+1 {
			return sliceErrorf("index range %d:%d of dimension %d does not select one index", r.Start, r.Stop, i)
		}
	}
	return nil
}

// Dims is the length of each range: the shape of the slice with every
// dimension kept.
func (s Slice) Dims() []int64 {
	out := make([]int64, len(s))
	for i, r := range s {
		out[i] = r.Len()
	}
	return out
}

// Shape is the shape of the slice as NumPy gives it: dimensions chosen by
// a single index are dropped.
func (s Slice) Shape() []int64 {
	out := make([]int64, 0, len(s))
	for _, r := range s {
		if !r.Index {
			out = append(out, r.Len())
		}
	}
	return out
}

// String is the slice in the syntax ParseSlice reads, with explicit bounds.
func (s Slice) String() string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		if r.Index {
			b.WriteString(strconv.FormatInt(r.Start, 10))
			continue
		}
		b.WriteString(strconv.FormatInt(r.Start, 10))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(r.Stop, 10))
	}
	return b.String()
}

// runs walks the contiguous runs of stored bytes that a slice selects, in
// increasing offset order. The destination offset of run i is i*runLen.
type runs struct {
	s       Slice
	k       int     // the innermost dimension the slice cuts; runs span it
	strides []int64 // bytes per index step, per dimension
	runLen  int64
	count   int64 // number of runs
	idx     []int64
}

func newRuns(s Slice, shape []int64, elem int64) *runs {
	n := len(shape)
	rs := &runs{s: s, strides: make([]int64, n)}
	stride := elem
	for j := n - 1; j >= 0; j-- {
		rs.strides[j] = stride
		stride *= shape[j] // no overflow: the header checked the byte length
	}
	k := n - 1
	for k >= 0 && s[k].Start == 0 && s[k].Stop == shape[k] {
		k--
	}
	rs.k = k
	if k < 0 {
		rs.runLen, rs.count = stride, 1 // the whole tensor, or a scalar
		if stride == 0 {
			rs.count = 0
		}
		return rs
	}
	rs.runLen = s[k].Len() * rs.strides[k]
	rs.count = 1
	for j := range k {
		rs.count *= s[j].Len()
	}
	if rs.runLen == 0 {
		rs.count = 0
	}
	rs.idx = make([]int64, k)
	return rs
}

// reset starts the walk again.
func (rs *runs) reset() {
	for j := range rs.idx {
		rs.idx[j] = rs.s[j].Start
	}
}

// offset is the stored offset of the current run; advance moves to the next.
func (rs *runs) offset() int64 {
	if rs.k < 0 {
		return 0
	}
	off := rs.s[rs.k].Start * rs.strides[rs.k]
	for j, v := range rs.idx {
		off += v * rs.strides[j]
	}
	return off
}

func (rs *runs) advance() {
	for j := len(rs.idx) - 1; j >= 0; j-- {
		rs.idx[j]++
		if rs.idx[j] < rs.s[j].Stop {
			return
		}
		rs.idx[j] = rs.s[j].Start
	}
}

// SliceLength is the number of bytes of the slice s of t, after checking s
// against t's shape.
func (t *Tensor) SliceLength(s Slice) (int64, error) {
	if err := s.Check(t.Shape); err != nil {
		return 0, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	// The header checked that the shape's byte length is Length; the
	// fields are exported, so check again rather than trust them.
	full, sl := uint64(t.DType.Size()), uint64(t.DType.Size())
	for i, r := range s {
		var hi, hi2 uint64
		hi, full = bits.Mul64(full, uint64(t.Shape[i]))
		hi2, sl = bits.Mul64(sl, uint64(r.Len()))
		if hi != 0 || hi2 != 0 {
			return 0, fmt.Errorf("decode: tensor %q: shape %v overflows", t.Name, t.Shape)
		}
	}
	if full == 0 || t.DType.Size() == 0 || full != uint64(t.Length) {
		if !(full == 0 && t.Length == 0 && t.DType.Size() > 0) {
			return 0, fmt.Errorf("decode: tensor %q: shape %v of %s does not give its length %d", t.Name, t.Shape, t.DType, t.Length)
		}
	}
	return int64(sl), nil
}

// ReadSlice returns the bytes of the slice s of t: the selected elements,
// dense and row-major. See ReadSliceInto.
func (t *Tensor) ReadSlice(s Slice) ([]byte, error) {
	n, err := t.SliceLength(s)
	if err != nil {
		return nil, err
	}
	dst := make([]byte, n)
	if err := t.readSlice(s, dst, SliceOptions{}); err != nil {
		return nil, err
	}
	return dst, nil
}

// ReadSliceInto writes the slice s of t into dst, which must be exactly
// SliceLength(s) bytes long.
//
// For a raw tensor only the chunks the slice touches are read. Under
// VerifyLazy or VerifyEager each of them is read once and hashed in the
// buffer the slice's bytes are then copied from (or read into dst and
// hashed there), every time, whatever was verified before: a source that
// changes between reads cannot slip a byte past the check. The padding
// after the tensor (R25) is checked first. Under VerifyNone only the
// slice's own bytes are read, and nothing is checked.
//
// A compressed tensor is decoded whole (as Bytes does, verified per the
// File's mode) and then sliced: zstd frames cannot be entered in the middle.
// On error dst may hold partial data and must not be used.
func (t *Tensor) ReadSliceInto(s Slice, dst []byte) error {
	return t.ReadSliceWith(s, dst, SliceOptions{})
}

// SliceOptions configure ReadSliceWith.
type SliceOptions struct {
	// Reads is the number of chunk reads a verified slice read keeps in
	// flight (each up to 16 MiB, or one chunk when chunks are larger, of
	// scratch memory): more hide the latency of a remote source and hash
	// on several cores. 0 or 1: one at a time; at most 64. Scratch memory
	// is at most Reads reads.
	Reads int
	// Verify checks every chunk the slice touches, and the tensor's
	// padding, even when the File was opened with VerifyNone, as CopyTo
	// does: a loader that must hand out only checked bytes (the GPU
	// loader's tensor-parallel path) asks for it whatever the caller's
	// mode. A compressed tensor is then decoded from a checked copy of its
	// stored bytes.
	Verify bool
}

// ReadSliceWith is ReadSliceInto with options.
func (t *Tensor) ReadSliceWith(s Slice, dst []byte, opts SliceOptions) error {
	n, err := t.SliceLength(s)
	if err != nil {
		return err
	}
	if int64(len(dst)) != n {
		return fmt.Errorf("decode: tensor %q: buffer of %d bytes for a slice of %d", t.Name, len(dst), n)
	}
	if opts.Reads < 0 || opts.Reads > 64 {
		return fmt.Errorf("decode: %d concurrent reads; want 0 to 64", opts.Reads)
	}
	return t.readSlice(s, dst, opts)
}

func (t *Tensor) readSlice(s Slice, dst []byte, opts SliceOptions) error {
	if t.f.closed.Load() {
		return errClosed
	}
	rs := newRuns(s, t.Shape, int64(t.DType.Size()))
	if rs.count == 0 {
		return nil
	}
	verify := opts.Verify || t.f.cfg.verify != VerifyNone
	if t.Compression != format.None {
		var full []byte
		var err error
		if opts.Verify {
			if err = t.CheckPadding(); err == nil {
				full, err = t.decodeChecked()
			}
		} else {
			full, err = t.Bytes()
		}
		if err != nil {
			return err
		}
		rs.reset()
		for i := range rs.count {
			off := rs.offset()
			copy(dst[i*rs.runLen:(i+1)*rs.runLen], full[off:off+rs.runLen])
			rs.advance()
		}
		return nil
	}
	if t.StoredLength != t.Length || t.index < 0 || t.index >= t.f.NumTensors() || len(t.digests) != t.NumChunks()*format.DigestSize {
		return fmt.Errorf("decode: tensor %q: fields changed since the header was read", t.Name)
	}
	if !verify {
		rs.reset()
		for i := range rs.count {
			if err := t.f.readCopy(dst[i*rs.runLen:(i+1)*rs.runLen], t.Offset+rs.offset()); err != nil {
				return err
			}
			rs.advance()
		}
		return nil
	}
	if err := t.CheckPadding(); err != nil {
		return err
	}
	return t.readSliceVerified(rs, dst, opts.Reads)
}

// maxSliceRead is the most bytes one read of a slice takes when it spans
// several chunks (a whole chunk is read at once even when larger).
const maxSliceRead = 16 << 20

// chunkSpan is a run of consecutive chunks [lo, hi) that a slice touches;
// run is the one run that touches them, or -1 when several do.
type chunkSpan struct{ lo, hi, run, runOff int64 }

// sliceRead is one read of a slice: the stored bytes [lo, hi), whole
// chunks, read into dst at dstOff when they lie inside one run (else -1,
// into scratch).
type sliceRead struct{ lo, hi, dstOff int64 }

func (t *Tensor) readSliceVerified(rs *runs, dst []byte, workers int) error {
	cs := t.f.ChunkSize()
	// First pass: the chunks the runs touch, merged where they touch or
	// overlap. At most one span per run and never more than the tensor's
	// chunk count, which the header's digest list bounds.
	var spans []chunkSpan
	rs.reset()
	for i := range rs.count {
		off := rs.offset()
		lo, hi := off/cs, (off+rs.runLen-1)/cs+1
		if n := len(spans); n > 0 && lo <= spans[n-1].hi {
			spans[n-1].hi = max(spans[n-1].hi, hi)
			spans[n-1].run = -1
		} else {
			spans = append(spans, chunkSpan{lo, hi, i, off})
		}
		rs.advance()
	}
	perRead := max(1, maxSliceRead/cs)
	var reads []sliceRead
	var largest int64
	for _, sp := range spans {
		for g := sp.lo; g < sp.hi; g += perRead {
			r := sliceRead{g * cs, min(min(g+perRead, sp.hi)*cs, t.StoredLength), -1}
			if sp.run >= 0 && r.lo >= sp.runOff && r.hi <= sp.runOff+rs.runLen {
				r.dstOff = sp.run*rs.runLen + r.lo - sp.runOff
			} else {
				largest = max(largest, r.hi-r.lo)
			}
			reads = append(reads, r)
		}
	}
	workers = max(1, min(workers, len(reads)))
	scratch := make([][]byte, workers)

	// Then, a window of up to workers reads at a time: each read once and
	// hashed where it landed, in parallel; then, in order, the parts of the
	// runs each covers are copied out of the verified buffers.
	rs.reset()
	run, runOff, runDone := int64(0), rs.offset(), int64(0)
	bufs := make([][]byte, workers)
	errs := make([]error, workers)
	for w0 := 0; w0 < len(reads); w0 += workers {
		window := reads[w0:min(w0+workers, len(reads))]
		fetch := func(i int) {
			r := window[i]
			var buf []byte
			if r.dstOff >= 0 {
				buf = dst[r.dstOff : r.dstOff+(r.hi-r.lo)]
			} else {
				if scratch[i] == nil {
					scratch[i] = make([]byte, largest)
				}
				buf = scratch[i][:r.hi-r.lo]
			}
			bufs[i], errs[i] = buf, t.fetchChunks(buf, r.lo)
		}
		if len(window) == 1 {
			fetch(0)
		} else {
			var wg sync.WaitGroup
			for i := range window {
				wg.Go(func() { fetch(i) })
			}
			wg.Wait()
		}
		for i, r := range window {
			if errs[i] != nil {
				return errs[i]
			}
			// Copy out every run piece inside [r.lo, r.hi).
			for run < rs.count {
				from := runOff + runDone
				if from >= r.hi {
					break
				}
				to := min(runOff+rs.runLen, r.hi)
				if r.dstOff < 0 {
					d := run*rs.runLen + runDone
					copy(dst[d:d+(to-from)], bufs[i][from-r.lo:to-r.lo])
				}
				runDone += to - from
				if runDone < rs.runLen {
					break // the run continues in the next read
				}
				run++
				runDone = 0
				rs.advance()
				runOff = rs.offset()
			}
		}
	}
	if run != rs.count {
		panic("decode: slice runs not covered by their chunks") // an internal invariant
	}
	return nil
}

// fetchChunks reads the whole chunks of t's stored bytes starting at lo
// into buf and checks each one's digest there (R26).
func (t *Tensor) fetchChunks(buf []byte, lo int64) error {
	cs := t.f.ChunkSize()
	if err := t.f.readCopy(buf, t.Offset+lo); err != nil {
		return err
	}
	for c := lo / cs; c*cs < lo+int64(len(buf)); c++ {
		a := c*cs - lo
		b := min((c+1)*cs, t.StoredLength) - lo
		if sum := t.f.pre.DigestAlgorithm.Sum(buf[a:b]); !bytes.Equal(sum[:], t.ChunkDigest(int(c))) {
			return &format.FormatError{Kind: format.ErrDigest, Rule: "R26", Offset: t.Offset + c*cs,
				Field: fmt.Sprintf("tensor %q chunk %d", t.Name, c), Reason: "stored bytes do not match the header"}
		}
	}
	return nil
}
