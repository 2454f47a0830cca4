package encode

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/atomicfile"
)

// DefaultProducer is recorded as the producer unless WithProducer says otherwise.
const DefaultProducer = "safeweights 0.1"

// ErrClosed is returned by a Writer used after Close or Abort.
var ErrClosed = errors.New("encode: writer closed")

type config struct {
	alignment uint64
	chunkSize uint64
	digest    format.DigestAlgorithm
	producer  string
	limits    format.Limits
	workers   int
	meta      map[string]string
	prov      *format.Provenance
}

// An Option configures a Writer. Options are validated by Create.
type Option func(*config) error

// WithAlignment sets the alignment of tensor data: a power of two in
// [64, 16 MiB]. Default 4096.
func WithAlignment(n int) Option {
	return func(c *config) error {
		if n < format.MinAlignment || n > format.MaxAlignment || n&(n-1) != 0 {
			return fmt.Errorf("encode: alignment %d is not a power of two in [%d, %d]", n, format.MinAlignment, format.MaxAlignment)
		}
		c.alignment = uint64(n)
		return nil
	}
}

// WithChunkSize sets the digest chunk size: a power of two in [1 KiB, 1 GiB].
// Default 4 MiB.
func WithChunkSize(n int) Option {
	return func(c *config) error {
		if n < format.MinChunkSize || n > format.MaxChunkSize || n&(n-1) != 0 {
			return fmt.Errorf("encode: chunk size %d is not a power of two in [%d, %d]", n, format.MinChunkSize, format.MaxChunkSize)
		}
		c.chunkSize = uint64(n)
		return nil
	}
}

// WithDigest sets the digest algorithm. Default format.BLAKE3.
func WithDigest(a format.DigestAlgorithm) Option {
	return func(c *config) error {
		if !a.Valid() {
			return fmt.Errorf("encode: unknown digest algorithm %v", a)
		}
		c.digest = a
		return nil
	}
}

// WithProducer sets the producer recorded in the header.
func WithProducer(s string) Option {
	return func(c *config) error { c.producer = s; return nil }
}

// WithLimits sets the limits the writer checks its output against, so that
// it never writes a file that a reader with these limits rejects. Default
// format.DefaultLimits.
func WithLimits(l format.Limits) Option {
	return func(c *config) error {
		l = l.WithDefaults()
		if err := l.Validate(); err != nil {
			return err
		}
		c.limits = l
		return nil
	}
}

// WithWorkers sets how many goroutines hash tensor data. Default GOMAXPROCS.
func WithWorkers(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("encode: %d workers", n)
		}
		c.workers = n
		return nil
	}
}

// WithMetadata adds model-level metadata entries: keys non-empty, keys and
// values UTF-8 (rule R23).
func WithMetadata(kv map[string]string) Option {
	return func(c *config) error {
		for k, v := range kv {
			if err := checkKV(k, v); err != nil {
				return err
			}
			c.meta[k] = v
		}
		return nil
	}
}

// checkKV applies rule R23 to one entry, so that a bad entry is refused
// when it is given rather than when the file is closed.
func checkKV(key, value string) error {
	if key == "" || !utf8.ValidString(key) || !utf8.ValidString(value) {
		return fmt.Errorf("encode: metadata key %q: empty, or key or value not UTF-8: %w", key, format.ErrMetadata)
	}
	return nil
}

// WithProvenance records where a converted file came from.
func WithProvenance(p format.Provenance) Option {
	return func(c *config) error {
		if len(p.SourceSHA256) != 0 && len(p.SourceSHA256) != 32 {
			return fmt.Errorf("encode: provenance source SHA-256 is %d bytes, want 32: %w", len(p.SourceSHA256), format.ErrMetadata)
		}
		if !utf8.ValidString(p.SourceFormat) || !utf8.ValidString(p.Converter) {
			return fmt.Errorf("encode: provenance strings not UTF-8: %w", format.ErrMetadata)
		}
		for _, kv := range p.Notes {
			if err := checkKV(kv.Key, kv.Value); err != nil {
				return err
			}
		}
		c.prov = &p
		return nil
	}
}

// A TensorOption configures one tensor.
type TensorOption func(*tensorConfig) error

type tensorConfig struct {
	level int // zstd level, 0 for none
	attrs map[string]string
}

// Compress stores the tensor as one zstd frame at level (1 fastest to 4
// best). Compressed tensors cannot be viewed without a copy.
func Compress(level int) TensorOption {
	return func(t *tensorConfig) error {
		if level < 1 || level > 4 {
			return fmt.Errorf("encode: compression level %d out of range [1, 4]", level)
		}
		t.level = level
		return nil
	}
}

// Attribute adds a string attribute to the tensor: key non-empty, key and
// value UTF-8.
func Attribute(key, value string) TensorOption {
	return func(t *tensorConfig) error {
		if err := checkKV(key, value); err != nil {
			return err
		}
		if t.attrs == nil {
			t.attrs = map[string]string{}
		}
		t.attrs[key] = value
		return nil
	}
}

// Writer writes one file. It is not safe for concurrent use.
type Writer struct {
	cfg     config
	f       *atomicfile.File
	pos     uint64 // end of written data, relative to the data region
	tensors []format.TensorEntry
	names   map[string]struct{}
	err     error // sticky: once set, Close fails and removes the file
	closed  bool
	buf     []byte
}

// Create starts a file that Close will place at path.
func Create(path string, opts ...Option) (*Writer, error) {
	cfg := config{
		alignment: format.DefaultAlignment,
		chunkSize: format.DefaultChunkSize,
		digest:    format.BLAKE3,
		producer:  DefaultProducer,
		limits:    format.DefaultLimits(),
		workers:   runtime.GOMAXPROCS(0),
		meta:      map[string]string{},
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	w := &Writer{cfg: cfg, f: f, names: map[string]struct{}{}}
	dataOff, _ := format.AlignUp(format.PreambleSize, cfg.alignment)
	// The preamble is written last; reserve it and the padding now.
	if err := w.write(make([]byte, dataOff)); err != nil {
		w.Abort()
		return nil, fmt.Errorf("encode: %w", err)
	}
	return w, nil
}

// SetMetadata sets a model-level metadata entry: key non-empty, key and
// value UTF-8.
func (w *Writer) SetMetadata(key, value string) error {
	if err := checkKV(key, value); err != nil {
		return err
	}
	w.cfg.meta[key] = value
	return nil
}

// SetProvenance records where a converted file came from.
func (w *Writer) SetProvenance(p format.Provenance) error {
	return WithProvenance(p)(&w.cfg)
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// begin checks a new tensor and pads the data region to its offset.
func (w *Writer) begin(name string, dt format.DType, shape []int64, opts []TensorOption) (*format.TensorEntry, tensorConfig, uint64, error) {
	var tc tensorConfig
	if w.closed {
		return nil, tc, 0, ErrClosed
	}
	if w.err != nil {
		return nil, tc, 0, w.err
	}
	for _, o := range opts {
		if err := o(&tc); err != nil {
			return nil, tc, 0, err
		}
	}
	if err := format.CheckName(name, w.cfg.limits.MaxNameLength); err != nil {
		return nil, tc, 0, fmt.Errorf("encode: %w", err)
	}
	if _, dup := w.names[name]; dup {
		return nil, tc, 0, fmt.Errorf("encode: tensor %q: %w", name, format.ErrDuplicate)
	}
	if !dt.Valid() {
		return nil, tc, 0, fmt.Errorf("encode: tensor %q: %w", name, format.ErrDType)
	}
	if len(shape) > w.cfg.limits.MaxRank {
		return nil, tc, 0, fmt.Errorf("encode: tensor %q: rank %d: %w", name, len(shape), format.ErrLimit)
	}
	if len(w.tensors) >= w.cfg.limits.MaxTensors {
		return nil, tc, 0, fmt.Errorf("encode: tensor %q: more than %d tensors: %w", name, w.cfg.limits.MaxTensors, format.ErrLimit)
	}
	e := format.TensorEntry{Name: name, DType: dt, Shape: slices.Clone(shape)}
	length, ok := e.Length()
	if !ok {
		return nil, tc, 0, fmt.Errorf("encode: tensor %q: shape %v: %w", name, shape, format.ErrShape)
	}
	off := uint64(0)
	if len(w.tensors) > 0 {
		off, _ = format.AlignUp(w.pos, w.cfg.alignment)
	}
	if pad := off - w.pos; pad > 0 {
		if err := w.write(make([]byte, pad)); err != nil {
			return nil, tc, 0, w.fail(fmt.Errorf("encode: %w", err))
		}
		w.pos = off
	}
	e.Offset = off
	for k, v := range tc.attrs {
		e.Attributes = append(e.Attributes, format.KeyValue{Key: k, Value: v})
	}
	if length == 0 {
		tc.level = 0 // nothing to compress: R18
	}
	return &e, tc, length, nil
}

// write appends p to the file, from p itself: no intermediate copy. The
// file starts the writeback of each 8 MiB segment as soon as it is written.
func (w *Writer) write(p []byte) error {
	_, err := w.f.Write(p)
	return err
}

func (w *Writer) finish(e *format.TensorEntry, stored uint64, digests []byte) {
	e.StoredLength = stored
	e.Digests = digests
	if e.Compression == format.None && e.Digests == nil {
		e.Digests = []byte{}
	}
	w.pos += stored
	w.tensors = append(w.tensors, *e)
	w.names[e.Name] = struct{}{}
}

// Add writes a tensor whose canonical row-major little-endian bytes are data.
func (w *Writer) Add(name string, dt format.DType, shape []int64, data []byte, opts ...TensorOption) error {
	e, tc, length, err := w.begin(name, dt, shape, opts)
	if err != nil {
		return err
	}
	if uint64(len(data)) != length {
		return fmt.Errorf("encode: tensor %q: %d bytes, shape and dtype give %d: %w", name, len(data), length, format.ErrShape)
	}
	stored := data
	if tc.level > 0 {
		stored, err = compress(data, tc.level)
		if err != nil {
			return w.fail(err)
		}
		e.Compression = format.Zstd
	}
	var digests []byte
	var wg sync.WaitGroup
	wg.Go(func() { digests = hashChunks(w.cfg.digest, stored, w.cfg.chunkSize, w.cfg.workers, nil) })
	werr := w.write(stored)
	wg.Wait()
	if werr != nil {
		return w.fail(fmt.Errorf("encode: %w", werr))
	}
	w.finish(e, uint64(len(stored)), digests)
	return nil
}

// AddFrom writes a tensor whose canonical bytes are read from r: exactly as
// many as the shape and dtype give. Memory use is bounded by a few chunks
// for raw tensors; compressed tensors are buffered whole.
func (w *Writer) AddFrom(name string, dt format.DType, shape []int64, r io.Reader, opts ...TensorOption) error {
	e, tc, length, err := w.begin(name, dt, shape, opts)
	if err != nil {
		return err
	}
	if tc.level > 0 {
		data := make([]byte, 0, min(length, 64<<20))
		data, err = readN(data, r, length)
		if err != nil {
			return fmt.Errorf("encode: tensor %q: %w", name, err)
		}
		stored, err := compress(data, tc.level)
		if err != nil {
			return w.fail(err)
		}
		e.Compression = format.Zstd
		var digests []byte
		var wg sync.WaitGroup
		wg.Go(func() { digests = hashChunks(w.cfg.digest, stored, w.cfg.chunkSize, w.cfg.workers, nil) })
		werr := w.write(stored)
		wg.Wait()
		if werr != nil {
			return w.fail(fmt.Errorf("encode: %w", werr))
		}
		w.finish(e, uint64(len(stored)), digests)
		return nil
	}
	batch := w.cfg.chunkSize * uint64(max(2*w.cfg.workers, 4))
	for batch > 64<<20 && batch > w.cfg.chunkSize {
		batch /= 2
	}
	if uint64(cap(w.buf)) < min(batch, length) {
		w.buf = make([]byte, min(batch, length))
	}
	digests := make([]byte, 0, format.NumChunks(length, w.cfg.chunkSize)*format.DigestSize)
	for done := uint64(0); done < length; {
		n := min(batch, length-done)
		buf := w.buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			// The bytes written so far cannot be taken back: the file is lost.
			return w.fail(fmt.Errorf("encode: tensor %q: reading: %w", name, err))
		}
		var wg sync.WaitGroup
		wg.Go(func() { digests = hashChunks(w.cfg.digest, buf, w.cfg.chunkSize, w.cfg.workers, digests) })
		werr := w.write(buf)
		wg.Wait()
		if werr != nil {
			return w.fail(fmt.Errorf("encode: %w", werr))
		}
		done += n
	}
	w.finish(e, length, digests)
	return nil
}

func readN(dst []byte, r io.Reader, n uint64) ([]byte, error) {
	lr := io.LimitReader(r, int64(n))
	for uint64(len(dst)) < n {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, int(min(uint64(cap(dst)), n-uint64(len(dst)))))
		}
		m, err := lr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if uint64(len(dst)) != n {
		return nil, io.ErrUnexpectedEOF
	}
	return dst, nil
}

var encoders sync.Map // level -> *zstd.Encoder

func compress(data []byte, level int) ([]byte, error) {
	v, ok := encoders.Load(level)
	if !ok {
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level*3-2)),
			zstd.WithEncoderConcurrency(1),
			// A single-segment frame always declares its content size,
			// which readers require (spec 4.3, R27).
			zstd.WithSingleSegment(true),
			zstd.WithZeroFrames(false),
			zstd.WithEncoderCRC(false))
		if err != nil {
			return nil, fmt.Errorf("encode: zstd: %w", err)
		}
		v, _ = encoders.LoadOrStore(level, enc)
	}
	return v.(*zstd.Encoder).EncodeAll(data, nil), nil
}

// hashChunks appends the digests of data's chunks to dst, hashing on up to
// workers goroutines. data must start at a chunk boundary. Where there are
// fewer chunks than workers, each chunk is itself hashed on several: a
// model of small tensors has one chunk per tensor.
func hashChunks(alg format.DigestAlgorithm, data []byte, chunk uint64, workers int, dst []byte) []byte {
	n := int(format.NumChunks(uint64(len(data)), chunk))
	base := len(dst)
	dst = slices.Grow(dst, n*format.DigestSize)[:base+n*format.DigestSize]
	parts := max(1, workers/max(n, 1))
	sum := func(i int) {
		lo := uint64(i) * chunk
		hi := min(lo+chunk, uint64(len(data)))
		d := alg.SumParallel(data[lo:hi], parts)
		copy(dst[base+i*format.DigestSize:], d[:])
	}
	if workers <= 1 || n <= 1 {
		for i := 0; i < n; i++ {
			sum(i)
		}
		return dst
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				sum(i)
			}
		})
	}
	wg.Wait()
	return dst
}

// Close writes the header and the preamble, syncs the file and renames it to
// the destination. On any error the temporary file is removed and nothing is
// left at the destination.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		w.Abort()
		return w.err
	}
	err := w.close()
	if err != nil {
		w.Abort()
		return err
	}
	w.closed = true
	return nil
}

func (w *Writer) close() error {
	dataOff, _ := format.AlignUp(format.PreambleSize, w.cfg.alignment)
	p := format.Preamble{
		VersionMajor:    format.VersionMajor,
		VersionMinor:    format.VersionMinor,
		Alignment:       uint32(w.cfg.alignment),
		DigestAlgorithm: w.cfg.digest,
		DataOffset:      dataOff,
		DataLength:      w.pos,
	}
	p.HeaderOffset, _ = format.AlignUp(p.DataEnd(), format.HeaderAlignment)
	if pad := p.HeaderOffset - p.DataEnd(); pad > 0 {
		if err := w.write(make([]byte, pad)); err != nil {
			return fmt.Errorf("encode: %w", err)
		}
	}
	hf := format.HeaderFields{
		ChunkSize:  w.cfg.chunkSize,
		Tensors:    w.tensors,
		Producer:   w.cfg.producer,
		Provenance: w.cfg.prov,
	}
	for k, v := range w.cfg.meta {
		hf.Metadata = append(hf.Metadata, format.KeyValue{Key: k, Value: v})
	}
	hdr := format.BuildHeader(&hf)
	p.HeaderLength = uint64(len(hdr))
	p.HeaderDigest = w.cfg.digest.Sum(hdr)
	// Check the output with the reader's own rules before it can land.
	if p.HeaderLength > uint64(w.cfg.limits.MaxHeaderSize) {
		return fmt.Errorf("encode: header of %d bytes: %w", len(hdr), format.ErrLimit)
	}
	if _, err := format.ParseHeader(hdr, &p, w.cfg.limits); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if err := w.write(hdr); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	pre, _ := p.AppendBinary(nil)
	if _, err := w.f.WriteAt(pre, 0); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if err := w.f.Commit(); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	return nil
}

// Abort discards the file. It is safe to call after Close.
func (w *Writer) Abort() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return w.f.Abort()
}
