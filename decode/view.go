package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/safeweights/safeweights/format"
)

// Element is a Go type that a tensor can be viewed as. F16, BF16 and the F8
// types have no Go type: view them as uint16 or uint8.
type Element interface {
	~float32 | ~float64 | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint8 | ~uint16 | ~uint32 | ~uint64 | ~complex64 | ~complex128
}

// elementOK reports whether T can view dtype d. It goes by T's underlying
// kind, so a named type (type Weight float32) views exactly what its
// underlying type views, and never a different type of the same size.
func elementOK[T Element](d format.DType) bool {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Float32:
		return d == format.F32
	case reflect.Float64:
		return d == format.F64
	case reflect.Int8:
		return d == format.I8
	case reflect.Int16:
		return d == format.I16
	case reflect.Int32:
		return d == format.I32
	case reflect.Int64:
		return d == format.I64
	case reflect.Uint8:
		return d == format.U8 || d == format.Bool || d == format.F8E4M3 || d == format.F8E5M2
	case reflect.Uint16:
		return d == format.U16 || d == format.F16 || d == format.BF16
	case reflect.Uint32:
		return d == format.U32
	case reflect.Uint64:
		return d == format.U64
	case reflect.Complex64:
		return d == format.C64
	case reflect.Complex128:
		return d == format.C128
	}
	return false
}

var hostLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// ErrElementType is returned by View for an element type that does not
// match the tensor's dtype.
var ErrElementType = errors.New("decode: element type does not match the dtype")

// View returns the tensor's elements as a []T. On a little-endian host, for
// a raw tensor of a mapped file whose data is aligned for T (the format's
// alignment guarantees it), the slice is a read-only view of the mapping,
// valid until Close: writing to it faults. Otherwise (checked reads,
// compressed tensors, NewReader) it is a copy. A T that does not match the
// dtype gives ErrElementType.
func View[T Element](t *Tensor) ([]T, error) {
	if !elementOK[T](t.DType) {
		var z T
		return nil, fmt.Errorf("%w: tensor %q is %v, cannot view as %T", ErrElementType, t.Name, t.DType, z)
	}
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	var z T
	size := int(unsafe.Sizeof(z))
	n := len(b) / size
	if n == 0 {
		return []T{}, nil
	}
	if hostLittleEndian && uintptr(unsafe.Pointer(&b[0]))%unsafe.Alignof(z) == 0 {
		return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n), nil
	}
	out := make([]T, n)
	copyLE(out, b, size)
	return out, nil
}

// copyLE decodes little-endian elements of b into out (a big-endian host or
// an unaligned buffer).
func copyLE[T Element](out []T, b []byte, size int) {
	le := binary.LittleEndian
	// A complex64 is two float32 halves, each little-endian on its own.
	complexPair := reflect.TypeFor[T]().Kind() == reflect.Complex64
	p := unsafe.Pointer(&out[0])
	for i := range out {
		src := b[i*size : (i+1)*size]
		dst := unsafe.Add(p, i*size)
		switch size {
		case 1:
			*(*uint8)(dst) = src[0]
		case 2:
			*(*uint16)(dst) = le.Uint16(src)
		case 4:
			*(*uint32)(dst) = le.Uint32(src)
		case 8:
			if complexPair {
				*(*uint32)(dst) = le.Uint32(src)
				*(*uint32)(unsafe.Add(dst, 4)) = le.Uint32(src[4:])
			} else {
				*(*uint64)(dst) = le.Uint64(src)
			}
		case 16:
			*(*uint64)(dst) = le.Uint64(src)
			*(*uint64)(unsafe.Add(dst, 8)) = le.Uint64(src[8:])
		}
	}
}
