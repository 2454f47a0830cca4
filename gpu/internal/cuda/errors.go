// Package cuda is a small binding of the CUDA driver API, loaded at run time
// with dlopen through purego, so that a binary built with CGO_ENABLED=0 can
// move memory to an NVIDIA GPU and still run on machines without one.
//
// Only the calls the loader needs are bound. Every CUresult is checked and
// turned into an *Error carrying the driver's own name and text for the code.
// A machine without libcuda.so.1 gets an error wrapping ErrNoDriver.
//
// The driver keeps the current context per OS thread: a goroutine that calls
// into the driver must be locked to its thread (runtime.LockOSThread) with the
// context made current on that thread first.
package cuda

import (
	"errors"
	"strconv"
	"unsafe"
)

// ErrNoDriver reports that the CUDA driver library could not be loaded or
// lacks a required symbol, or that it found no usable device.
var ErrNoDriver = errors.New("cuda: no CUDA driver")

// Result is a CUresult code. It is an error so that callers can test
// errors.Is(err, cuda.ErrorOutOfMemory).
type Result int32

// The codes the loader reacts to; any other code is still reported with its
// driver-given name.
const (
	Success                          Result = 0
	ErrorInvalidValue                Result = 1
	ErrorOutOfMemory                 Result = 2
	ErrorNotInitialized              Result = 3
	ErrorDeinitialized               Result = 4
	ErrorStubLibrary                 Result = 34
	ErrorInsufficientDriver          Result = 35
	ErrorNoDevice                    Result = 100
	ErrorInvalidDevice               Result = 101
	ErrorInvalidContext              Result = 201
	ErrorNotReady                    Result = 600
	ErrorHostMemoryAlreadyRegistered Result = 712
	ErrorHostMemoryNotRegistered     Result = 713
	ErrorNotPermitted                Result = 800
	ErrorNotSupported                Result = 801
)

func (r Result) Error() string { return "cuda: CUresult " + strconv.Itoa(int(r)) }

// Error is a failed driver call.
type Error struct {
	Op   string // the driver function, such as "cuMemAlloc_v2"
	Code Result
	Name string // the driver's name for Code, such as "CUDA_ERROR_OUT_OF_MEMORY"
	Text string // the driver's description of Code
}

func (e *Error) Error() string {
	s := "cuda: " + e.Op + ": " + e.Name
	if e.Text != "" {
		s += " (" + e.Text + ")"
	}
	return s
}

// Is reports whether target is the Result of e, so errors.Is(err,
// cuda.ErrorOutOfMemory) holds for an out-of-memory failure.
func (e *Error) Is(target error) bool {
	r, ok := target.(Result)
	return ok && r == e.Code
}

// maxCString bounds how far a string returned by the driver is scanned.
const maxCString = 1024

// goString copies a NUL-terminated C string owned by the driver.
func goString(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for n < maxCString && *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// errorNamer is the part of the driver that names result codes.
type errorNamer struct {
	getErrorName   func(r Result, s **byte) Result
	getErrorString func(r Result, s **byte) Result
}

// check turns r into nil or an *Error for op.
func (n *errorNamer) check(op string, r Result) error {
	if r == Success {
		return nil
	}
	e := &Error{Op: op, Code: r}
	var p *byte
	if n.getErrorName != nil && n.getErrorName(r, &p) == Success && p != nil {
		e.Name = goString(p)
	}
	if e.Name == "" {
		e.Name = "CUresult(" + strconv.Itoa(int(r)) + ")"
	}
	p = nil
	if n.getErrorString != nil && n.getErrorString(r, &p) == Success && p != nil {
		e.Text = goString(p)
	}
	return e
}
