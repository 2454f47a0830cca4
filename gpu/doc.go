// Package gpu loads the tensors of a safeweights file into CUDA device
// memory from a binary built with CGO_ENABLED=0: the CUDA driver is loaded at run time (libcuda.so.1, through
// purego), and a machine without it gets an error wrapping ErrNoDriver.
//
// Load cuts the chosen tensors into windows: page-aligned file ranges made of
// whole digest chunks (spec/SPEC.md, chunk digests). Each window is staged in
// page-locked host memory, copied with asynchronous copies on a few streams
// and released once its copy has completed, with staging, copying and digest
// checks overlapped and at most a fixed number of windows in flight:
//
//   - Mapped (the file is in the page cache): the read-only mapping itself is
//     registered with the driver, window by window, and the copy engine reads
//     it by DMA: no CPU copy.
//   - Direct (cold file): windows are read with O_DIRECT, legal because the
//     format aligns tensor data to pages, into pinned staging buffers.
//   - Buffered: the same through the page cache; the fallback of both.
//
// Compressed tensors are decoded on the CPU into pinned memory and copied.
// With WithVerify every chunk is hashed on CPU goroutines as it is staged,
// and Load returns nothing until all digests matched; on a mismatch it frees
// the device memory and returns a *DigestError naming tensor and chunk.
//
// It has been tested against strict fake drivers only (a Go fake device and
// a fake libcuda.so.1 in C, internal/fakecuda), never measured on a GPU. See
// docs/GPU.md for the design, the tests and how to run the GPU benchmark
// (bench/gpu/run.sh).
package gpu
