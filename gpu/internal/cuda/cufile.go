package cuda

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// DefaultCuFileLibrary is the soname of NVIDIA's GPUDirect Storage library.
const DefaultCuFileLibrary = "libcufile.so.0"

// ErrNoCuFile reports that GPUDirect Storage is not available: the library is
// missing, lacks a symbol, or its driver does not open.
var ErrNoCuFile = errors.New("cuda: no cuFile library")

// CuFileError is a failed cuFile call: Code is the CUfileOpError, CU the
// CUresult it carries when the failure came from the CUDA driver.
type CuFileError struct {
	Op   string
	Code int32
	CU   Result
}

func (e *CuFileError) Error() string {
	s := "cuda: " + e.Op + ": cuFile error " + strconv.Itoa(int(e.Code))
	if e.CU != Success {
		s += " (CUresult " + strconv.Itoa(int(e.CU)) + ")"
	}
	return s
}

// cuFileDescr mirrors CUfileDescr_t: an int type, a union of an int fd and a
// pointer (8-aligned), and a pointer to file-system operations.
type cuFileDescr struct {
	typ   int32
	_     int32
	fd    int32
	_     int32
	fsOps uintptr
}

const cuFileHandleTypeOpaqueFD = 1

// CuFile is the loaded cuFile library with its driver opened.
type CuFile struct {
	// CUfileError_t is a struct of two 32-bit ints returned by value; on the
	// 64-bit ABIs supported here it comes back in one register, read as a
	// uint64 holding err in the low and cu_err in the high half.
	driverOpen       func() uint64
	handleRegister   func(fh *uintptr, d *cuFileDescr) uint64
	handleDeregister func(fh uintptr)
	bufRegister      func(p DevPtr, n uint64, flags int32) uint64
	bufDeregister    func(p DevPtr) uint64
	read             func(fh uintptr, p DevPtr, n uint64, fileOff int64, devOff int64) int64
}

var (
	cuFileMu     sync.Mutex
	cuFileLoaded = map[string]*CuFile{}
)

func cuFileCheck(op string, v uint64) error {
	code, cu := int32(uint32(v)), Result(int32(uint32(v>>32)))
	if code == 0 {
		return nil
	}
	return &CuFileError{Op: op, Code: code, CU: cu}
}

// LoadCuFile opens the cuFile library (DefaultCuFileLibrary when path is
// empty) and its driver. The CUDA driver must be loaded and a context current
// on the calling thread. Failures wrap ErrNoCuFile.
func LoadCuFile(path string) (*CuFile, error) {
	if path == "" {
		path = DefaultCuFileLibrary
	}
	cuFileMu.Lock()
	defer cuFileMu.Unlock()
	if c, ok := cuFileLoaded[path]; ok {
		return c, nil
	}
	lib, err := dlopen(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoCuFile, path, err)
	}
	c := &CuFile{}
	for _, s := range []struct {
		fp   any
		name string
	}{
		{&c.driverOpen, "cuFileDriverOpen"},
		{&c.handleRegister, "cuFileHandleRegister"},
		{&c.handleDeregister, "cuFileHandleDeregister"},
		{&c.bufRegister, "cuFileBufRegister"},
		{&c.bufDeregister, "cuFileBufDeregister"},
		{&c.read, "cuFileRead"},
	} {
		if err := bind(lib, s.fp, s.name); err != nil {
			return nil, fmt.Errorf("%w: %s: missing %s: %v", ErrNoCuFile, path, s.name, err)
		}
	}
	if err := cuFileCheck("cuFileDriverOpen", c.driverOpen()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoCuFile, err)
	}
	cuFileLoaded[path] = c
	return c, nil
}

// CuFileHandle is a file registered with cuFile.
type CuFileHandle uintptr

// HandleRegister registers an open file descriptor (opened with O_DIRECT).
// It fails when the file system does not support GPUDirect Storage.
func (c *CuFile) HandleRegister(fd int) (CuFileHandle, error) {
	d := cuFileDescr{typ: cuFileHandleTypeOpaqueFD, fd: int32(fd)}
	var fh uintptr
	if err := cuFileCheck("cuFileHandleRegister", c.handleRegister(&fh, &d)); err != nil {
		return 0, err
	}
	return CuFileHandle(fh), nil
}

// HandleDeregister undoes HandleRegister.
func (c *CuFile) HandleDeregister(fh CuFileHandle) { c.handleDeregister(uintptr(fh)) }

// BufRegister registers device memory as a cuFile target.
func (c *CuFile) BufRegister(p DevPtr, n uint64) error {
	return cuFileCheck("cuFileBufRegister", c.bufRegister(p, n, 0))
}

// BufDeregister undoes BufRegister.
func (c *CuFile) BufDeregister(p DevPtr) error {
	return cuFileCheck("cuFileBufDeregister", c.bufDeregister(p))
}

// Read reads n bytes at fileOff into device memory at base+devOff and
// returns the count read.
func (c *CuFile) Read(fh CuFileHandle, base DevPtr, n uint64, fileOff, devOff int64) (int64, error) {
	r := c.read(uintptr(fh), base, n, fileOff, devOff)
	if r < 0 {
		return 0, &CuFileError{Op: "cuFileRead", Code: int32(-r)}
	}
	return r, nil
}
