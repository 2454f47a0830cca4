package gpu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/gpu/internal/cuda"
)

// Errors of package gpu. Failures of a driver call are *DriverError values,
// which errors.Is matches against their Result code.
var (
	// ErrNoDriver: the CUDA driver library could not be loaded or
	// initialised (no NVIDIA driver on this machine).
	ErrNoDriver = cuda.ErrNoDriver
	// ErrNoDevice: no CUDA device of the requested ordinal.
	ErrNoDevice = errors.New("gpu: no such CUDA device")
	// ErrMismatch: bytes copied back from the device differ from the file.
	ErrMismatch = errors.New("gpu: device bytes differ from the file")
)

type (
	// DriverError is a failed CUDA driver call, carrying the driver's name
	// and description of its CUresult.
	DriverError = cuda.Error
	// Result is a CUresult code; errors.Is(err, gpu.ErrorOutOfMemory) holds
	// for a DriverError with that code.
	Result = cuda.Result
)

// CUresult codes callers may want to test for.
const (
	ErrorOutOfMemory   = cuda.ErrorOutOfMemory
	ErrorInvalidDevice = cuda.ErrorInvalidDevice
	ErrorNotSupported  = cuda.ErrorNotSupported
)

// DevicePtr is a CUDA device address (CUdeviceptr).
type DevicePtr uint64

// Tensor is one loaded tensor.
type Tensor struct {
	Name  string
	DType format.DType
	Shape []int64
	// Size is the tensor's byte length on the device (its decoded length).
	Size int64
	// Ptr is the tensor's first byte on the device; 0 for an empty tensor
	// without an allocation.
	Ptr DevicePtr
	// Offset is the tensor's offset inside its allocation: a multiple of
	// the file's alignment when the model shares one allocation.
	Offset int64
	// FileOffset and StoredLength locate the stored bytes in the file.
	FileOffset   int64
	StoredLength int64
	Compression  format.Compression
	// Slice is the part of the file's tensor on the device when LoadPlan
	// loaded it (Shape is then the slice's shape); nil for a whole tensor.
	Slice decode.Slice
}

// Model is the result of Load: the chosen tensors in device memory, which
// stays allocated until Close.
type Model struct {
	// Tensors are the loaded tensors in file order.
	Tensors []Tensor
	// Allocations are the device allocations holding them: one for the
	// whole model by default, one per non-empty tensor with
	// WithAllocPerTensor.
	Allocations []Allocation
	// Device is the CUDA device ordinal and DeviceName its name.
	Device     int
	DeviceName string
	Stats      Stats

	dev    device
	closer func() error
	allocs []devPtr
	byName map[string]int
	closed bool
}

// Allocation is one block of device memory owned by a Model.
type Allocation struct {
	Ptr  DevicePtr
	Size int64
}

// Tensor returns the loaded tensor called name.
func (m *Model) Tensor(name string) (*Tensor, bool) {
	i, ok := m.byName[name]
	if !ok {
		return nil, false
	}
	return &m.Tensors[i], true
}

// Close frees the device memory and releases the context the model
// retained, if any.
func (m *Model) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	var err error
	if len(m.allocs) > 0 {
		unbind, berr := m.dev.bind()
		if berr != nil {
			// The memory cannot be freed without the context; the
			// context is still released below.
			err = berr
		} else {
			for _, p := range m.allocs {
				err = cmpOr(err, m.dev.free(p))
			}
			unbind()
		}
	}
	m.allocs = nil
	if m.closer != nil {
		err = cmpOr(err, m.closer())
	}
	return err
}

// Stats describes how a Load went.
type Stats struct {
	// Path is the way the bytes took; Note says why it differs from the
	// requested one, if it does.
	Path Path   `json:"path"`
	Note string `json:"note,omitempty"`
	// Resident is the fraction of the file's pages found in the page cache
	// when the path was chosen automatically, or -1.
	Resident float64 `json:"resident"`
	// Bytes is the number of tensor bytes moved to the device.
	Bytes    int64 `json:"bytes"`
	Windows  int   `json:"windows"`
	Verified bool  `json:"verified"`
	// Setup is the time to load the driver and retain the context; Load
	// is the rest but Times.Staging: device allocation, staging, copies
	// and digest checks.
	Setup time.Duration `json:"setup_ns"`
	Load  time.Duration `json:"load_ns"`
	// Times breaks the load down by kind of work.
	Times Times `json:"times"`
}

// GBps is the load throughput in 10^9 bytes per second, setup excluded.
func (s Stats) GBps() float64 {
	if s.Load <= 0 {
		return 0
	}
	return float64(s.Bytes) / s.Load.Seconds() / 1e9
}

// Load copies the tensors of f into device memory and returns them.
//
// By default every tensor goes to device 0, into one allocation that keeps
// the file's layout and alignment, along the path the page cache suggests
// (see Path). Nothing is returned until every copy has completed, and, with
// WithVerify, until every chunk digest has matched; on any failure the
// device memory is freed.
//
// A file opened under a verify mode or a signature policy is always
// verified, as if WithVerify were given, and each tensor's padding is
// checked before its first byte is copied. A file that asks for checked
// reads (sign.Require, decode.WithCheckedReads) never takes the Mapped
// path: a registered window of the mapping is copied by DMA after it was
// hashed, and another writer of the file could change it in between, so
// such a load reads into pinned buffers and hashes the bytes there, the
// very bytes that are copied (spec/SPEC.md section 5.1).
func Load(ctx context.Context, f *decode.File, opts ...Option) (*Model, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	v, err := viewOf(f)
	if err != nil {
		return nil, err
	}
	if v.verify {
		cfg.verify = true
	}
	return load(ctx, v, cfg)
}

func load(ctx context.Context, v *fileView, cfg *config) (_ *Model, err error) {
	start := time.Now()
	chosen, err := choose(v, cfg.tensors)
	if err != nil {
		return nil, err
	}
	for _, ti := range chosen {
		t := &v.tensors[ti]
		// Pinned and device memory are sized from the declared length:
		// check it against the limit before either is allocated.
		if t.compression != format.None && t.length > cfg.maxDecompressed {
			return nil, format.Errorf(format.ErrLimit, "limits", t.offset, "length",
				fmt.Sprintf("tensor %q decodes to %d bytes, over the limit of %d", t.name, t.length, cfg.maxDecompressed))
		}
		if cfg.verify {
			if want := (t.stored + v.chunkSize - 1) / v.chunkSize; int64(t.numChunks) != want {
				return nil, fmt.Errorf("gpu: tensor %q: %d chunk digests for %d chunks: %w", t.name, t.numChunks, want, format.ErrChunking)
			}
			// The windows carry tensor bytes only; the padding between
			// tensors is checked here, before anything is copied (R25).
			if t.checkPadding != nil {
				if err := t.checkPadding(); err != nil {
					return nil, fmt.Errorf("gpu: tensor %q: %w", t.name, err)
				}
			}
		}
	}
	gran := max(int64(4096), int64(os.Getpagesize()))
	p, err := makePlan(v, planConfig{chosen: chosen, perTensor: cfg.perTensor, window: cfg.window, gran: gran})
	if err != nil {
		return nil, err
	}

	m, err := cfg.newModel(len(p.places))
	if err != nil {
		return nil, err
	}
	dev := m.dev
	var lost bool // a copy may still write device memory: do not free it
	defer func() {
		if err != nil {
			if lost {
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

	// Staging: the path, its probes and the pinned buffers, before the
	// timed load.
	start = time.Now()
	tm := new(timers)
	var run *windowRun
	if len(p.windows) > 0 {
		run, err = prepareWindows(dev, v, p, m, cfg, tm)
		if err != nil {
			return nil, err
		}
		defer run.close()
	}
	var zbuf []byte // pinned memory for the largest compressed tensor
	var zmax int64
	for _, pi := range p.compressed {
		zmax = max(zmax, v.tensors[p.places[pi].tensor].length)
	}
	if zmax > 0 {
		if zbuf, err = dev.hostAlloc(zmax); err != nil {
			return nil, fmt.Errorf("gpu: allocating %d pinned bytes for decompression: %w", zmax, err)
		}
		keep := false
		defer func() {
			if !keep {
				_ = dev.hostFree(zbuf)
			}
		}()
		defer func() { keep = lost }()
	}
	m.Stats.Times.Staging = time.Since(start)
	start = time.Now()

	for _, n := range p.allocs {
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
		for range cfg.streams {
			s, err := dev.newStream()
			if err != nil {
				return nil, err
			}
			streams = append(streams, s)
			defer func() { _ = dev.destroyStream(s) }()
		}
	}

	var prog *progress
	if cfg.progress != nil {
		prog = &progress{fn: cfg.progress, total: p.bytes}
		prog.add(0)
	}
	if run != nil {
		run.pc.streams = streams
		run.pc.progress = prog
		var pipeLost atomic.Bool
		run.pc.lost = &pipeLost
		err := runPipeline(ctx, dev, v, p, m.allocs, run.st, run.pc)
		lost = pipeLost.Load()
		if err != nil {
			return nil, err
		}
	}
	if err := loadCompressed(ctx, dev, v, p, m.allocs, streams[0], cfg.verify, zbuf, tm, &lost, prog); err != nil {
		return nil, err
	}

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, pl := range p.places {
		t := &v.tensors[pl.tensor]
		lt := Tensor{
			Name: t.name, DType: t.dtype, Shape: t.shape, Size: t.length, Offset: pl.off,
			FileOffset: t.offset, StoredLength: t.stored, Compression: t.compression,
		}
		if pl.alloc >= 0 {
			lt.Ptr = DevicePtr(m.allocs[pl.alloc]) + DevicePtr(pl.off)
		}
		m.byName[t.name] = len(m.Tensors)
		m.Tensors = append(m.Tensors, lt)
	}
	m.Stats.Bytes = p.bytes
	m.Stats.Windows = len(p.windows)
	m.Stats.Verified = cfg.verify
	m.Stats.Load = time.Since(start)
	staging := m.Stats.Times.Staging
	m.Stats.Times = tm.times()
	m.Stats.Times.Staging = staging
	return m, nil
}

// newModel opens the device (or takes the test's fake) for a Model of n
// tensors.
func (cfg *config) newModel(n int) (*Model, error) {
	m := &Model{Device: cfg.device, byName: make(map[string]int, n), dev: cfg.dev}
	m.Stats.Resident = -1
	if m.dev == nil {
		cd, err := openDevice(cfg.lib, cfg.device, cfg.ctx)
		if err != nil {
			return nil, err
		}
		m.dev, m.DeviceName, m.closer = cd, cd.name, cd.close
	}
	return m, nil
}

// choose returns the indexes of the named tensors in file order, or of all.
func choose(v *fileView, names []string) ([]int, error) {
	if names == nil {
		out := make([]int, len(v.tensors))
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	var out []int
	for i := range v.tensors {
		if want[v.tensors[i].name] {
			out = append(out, i)
			delete(want, v.tensors[i].name)
		}
	}
	for _, n := range names {
		if want[n] {
			return nil, fmt.Errorf("gpu: tensor %q: %w", n, format.ErrNotFound)
		}
	}
	return out, nil
}

// windowRun is a pipeline ready to run: its stager, with pinned buffers
// allocated or the path probed, and its configuration.
type windowRun struct {
	st    stager
	pc    pipeConfig
	close func()
}

// prepareWindows picks the path and readies what the pipeline over the raw
// tensors needs. It runs on a bound goroutine.
func prepareWindows(dev device, v *fileView, p *plan, m *Model, cfg *config, tm *timers) (_ *windowRun, err error) {
	run := &windowRun{close: func() {}}
	if v.mapping != nil {
		// Recorded on every path, so a caller can tell a warm load from a
		// cold one.
		if r, rerr := residency(v.mapping, p); rerr == nil {
			m.Stats.Resident = r
		} else if cfg.path == Auto {
			m.Stats.Note = "page cache residency unknown: " + rerr.Error()
		}
	}
	path := cfg.path
	if path == Auto {
		switch {
		case v.mapping == nil || m.Stats.Resident < 0:
			path = Buffered
		case m.Stats.Resident >= cfg.residentMin && v.checked:
			path = Buffered // warm, but a mapping cannot be a checked copy
		case m.Stats.Resident >= cfg.residentMin:
			path = Mapped
		default:
			path = Direct
		}
	}
	if path == Mapped && v.mapping == nil {
		path, m.Stats.Note = Buffered, "file is not mapped"
	}
	if path == Mapped && v.checked {
		path, m.Stats.Note = Buffered, "checked reads: a mapping can change after its check"
	}
	if path == Mapped {
		// Registering read-only needs driver and kernel support: probe it
		// on the first window's first page.
		w := &p.windows[0]
		probe := v.mapping[w.off:min(w.off+4096, int64(cap(v.mapping)))]
		if err := dev.register(probe); err != nil {
			path, m.Stats.Note = Buffered, "read-only host registration failed: "+err.Error()
		} else if err := dev.unregister(probe); err != nil {
			return nil, err
		}
	}

	pc := pipeConfig{depth: cfg.depth, times: tm}
	if cfg.verify {
		pc.hashers = cfg.hashers
	}
	switch path {
	case Mapped:
		run.st = &mappedStager{dev: dev, mapping: v.mapping, times: tm}
		pc.producers = cfg.workersOr(4)
		pc.releasers = pc.producers
	case Direct, Buffered:
		pool := make(chan []byte, cfg.depth)
		var closers []func()
		run.close = func() {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
		defer func() {
			if err != nil {
				run.close()
			}
		}()
		closers = append(closers, func() {
			// Buffers of windows whose copies were lost never came back.
			close(pool)
			for b := range pool {
				_ = dev.hostFree(b)
			}
		})
		for range cfg.depth {
			b, err := dev.hostAlloc(p.maxWindow)
			if err != nil {
				return nil, fmt.Errorf("gpu: allocating a %d-byte staging buffer: %w", p.maxWindow, err)
			}
			pool <- b
		}
		rs := &readStager{pool: pool, read: v.readerAt.ReadAt, times: tm}
		if path == Direct {
			probe := <-pool
			fd, err := -1, errors.New("file has no path")
			if v.path != "" {
				fd, err = openDirect(v.path, probe[:4096])
			}
			pool <- probe
			if err != nil {
				path, m.Stats.Note = Buffered, "O_DIRECT reads unavailable: "+err.Error()
			} else {
				closers = append(closers, func() { _ = closeFD(fd) })
				rs.read = pread(fd)
			}
		}
		run.st = rs
		pc.producers = cfg.workersOr(min(8, cfg.depth))
		pc.releasers = 1 // returning a buffer to the pool costs nothing
	default:
		return nil, fmt.Errorf("gpu: unknown path %v", path)
	}
	m.Stats.Path = path
	pc.producers = min(pc.producers, cfg.depth)
	pc.releasers = min(pc.releasers, cfg.depth)
	run.pc = pc
	return run, nil
}

// loadCompressed decompresses each compressed tensor on the CPU into the
// pinned buffer buf and copies it over. When a copy cannot be waited for,
// *lost is set: buf and the device memory must then be kept.
func loadCompressed(ctx context.Context, dev device, v *fileView, p *plan, allocs []devPtr, s stream, verify bool, buf []byte, tm *timers, lost *bool, prog *progress) error {
	var chunk []byte
	for _, pi := range p.compressed {
		if err := ctx.Err(); err != nil {
			return err
		}
		pl := p.places[pi]
		t := &v.tensors[pl.tensor]
		if verify {
			if int64(len(chunk)) < min(v.chunkSize, t.stored) {
				chunk = make([]byte, min(v.chunkSize, t.stored))
			}
			t0 := time.Now()
			err := checkStored(ctx, v, t, chunk)
			tm.hash.add(t0)
			if err != nil {
				return err
			}
		}
		b := buf[:t.length]
		t0 := time.Now()
		err := t.readInto(b)
		tm.decompress.add(t0)
		if err != nil {
			return fmt.Errorf("gpu: tensor %q: %w", t.name, err)
		}
		t0 = time.Now()
		err = dev.copyAsync(allocs[pl.alloc]+devPtr(pl.off), b, s)
		tm.copyQueue.add(t0)
		// Wait even when queueing failed: an earlier copy may be pending.
		t0 = time.Now()
		serr := dev.syncStream(s)
		tm.copyWait.add(t0)
		if serr != nil {
			*lost = true
			return cmpOr(err, serr)
		}
		if err != nil {
			return err
		}
		prog.add(t.length)
	}
	return nil
}

// Path is the way tensor bytes take from the file to the device.
type Path int

const (
	// Auto picks Mapped when the file's pages are in the page cache (see
	// WithResidency), else Direct; Buffered when the file is not mapped.
	Auto Path = iota
	// Mapped registers windows of the read-only mapping with the driver
	// and copies from them by DMA, with no CPU copy.
	Mapped
	// Direct reads windows with O_DIRECT into pinned staging buffers,
	// bypassing the page cache, and copies from those.
	Direct
	// Buffered reads windows through the page cache into pinned staging
	// buffers. It is the fallback of the other two.
	Buffered
)

var pathNames = [...]string{Auto: "auto", Mapped: "mapped", Direct: "direct", Buffered: "buffered"}

func (p Path) String() string {
	if p < 0 || int(p) >= len(pathNames) {
		return fmt.Sprintf("Path(%d)", int(p))
	}
	return pathNames[p]
}

// MarshalText writes the path's name.
func (p Path) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// ParsePath returns the path named s.
func ParsePath(s string) (Path, bool) {
	for i, n := range pathNames {
		if n == s {
			return Path(i), true
		}
	}
	return 0, false
}

// Defaults of the options.
const (
	DefaultWindowSize = 32 << 20
	DefaultDepth      = 8
	DefaultStreams    = 2
	DefaultResidency  = 0.9
	// MaxWindowSize bounds WithWindowSize; a window holds at least one
	// digest chunk, so files with larger chunks get larger windows.
	MaxWindowSize = 1 << 30
)

type config struct {
	device      int
	lib         string
	ctx         uintptr
	stream      uintptr
	tensors     []string
	perTensor   bool
	path        Path
	verify      bool
	workers     int
	streams     int
	depth       int
	hashers     int
	window      int64
	residentMin float64
	// maxDecompressed bounds the decoded length of a compressed tensor.
	maxDecompressed int64
	progress        func(done, total int64)
	dev             device // a fake, in tests
}

func (c *config) workersOr(d int) int {
	if c.workers > 0 {
		return c.workers
	}
	return d
}

func newConfig(opts []Option) (*config, error) {
	c := &config{
		window:      DefaultWindowSize,
		depth:       DefaultDepth,
		streams:     DefaultStreams,
		residentMin: DefaultResidency,
		hashers:     min(runtime.GOMAXPROCS(0), 16),

		maxDecompressed: format.DefaultMaxDecompressedSize,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Option configures Load.
type Option func(*config) error

// WithDevice selects the CUDA device by ordinal. Default 0.
func WithDevice(ordinal int) Option {
	return func(c *config) error {
		if ordinal < 0 {
			return fmt.Errorf("gpu: device ordinal %d is negative", ordinal)
		}
		c.device = ordinal
		return nil
	}
}

// WithLibrary loads the CUDA driver from path instead of libcuda.so.1.
func WithLibrary(path string) Option {
	return func(c *config) error { c.lib = path; return nil }
}

// WithCUDAContext makes Load use the caller's CUcontext instead of
// retaining the device's primary context. The context must outlive the Model.
func WithCUDAContext(ctx uintptr) Option {
	return func(c *config) error { c.ctx = ctx; return nil }
}

// WithStream makes Load queue every copy on the caller's CUstream (of the
// context Load uses) instead of streams of its own. Load still waits for the
// copies before it returns.
func WithStream(s uintptr) Option {
	return func(c *config) error { c.stream = s; return nil }
}

// WithTensors loads only the named tensors; a name not in the file is an
// error wrapping format.ErrNotFound.
func WithTensors(names ...string) Option {
	return func(c *config) error { c.tensors = append([]string{}, names...); return nil }
}

// WithAllocPerTensor gives each tensor its own allocation, so a server can
// free them one by one. By default one allocation holds the model.
func WithAllocPerTensor() Option {
	return func(c *config) error { c.perTensor = true; return nil }
}

// WithPath forces the path the bytes take. Default Auto.
func WithPath(p Path) Option {
	return func(c *config) error {
		if p < Auto || p > Buffered {
			return fmt.Errorf("gpu: unknown path %d", int(p))
		}
		c.path = p
		return nil
	}
}

// WithVerify checks every chunk digest of the loaded tensors on CPU worker
// goroutines as the chunks are staged; Load fails, freeing the device
// memory, with a *DigestError at the first mismatch.
func WithVerify() Option {
	return func(c *config) error { c.verify = true; return nil }
}

// WithWorkers sets the goroutines that stage windows (register or read).
// Default 4 for Mapped and min(8, depth) for the read paths.
func WithWorkers(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 256 {
			return fmt.Errorf("gpu: workers %d out of range [1, 256]", n)
		}
		c.workers = n
		return nil
	}
}

// WithStreams sets the number of copy streams Load creates. Default 2.
func WithStreams(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 64 {
			return fmt.Errorf("gpu: streams %d out of range [1, 64]", n)
		}
		c.streams = n
		return nil
	}
}

// WithDepth sets how many windows may be staged at once: the pinned memory
// in use is at most depth windows. Default 8.
func WithDepth(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1024 {
			return fmt.Errorf("gpu: depth %d out of range [1, 1024]", n)
		}
		c.depth = n
		return nil
	}
}

// WithWindowSize sets the target size of a window, the unit registered or
// read and then copied. Default 32 MiB; at least 4 KiB, at most 1 GiB.
func WithWindowSize(n int64) Option {
	return func(c *config) error {
		if n < 4096 || n > MaxWindowSize {
			return fmt.Errorf("gpu: window size %d out of range [4096, %d]", n, MaxWindowSize)
		}
		c.window = n
		return nil
	}
}

// WithHashers sets the goroutines that check digests under WithVerify.
// Default GOMAXPROCS, at most 16.
func WithHashers(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 256 {
			return fmt.Errorf("gpu: hashers %d out of range [1, 256]", n)
		}
		c.hashers = n
		return nil
	}
}

// WithResidency sets the fraction of pages in the page cache at or above
// which Auto picks Mapped. Default 0.9.
func WithResidency(f float64) Option {
	return func(c *config) error {
		if !(f >= 0 && f <= 1) {
			return fmt.Errorf("gpu: residency %v out of range [0, 1]", f)
		}
		c.residentMin = f
		return nil
	}
}

// WithLimits applies l.MaxDecompressedSize (its default when zero): a
// compressed tensor that declares a larger decoded length is refused with
// format.ErrLimit before any memory is allocated for it. Pass the limits the
// file was opened with (decode.WithLimits).
func WithLimits(l format.Limits) Option {
	return func(c *config) error {
		if err := l.Validate(); err != nil {
			return err
		}
		c.maxDecompressed = l.WithDefaults().MaxDecompressedSize
		return nil
	}
}

// WithProgress has fn called with the tensor bytes on the device so far and
// the total to load: once before the first copy, then as each window's
// copies complete (and, with WithVerify, its digests match) and after each
// compressed tensor. Calls come from the loader's goroutines one at a time,
// with done never decreasing.
func WithProgress(fn func(done, total int64)) Option {
	return func(c *config) error { c.progress = fn; return nil }
}

// progress serialises progress calls from the pipeline's goroutines.
type progress struct {
	mu          sync.Mutex
	fn          func(done, total int64)
	done, total int64
}

// add reports n more bytes loaded; a nil *progress does nothing.
func (p *progress) add(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.fn(p.done, p.total)
}

// ValidateOptions reports whether opts are valid, as Load would find them;
// a command line checks its flags with it before loading anything.
func ValidateOptions(opts ...Option) error {
	_, err := newConfig(opts)
	return err
}
