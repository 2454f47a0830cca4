package cuda

import (
	"fmt"
	"sync"
	"unsafe"
)

// DefaultLibrary is the soname of the driver library that the NVIDIA driver
// installs; the toolkit's libcuda.so link is not needed.
const DefaultLibrary = "libcuda.so.1"

// Flags of cuMemHostRegister.
const (
	HostRegisterPortable  = 0x01
	HostRegisterDeviceMap = 0x02
	HostRegisterReadOnly  = 0x08
)

// Flags of cuMemHostAlloc.
const (
	HostAllocPortable = 0x01
)

// Flags of cuStreamCreate and cuEventCreate.
const (
	StreamNonBlocking  = 0x01
	EventDisableTiming = 0x02
	EventBlockingSync  = 0x01
)

// Handles are opaque driver pointers.
type (
	Context uintptr // CUcontext
	Stream  uintptr // CUstream
	Event   uintptr // CUevent
	DevPtr  uint64  // CUdeviceptr
	Device  int32   // CUdevice
)

// Driver is the loaded driver library. Its methods return nil or an error
// built from the call's CUresult; they are safe for concurrent use as far as
// the driver is, and need the calling thread's current context set where the
// driver API says so.
type Driver struct {
	errorNamer
	path string

	cuInit                    func(flags uint32) Result
	cuDriverGetVersion        func(v *int32) Result
	cuDeviceGetCount          func(n *int32) Result
	cuDeviceGet               func(d *Device, ordinal int32) Result
	cuDeviceGetName           func(name *byte, n int32, d Device) Result
	cuDeviceTotalMem          func(b *uint64, d Device) Result
	cuDevicePrimaryCtxRetain  func(c *Context, d Device) Result
	cuDevicePrimaryCtxRelease func(d Device) Result
	cuCtxSetCurrent           func(c Context) Result
	cuCtxGetCurrent           func(c *Context) Result
	cuMemAlloc                func(p *DevPtr, n uint64) Result
	cuMemFree                 func(p DevPtr) Result
	cuMemHostRegister         func(p unsafe.Pointer, n uint64, flags uint32) Result
	cuMemHostUnregister       func(p unsafe.Pointer) Result
	cuMemHostAlloc            func(pp *unsafe.Pointer, n uint64, flags uint32) Result
	cuMemFreeHost             func(p unsafe.Pointer) Result
	cuMemcpyHtoDAsync         func(dst DevPtr, src unsafe.Pointer, n uint64, s Stream) Result
	cuMemcpyDtoH              func(dst unsafe.Pointer, src DevPtr, n uint64) Result
	cuStreamCreate            func(s *Stream, flags uint32) Result
	cuStreamDestroy           func(s Stream) Result
	cuStreamSynchronize       func(s Stream) Result
	cuEventCreate             func(e *Event, flags uint32) Result
	cuEventRecord             func(e Event, s Stream) Result
	cuEventSynchronize        func(e Event) Result
	cuEventDestroy            func(e Event) Result
}

var (
	loadMu sync.Mutex
	loaded = map[string]*Driver{}
)

// Load opens the driver library at path (DefaultLibrary when empty), binds
// its functions and calls cuInit. A library is loaded once per process and
// never unloaded: the driver does not support being unloaded while in use.
// Every failure wraps ErrNoDriver.
func Load(path string) (*Driver, error) {
	if path == "" {
		path = DefaultLibrary
	}
	loadMu.Lock()
	defer loadMu.Unlock()
	if d, ok := loaded[path]; ok {
		return d, nil
	}
	lib, err := dlopen(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoDriver, path, err)
	}
	d := &Driver{path: path}
	syms := []struct {
		fp   any
		name string
	}{
		{&d.getErrorName, "cuGetErrorName"},
		{&d.getErrorString, "cuGetErrorString"},
		{&d.cuInit, "cuInit"},
		{&d.cuDriverGetVersion, "cuDriverGetVersion"},
		{&d.cuDeviceGetCount, "cuDeviceGetCount"},
		{&d.cuDeviceGet, "cuDeviceGet"},
		{&d.cuDeviceGetName, "cuDeviceGetName"},
		{&d.cuDeviceTotalMem, "cuDeviceTotalMem_v2"},
		{&d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"},
		{&d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"},
		{&d.cuCtxSetCurrent, "cuCtxSetCurrent"},
		{&d.cuCtxGetCurrent, "cuCtxGetCurrent"},
		{&d.cuMemAlloc, "cuMemAlloc_v2"},
		{&d.cuMemFree, "cuMemFree_v2"},
		{&d.cuMemHostRegister, "cuMemHostRegister_v2"},
		{&d.cuMemHostUnregister, "cuMemHostUnregister"},
		{&d.cuMemHostAlloc, "cuMemHostAlloc"},
		{&d.cuMemFreeHost, "cuMemFreeHost"},
		{&d.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"},
		{&d.cuMemcpyDtoH, "cuMemcpyDtoH_v2"},
		{&d.cuStreamCreate, "cuStreamCreate"},
		{&d.cuStreamDestroy, "cuStreamDestroy_v2"},
		{&d.cuStreamSynchronize, "cuStreamSynchronize"},
		{&d.cuEventCreate, "cuEventCreate"},
		{&d.cuEventRecord, "cuEventRecord"},
		{&d.cuEventSynchronize, "cuEventSynchronize"},
		{&d.cuEventDestroy, "cuEventDestroy_v2"},
	}
	for _, s := range syms {
		if err := bind(lib, s.fp, s.name); err != nil {
			return nil, fmt.Errorf("%w: %s: missing %s: %v", ErrNoDriver, path, s.name, err)
		}
	}
	if err := d.check("cuInit", d.cuInit(0)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoDriver, err)
	}
	loaded[path] = d
	return d, nil
}

// Path is the library the driver was loaded from.
func (d *Driver) Path() string { return d.path }

// Version is the driver's CUDA version, such as 12040 for 12.4.
func (d *Driver) Version() (int, error) {
	var v int32
	err := d.check("cuDriverGetVersion", d.cuDriverGetVersion(&v))
	return int(v), err
}

// DeviceCount is the number of CUDA devices.
func (d *Driver) DeviceCount() (int, error) {
	var n int32
	err := d.check("cuDeviceGetCount", d.cuDeviceGetCount(&n))
	return int(n), err
}

// Device returns the device of the given ordinal.
func (d *Driver) Device(ordinal int) (Device, error) {
	var dev Device
	err := d.check("cuDeviceGet", d.cuDeviceGet(&dev, int32(ordinal)))
	return dev, err
}

// DeviceName is the device's marketing name.
func (d *Driver) DeviceName(dev Device) (string, error) {
	var b [256]byte
	if err := d.check("cuDeviceGetName", d.cuDeviceGetName(&b[0], int32(len(b)-1), dev)); err != nil {
		return "", err
	}
	return goString(&b[0]), nil
}

// DeviceTotalMem is the device's memory in bytes.
func (d *Driver) DeviceTotalMem(dev Device) (uint64, error) {
	var n uint64
	err := d.check("cuDeviceTotalMem_v2", d.cuDeviceTotalMem(&n, dev))
	return n, err
}

// PrimaryCtxRetain retains the device's primary context, the one the runtime
// API (and so PyTorch) uses; each call needs a PrimaryCtxRelease.
func (d *Driver) PrimaryCtxRetain(dev Device) (Context, error) {
	var c Context
	err := d.check("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain(&c, dev))
	return c, err
}

// PrimaryCtxRelease releases a retained primary context.
func (d *Driver) PrimaryCtxRelease(dev Device) error {
	return d.check("cuDevicePrimaryCtxRelease_v2", d.cuDevicePrimaryCtxRelease(dev))
}

// CtxSetCurrent makes c current on the calling OS thread.
func (d *Driver) CtxSetCurrent(c Context) error {
	return d.check("cuCtxSetCurrent", d.cuCtxSetCurrent(c))
}

// CtxGetCurrent returns the context current on the calling OS thread, or 0.
func (d *Driver) CtxGetCurrent() (Context, error) {
	var c Context
	err := d.check("cuCtxGetCurrent", d.cuCtxGetCurrent(&c))
	return c, err
}

// MemAlloc allocates n bytes of device memory.
func (d *Driver) MemAlloc(n uint64) (DevPtr, error) {
	var p DevPtr
	err := d.check("cuMemAlloc_v2", d.cuMemAlloc(&p, n))
	return p, err
}

// MemFree frees device memory.
func (d *Driver) MemFree(p DevPtr) error { return d.check("cuMemFree_v2", d.cuMemFree(p)) }

// MemHostRegister page-locks host memory that the caller owns, such as a
// file mapping, so the device can read it by DMA.
func (d *Driver) MemHostRegister(p unsafe.Pointer, n uint64, flags uint32) error {
	return d.check("cuMemHostRegister_v2", d.cuMemHostRegister(p, n, flags))
}

// MemHostUnregister undoes MemHostRegister.
func (d *Driver) MemHostUnregister(p unsafe.Pointer) error {
	return d.check("cuMemHostUnregister", d.cuMemHostUnregister(p))
}

// MemHostAlloc allocates n bytes of page-locked host memory.
func (d *Driver) MemHostAlloc(n uint64, flags uint32) (unsafe.Pointer, error) {
	var p unsafe.Pointer
	err := d.check("cuMemHostAlloc", d.cuMemHostAlloc(&p, n, flags))
	return p, err
}

// MemFreeHost frees memory from MemHostAlloc.
func (d *Driver) MemFreeHost(p unsafe.Pointer) error {
	return d.check("cuMemFreeHost", d.cuMemFreeHost(p))
}

// MemcpyHtoDAsync queues a copy of n host bytes at src to dst on stream s.
// The host memory must stay valid (and registered, if it is) until the copy
// completes.
func (d *Driver) MemcpyHtoDAsync(dst DevPtr, src unsafe.Pointer, n uint64, s Stream) error {
	return d.check("cuMemcpyHtoDAsync_v2", d.cuMemcpyHtoDAsync(dst, src, n, s))
}

// MemcpyDtoH copies n device bytes to host memory and waits for the copy.
func (d *Driver) MemcpyDtoH(dst unsafe.Pointer, src DevPtr, n uint64) error {
	return d.check("cuMemcpyDtoH_v2", d.cuMemcpyDtoH(dst, src, n))
}

// StreamCreate creates a stream in the current context.
func (d *Driver) StreamCreate(flags uint32) (Stream, error) {
	var s Stream
	err := d.check("cuStreamCreate", d.cuStreamCreate(&s, flags))
	return s, err
}

// StreamDestroy destroys a stream.
func (d *Driver) StreamDestroy(s Stream) error {
	return d.check("cuStreamDestroy_v2", d.cuStreamDestroy(s))
}

// StreamSynchronize waits for the work queued on s.
func (d *Driver) StreamSynchronize(s Stream) error {
	return d.check("cuStreamSynchronize", d.cuStreamSynchronize(s))
}

// EventCreate creates an event in the current context.
func (d *Driver) EventCreate(flags uint32) (Event, error) {
	var e Event
	err := d.check("cuEventCreate", d.cuEventCreate(&e, flags))
	return e, err
}

// EventRecord records e on s.
func (d *Driver) EventRecord(e Event, s Stream) error {
	return d.check("cuEventRecord", d.cuEventRecord(e, s))
}

// EventSynchronize waits for the work before e's record.
func (d *Driver) EventSynchronize(e Event) error {
	return d.check("cuEventSynchronize", d.cuEventSynchronize(e))
}

// EventDestroy destroys an event.
func (d *Driver) EventDestroy(e Event) error {
	return d.check("cuEventDestroy_v2", d.cuEventDestroy(e))
}
