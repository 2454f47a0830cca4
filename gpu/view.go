package gpu

import (
	"fmt"
	"io"
	"os"
	"unsafe"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
)

// fileView is what the loader needs of a decoded file. Load builds it from a
// *decode.File; tests build it from bytes they generate.
type fileView struct {
	tensors   []viewTensor
	chunkSize int64
	alignment int64
	alg       format.DigestAlgorithm
	// mapping is the read-only mapping of the whole file, or nil. Its
	// capacity reaches the end of the last page: the kernel maps whole
	// pages, and the driver registers whole pages.
	mapping  []byte
	readerAt io.ReaderAt // reads the file; always set
	path     string      // the file's path, or "" when it has none
	size     int64
	// checked is set when the file asks for checked reads (a signature
	// policy, decode.WithCheckedReads): no window of the mapping is
	// copied to the device, only staged copies hashed where they landed.
	checked bool
	// verify is set when the file was opened under a verify mode or a
	// policy: the loader then checks every digest, WithVerify or not. A
	// mapped file that decode verified whole at open (VerifyEager, views
	// allowed) is not hashed again.
	verify bool
}

type viewTensor struct {
	name        string
	dtype       format.DType
	shape       []int64
	compression format.Compression
	offset      int64 // absolute file offset of the stored bytes
	stored      int64 // stored byte length
	length      int64 // decoded byte length
	numChunks   int
	chunkDigest func(i int) []byte
	readInto    func(dst []byte) error // decoded bytes; used for compressed tensors
	// verifyRange checks the chunks covering stored bytes [off, off+n)
	// straight from the file (decode.Tensor.VerifyRange), guarding against
	// a file truncated under its mapping; nil in fakes.
	verifyRange func(off, n int64) error
	// checkPadding checks the zero padding around the stored bytes (R25);
	// nil in fakes.
	checkPadding func() error
}

func viewOf(f *decode.File) (*fileView, error) {
	if f == nil {
		return nil, fmt.Errorf("gpu: nil file")
	}
	v := &fileView{
		chunkSize: f.ChunkSize(),
		alignment: f.Alignment(),
		alg:       f.DigestAlgorithm(),
		mapping:   pageCap(f.Mapping()),
		readerAt:  f.ReaderAt(),
		path:      f.Path(),
		size:      f.Size(),
		checked:   f.CheckedReads(),
	}
	switch mode := f.VerifyMode(); {
	case f.CheckedReads():
		v.verify = true
	case mode == decode.VerifyEager && f.Mapping() != nil:
		// Checked at open, and views are allowed.
	default:
		v.verify = mode != decode.VerifyNone
	}
	n := f.NumTensors()
	v.tensors = make([]viewTensor, 0, n)
	for i := range n {
		t := f.TensorAt(i)
		v.tensors = append(v.tensors, viewTensor{
			name:         t.Name,
			dtype:        t.DType,
			shape:        t.Shape,
			compression:  t.Compression,
			offset:       t.Offset,
			stored:       t.StoredLength,
			length:       t.Length,
			numChunks:    t.NumChunks(),
			chunkDigest:  t.ChunkDigest,
			readInto:     t.ReadInto,
			verifyRange:  t.VerifyRange,
			checkPadding: t.CheckPadding,
		})
	}
	return v, nil
}

// pageCap extends the capacity of a mapping to the end of its last page,
// which the kernel maps too (reading as zeros past the end of the file).
func pageCap(m []byte) []byte {
	if len(m) == 0 {
		return m
	}
	ps := os.Getpagesize()
	n := (len(m) + ps - 1) / ps * ps
	return unsafe.Slice(unsafe.SliceData(m), n)[:len(m)]
}
