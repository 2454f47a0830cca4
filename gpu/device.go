package gpu

// devPtr, stream and event are the driver's handles as the pipeline sees them.
type (
	devPtr uint64
	stream uintptr
	event  uintptr
)

// device is the part of the CUDA driver the pipeline uses. The real one is
// cudaDevice; tests use a fake that checks the order of the calls.
type device interface {
	// bind locks the calling goroutine to its OS thread and makes the
	// device's context current there; unbind undoes both.
	bind() (unbind func(), err error)

	alloc(n int64) (devPtr, error)
	free(p devPtr) error

	// register page-locks b (part of a read-only file mapping) for DMA.
	register(b []byte) error
	unregister(b []byte) error

	// hostAlloc returns n bytes of page-locked, page-aligned host memory.
	hostAlloc(n int64) ([]byte, error)
	hostFree(b []byte) error

	newStream() (stream, error)
	destroyStream(s stream) error
	syncStream(s stream) error
	// copyAsync queues a copy of src to dst on s; src must stay valid and
	// staged until an event recorded after it completes.
	copyAsync(dst devPtr, src []byte, s stream) error

	newEvent() (event, error)
	record(e event, s stream) error
	wait(e event) error
	destroyEvent(e event) error

	// copyToHost copies device memory back and waits for it.
	copyToHost(dst []byte, src devPtr) error
}
