package decode_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// writeModel writes a 3x4 float32 tensor holding 0, 1, ..., 11.
func writeModel(dir string) string {
	path := filepath.Join(dir, "model.swt")
	w, err := encode.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	b := make([]byte, 4*12)
	for i := range 12 {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(i)))
	}
	if err := w.Add("w", format.F32, []int64{3, 4}, b); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	return path
}

// Open a file, check every digest, and view a tensor in place.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "decode-example")
	defer os.RemoveAll(dir)
	path := writeModel(dir)

	f, err := decode.Open(path, decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := f.Verify(context.Background(), decode.VerifyOptions{}); err != nil {
		log.Fatal(err)
	}
	t, err := f.Tensor("w")
	if err != nil {
		log.Fatal(err)
	}
	v, err := decode.View[float32](t) // zero-copy: a view of the mapping
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.DType, t.Shape, v[4:8])
	// Output: F32 [3 4] [4 5 6 7]
}

// Inspect reads the header only, so a caller can refuse a file by its
// tensors before any tensor byte is read.
func ExampleInspect() {
	dir, _ := os.MkdirTemp("", "decode-example")
	defer os.RemoveAll(dir)
	path := writeModel(dir)

	f, err := decode.Inspect(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	for t := range f.All() {
		fmt.Println(t.Name, t.DType, t.Shape)
	}
	// Output: w F32 [3 4]
}

// Read one box of a tensor: only the chunks it touches are read and hashed.
func ExampleTensor_ReadSlice() {
	dir, _ := os.MkdirTemp("", "decode-example")
	defer os.RemoveAll(dir)
	path := writeModel(dir)

	f, err := decode.Open(path, decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	t, _ := f.Tensor("w")
	b, err := t.ReadSlice(decode.Slice{{Start: 1, Stop: 3}, {Start: 2, Stop: 4}}) // w[1:3, 2:4]
	if err != nil {
		log.Fatal(err)
	}
	for i := 0; i < len(b); i += 4 {
		fmt.Print(math.Float32frombits(binary.LittleEndian.Uint32(b[i:])), " ")
	}
	fmt.Println()
	// Output: 6 7 10 11
}

// Every refusal wraps one failure kind of a closed list.
func ExampleNewReader_errors() {
	junk := []byte("this is not a safeweights file, whatever its name says")
	_, err := decode.NewReader(bytes.NewReader(junk), int64(len(junk)))
	fmt.Println(errors.Is(err, format.ErrMagic), format.KindOf(err).Name())
	// Output: true magic
}
