package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/safeweights/safeweights/format"
)

// A stager makes the bytes of a window available in page-locked host memory:
// by registering the file mapping (warm path) or by reading into a pinned
// staging buffer (cold path). release is called once the window's copies
// have completed and its hashing is done.
type stager interface {
	stage(ctx context.Context, w *window) (buf []byte, release func() error, err error)
}

// item is one staged window moving through the pipeline.
type item struct {
	w       *window
	buf     []byte // buf[0] is the byte at file offset w.off
	release func() error
	ev      event
	hasEv   bool
	s       stream       // the stream its copies were queued on
	leak    atomic.Bool  // a copy may still read buf: never release it
	pending atomic.Int32 // parts still using buf: the copy, and the hashing
}

type pipeConfig struct {
	producers int // goroutines staging windows
	releasers int // goroutines releasing windows (unregister, reuse)
	depth     int // windows in flight at most
	hashers   int // 0: no verification
	streams   []stream
	times     *timers
	lost      *atomic.Bool // set when a window had to be kept: a copy may be pending
	progress  *progress    // told the bytes of each window done; may be nil
}

// runPipeline stages every window of p, copies it to the device and releases
// it, with staging, copying, hashing and releasing overlapped:
//
//	producers: acquire a slot, stage window i   (register / pread)
//	copier:    queue its copies on a stream, record an event
//	completer: wait for the event
//	hashers:   check the chunk digests of the staged bytes
//	releasers: release the window once copy and hashing are done
//	           (unregister / reuse the buffer), then free its slot
//
// Every goroutine that calls the driver (producers, copier, completer,
// releasers) is bound: locked to its OS thread with the context current,
// which the driver needs of every call. Hashers never call the driver: the
// last part to finish with a window hands it to a releaser.
//
// A window's bytes are released only after both its copy and its hashing are
// done, and a slot is freed only then, so at most depth windows are pinned.
// A window whose copy could not be waited for, nor its stream synchronised,
// is never released: the copy engine may still read it. The first error
// cancels the rest; runPipeline returns only when every queued copy has
// completed (or been given up as lost) and every window is released.
func runPipeline(ctx context.Context, dev device, v *fileView, p *plan, allocs []devPtr, st stager, cfg pipeConfig) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(err error) { cancel(err) }
	tm := cfg.times
	if tm == nil {
		tm = new(timers)
	}
	lost := cfg.lost
	if lost == nil {
		lost = new(atomic.Bool)
	}

	n := len(p.windows)
	slots := make(chan struct{}, cfg.depth)
	ready := make(chan *item, n)
	completed := make(chan *item, n)
	relQ := make(chan *item, n)
	var hashQ chan *item
	if cfg.hashers > 0 {
		hashQ = make(chan *item, n)
	}
	var releaseErr error
	var relMu sync.Mutex
	done := func(it *item) {
		if it.pending.Add(-1) == 0 {
			relQ <- it
		}
	}

	// Every driver goroutine binds before any window is staged: one that
	// cannot bind cancels the run while nothing is in flight.
	nrel := max(1, cfg.releasers)
	var binds sync.WaitGroup
	binds.Add(nrel + cfg.producers + 2)
	bindOrFail := func() (func(), bool) {
		defer binds.Done()
		unbind, err := dev.bind()
		if err != nil {
			fail(err)
			return nil, false
		}
		return unbind, true
	}

	var releasers sync.WaitGroup
	for range nrel {
		releasers.Go(func() {
			unbind, ok := bindOrFail()
			if !ok {
				return // no window is staged after a failed bind
			}
			defer unbind()
			for it := range relQ {
				if !it.leak.Load() {
					if err := it.release(); err != nil {
						relMu.Lock()
						releaseErr = cmpOr(releaseErr, err)
						relMu.Unlock()
						fail(err)
					}
				}
				if ctx.Err() == nil {
					// Copied and checked: its bytes are on the device.
					cfg.progress.add(it.w.bytes())
				}
				<-slots
			}
		})
	}

	var next atomic.Int64
	var producers sync.WaitGroup
	for range cfg.producers {
		producers.Go(func() {
			unbind, ok := bindOrFail()
			if !ok {
				return
			}
			defer unbind()
			binds.Wait()
			for {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					<-slots
					return
				}
				w := &p.windows[i]
				buf, rel, err := st.stage(ctx, w)
				if err != nil {
					<-slots
					fail(err)
					return
				}
				it := &item{w: w, buf: buf, release: rel}
				it.pending.Store(1)
				if hashQ != nil {
					it.pending.Add(1)
					hashQ <- it
				}
				ready <- it
			}
		})
	}
	go func() {
		producers.Wait()
		close(ready)
		if hashQ != nil {
			close(hashQ)
		}
	}()

	var workers sync.WaitGroup
	for range cfg.hashers {
		workers.Go(func() {
			for it := range hashQ {
				if ctx.Err() == nil {
					t0 := time.Now()
					err := checkWindow(v, it)
					tm.hash.add(t0)
					if err != nil {
						fail(err)
					}
				}
				done(it)
			}
		})
	}

	// settle makes sure no copy still reads it.buf after a failure: it
	// synchronises the window's stream, and marks the window never to be
	// released when even that fails.
	settle := func(it *item) {
		if err := dev.syncStream(it.s); err != nil {
			fail(err)
			it.leak.Store(true)
			lost.Store(true)
		}
	}

	workers.Go(func() {
		defer close(completed)
		unbind, ok := bindOrFail()
		if !ok {
			for it := range ready {
				done(it) // nothing was queued from it
			}
			return
		}
		defer unbind()
		k := 0
		for it := range ready {
			if ctx.Err() != nil {
				done(it)
				continue
			}
			it.s = cfg.streams[k%len(cfg.streams)]
			k++
			t0 := time.Now()
			err := queueCopies(dev, it, allocs, it.s)
			tm.copyQueue.add(t0)
			if err != nil {
				// Copies already queued may still read buf.
				fail(err)
				settle(it)
				done(it)
				continue
			}
			completed <- it
		}
	})
	workers.Go(func() {
		unbind, ok := bindOrFail()
		if !ok {
			// Nothing can be waited for: keep every window queued.
			for it := range completed {
				it.leak.Store(true)
				lost.Store(true)
				done(it)
			}
			return
		}
		defer unbind()
		for it := range completed {
			t0 := time.Now()
			werr := dev.wait(it.ev)
			tm.copyWait.add(t0)
			if werr != nil {
				fail(werr)
				settle(it)
			}
			if derr := dev.destroyEvent(it.ev); derr != nil {
				fail(derr)
			}
			done(it)
		}
	})
	workers.Wait()
	// Every item has reached done by now: the copier saw each one, and the
	// completer waited for the copies of each before handing it on.
	close(relQ)
	releasers.Wait()
	if releaseErr != nil {
		return releaseErr
	}
	return context.Cause(ctx)
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// queueCopies queues the copy runs of it on s and records its event.
func queueCopies(dev device, it *item, allocs []devPtr, s stream) error {
	w := it.w
	for _, r := range w.runs {
		lo := r.off - w.off
		if lo < 0 || lo+r.n > int64(len(it.buf)) {
			panic("gpu: copy run outside its window") // a broken plan
		}
		if err := dev.copyAsync(allocs[r.alloc]+devPtr(r.dst), it.buf[lo:lo+r.n], s); err != nil {
			return err
		}
	}
	ev, err := dev.newEvent()
	if err != nil {
		return err
	}
	if err := dev.record(ev, s); err != nil {
		_ = dev.destroyEvent(ev)
		return err
	}
	it.ev, it.hasEv = ev, true
	return nil
}

// DigestError reports stored bytes whose chunk digest does not match the
// header. It wraps format.ErrDigest.
type DigestError struct {
	Tensor string
	Chunk  int
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("gpu: tensor %q chunk %d: digest mismatch", e.Tensor, e.Chunk)
}

func (e *DigestError) Unwrap() error { return format.ErrDigest }

// checkWindow hashes every chunk of the window's segments.
func checkWindow(v *fileView, it *item) (err error) {
	if len(it.buf) > 0 && len(v.mapping) > 0 && it.w.off < int64(len(v.mapping)) && &it.buf[0] == &v.mapping[it.w.off] {
		// The window is the file's mapping. BLAKE3 hashes large inputs on
		// goroutines of its own, where a fault on a file truncated under
		// the mapping could not be caught; decode copies the bytes under
		// its fault guard before hashing them.
		for _, s := range it.w.segs {
			t := &v.tensors[s.tensor]
			if t.verifyRange == nil {
				break
			}
			if err := t.verifyRange(s.off-t.offset, s.end-s.off); err != nil {
				var fe *format.FormatError
				if errors.As(err, &fe) && fe.Kind == format.ErrDigest && v.chunkSize > 0 {
					return &DigestError{Tensor: t.name, Chunk: int((fe.Offset - t.offset) / v.chunkSize)}
				}
				return fmt.Errorf("gpu: tensor %q: %w", t.name, err)
			}
		}
		if len(it.w.segs) == 0 || v.tensors[it.w.segs[0].tensor].verifyRange != nil {
			return nil
		}
	}
	// Staged bytes (pinned memory the loader owns), or a fake's mapping.
	// Only a memory fault becomes an error; anything else is a bug and
	// goes on panicking.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if re, ok := r.(runtime.Error); ok {
				if _, fault := r.(interface{ Addr() uintptr }); fault {
					err = fmt.Errorf("gpu: reading the mapped file: %v: %w", re, format.ErrIO)
					return
				}
			}
			panic(r)
		}
	}()
	for _, s := range it.w.segs {
		t := &v.tensors[s.tensor]
		data := it.buf[s.off-it.w.off : s.end-it.w.off]
		if err := checkChunks(v, t, s.chunk0, data); err != nil {
			return err
		}
	}
	return nil
}

func checkChunks(v *fileView, t *viewTensor, c0 int, data []byte) error {
	for c := c0; len(data) > 0; c++ {
		n := min(int64(len(data)), v.chunkSize)
		if c >= t.numChunks {
			return fmt.Errorf("gpu: tensor %q: chunk %d of %d: %w", t.name, c, t.numChunks, format.ErrChunking)
		}
		sum := v.alg.Sum(data[:n])
		if !bytes.Equal(sum[:], t.chunkDigest(c)) {
			return &DigestError{Tensor: t.name, Chunk: c}
		}
		data = data[n:]
	}
	return nil
}

// checkStored verifies the stored bytes of t through the file's reader, for
// tensors that do not pass through a window (compressed ones).
func checkStored(ctx context.Context, v *fileView, t *viewTensor, buf []byte) error {
	want := (t.stored + v.chunkSize - 1) / v.chunkSize
	if int64(t.numChunks) != want {
		return fmt.Errorf("gpu: tensor %q: %d chunk digests for %d chunks: %w", t.name, t.numChunks, want, format.ErrChunking)
	}
	for c := 0; c < t.numChunks; c++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		off := int64(c) * v.chunkSize
		n := min(v.chunkSize, t.stored-off)
		b := buf[:n]
		if got, err := v.readerAt.ReadAt(b, t.offset+off); int64(got) < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("gpu: tensor %q: %w: %w", t.name, format.ErrIO, err)
		}
		if err := checkChunks(v, t, c, b); err != nil {
			return err
		}
	}
	return nil
}
