package gpu

import (
	"errors"
	"runtime"
	"unsafe"

	"github.com/safeweights/safeweights/gpu/internal/cuda"
)

// cudaDevice drives one CUDA context through the driver binding.
type cudaDevice struct {
	d       *cuda.Driver
	ctx     cuda.Context
	dev     cuda.Device
	ordinal int
	name    string
	owned   bool // ctx is the primary context, retained by us
}

// openDevice loads the driver and retains the device's primary context, or
// adopts the caller's context when ctx is not zero.
func openDevice(lib string, ordinal int, ctx uintptr) (*cudaDevice, error) {
	d, err := cuda.Load(lib)
	if err != nil {
		return nil, err
	}
	dev, err := d.Device(ordinal)
	if err != nil {
		if errors.Is(err, cuda.ErrorInvalidDevice) || errors.Is(err, cuda.ErrorNoDevice) {
			return nil, errors.Join(ErrNoDevice, err)
		}
		return nil, err
	}
	c := &cudaDevice{d: d, dev: dev, ordinal: ordinal, ctx: cuda.Context(ctx)}
	c.name, _ = d.DeviceName(dev)
	if ctx == 0 {
		if c.ctx, err = d.PrimaryCtxRetain(dev); err != nil {
			return nil, err
		}
		c.owned = true
	}
	return c, nil
}

// close releases the primary context if we retained it.
func (c *cudaDevice) close() error {
	if !c.owned {
		return nil
	}
	c.owned = false
	return c.d.PrimaryCtxRelease(c.dev)
}

func (c *cudaDevice) bind() (func(), error) {
	runtime.LockOSThread()
	prev, err := c.d.CtxGetCurrent()
	if err == nil && prev != c.ctx {
		err = c.d.CtxSetCurrent(c.ctx)
	}
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	return func() {
		if prev != c.ctx {
			_ = c.d.CtxSetCurrent(prev)
		}
		runtime.UnlockOSThread()
	}, nil
}

func (c *cudaDevice) alloc(n int64) (devPtr, error) {
	p, err := c.d.MemAlloc(uint64(n))
	return devPtr(p), err
}

func (c *cudaDevice) free(p devPtr) error { return c.d.MemFree(cuda.DevPtr(p)) }

func (c *cudaDevice) register(b []byte) error {
	return c.d.MemHostRegister(unsafe.Pointer(unsafe.SliceData(b)), uint64(len(b)),
		cuda.HostRegisterReadOnly|cuda.HostRegisterPortable)
}

func (c *cudaDevice) unregister(b []byte) error {
	return c.d.MemHostUnregister(unsafe.Pointer(unsafe.SliceData(b)))
}

func (c *cudaDevice) hostAlloc(n int64) ([]byte, error) {
	p, err := c.d.MemHostAlloc(uint64(n), cuda.HostAllocPortable)
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(p), n), nil
}

func (c *cudaDevice) hostFree(b []byte) error {
	return c.d.MemFreeHost(unsafe.Pointer(unsafe.SliceData(b)))
}

func (c *cudaDevice) newStream() (stream, error) {
	s, err := c.d.StreamCreate(cuda.StreamNonBlocking)
	return stream(s), err
}

func (c *cudaDevice) destroyStream(s stream) error { return c.d.StreamDestroy(cuda.Stream(s)) }
func (c *cudaDevice) syncStream(s stream) error    { return c.d.StreamSynchronize(cuda.Stream(s)) }

func (c *cudaDevice) copyAsync(dst devPtr, src []byte, s stream) error {
	return c.d.MemcpyHtoDAsync(cuda.DevPtr(dst), unsafe.Pointer(unsafe.SliceData(src)), uint64(len(src)), cuda.Stream(s))
}

func (c *cudaDevice) newEvent() (event, error) {
	e, err := c.d.EventCreate(cuda.EventDisableTiming)
	return event(e), err
}

func (c *cudaDevice) record(e event, s stream) error {
	return c.d.EventRecord(cuda.Event(e), cuda.Stream(s))
}
func (c *cudaDevice) wait(e event) error         { return c.d.EventSynchronize(cuda.Event(e)) }
func (c *cudaDevice) destroyEvent(e event) error { return c.d.EventDestroy(cuda.Event(e)) }

func (c *cudaDevice) copyToHost(dst []byte, src devPtr) error {
	return c.d.MemcpyDtoH(unsafe.Pointer(unsafe.SliceData(dst)), cuda.DevPtr(src), uint64(len(dst)))
}
