package cuda

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestLoadMissingLibrary(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "libcuda.so.1"))
	if !errors.Is(err, ErrNoDriver) {
		t.Fatalf("Load of a missing library: got %v, want ErrNoDriver", err)
	}
}

func TestLoadLibraryWithoutSymbols(t *testing.T) {
	// libc loads everywhere this binding runs but has no CUDA symbols.
	_, err := Load("libc.so.6")
	if err == nil {
		t.Fatal("Load of libc succeeded")
	}
	if !errors.Is(err, ErrNoDriver) {
		t.Fatalf("got %v, want ErrNoDriver", err)
	}
}

func TestLoadCuFileMissing(t *testing.T) {
	_, err := LoadCuFile(filepath.Join(t.TempDir(), "libcufile.so.0"))
	if !errors.Is(err, ErrNoCuFile) {
		t.Fatalf("got %v, want ErrNoCuFile", err)
	}
}

func cstr(s string) *byte {
	b := append([]byte(s), 0)
	return &b[0]
}

func TestErrorTranslation(t *testing.T) {
	n := errorNamer{
		getErrorName: func(r Result, s **byte) Result {
			if r == ErrorOutOfMemory {
				*s = cstr("CUDA_ERROR_OUT_OF_MEMORY")
				return Success
			}
			return ErrorInvalidValue
		},
		getErrorString: func(r Result, s **byte) Result {
			if r == ErrorOutOfMemory {
				*s = cstr("out of memory")
				return Success
			}
			return ErrorInvalidValue
		},
	}
	if err := n.check("cuMemAlloc_v2", Success); err != nil {
		t.Fatalf("Success became %v", err)
	}
	err := n.check("cuMemAlloc_v2", ErrorOutOfMemory)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %T, want *Error", err)
	}
	if ce.Op != "cuMemAlloc_v2" || ce.Code != ErrorOutOfMemory || ce.Name != "CUDA_ERROR_OUT_OF_MEMORY" || ce.Text != "out of memory" {
		t.Fatalf("got %+v", ce)
	}
	if !errors.Is(err, ErrorOutOfMemory) || errors.Is(err, ErrorInvalidValue) {
		t.Fatal("errors.Is does not match the result code")
	}

	// A code the driver cannot name still becomes an error with its number.
	err = n.check("cuInit", Result(999))
	if !errors.As(err, &ce) || ce.Code != 999 || ce.Name != "CUresult(999)" || ce.Text != "" {
		t.Fatalf("unnamed code: got %+v", err)
	}
	// So does any code when the namer functions are absent.
	var none errorNamer
	if err := none.check("cuInit", ErrorNoDevice); !errors.Is(err, ErrorNoDevice) {
		t.Fatalf("got %v", err)
	}
}

func TestCuFileErrorTranslation(t *testing.T) {
	if err := cuFileCheck("cuFileDriverOpen", 0); err != nil {
		t.Fatalf("success became %v", err)
	}
	err := cuFileCheck("cuFileDriverOpen", uint64(uint32(ErrorNoDevice))<<32|5011)
	var ce *CuFileError
	if !errors.As(err, &ce) || ce.Code != 5011 || ce.CU != ErrorNoDevice {
		t.Fatalf("got %+v", err)
	}
}

func TestGoStringBounded(t *testing.T) {
	b := make([]byte, 2*maxCString)
	for i := range b {
		b[i] = 'x'
	}
	if got := goString(&b[0]); len(got) != maxCString {
		t.Fatalf("unterminated string read %d bytes, want %d", len(got), maxCString)
	}
	if goString(nil) != "" {
		t.Fatal("nil pointer gave a string")
	}
}
