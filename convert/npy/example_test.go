package npy_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/safeweights/safeweights/convert/npy"
	"github.com/safeweights/safeweights/format"
)

// Write a tensor as numpy.save would; numpy.load reads it back.
func ExampleWrite() {
	var buf bytes.Buffer
	if err := npy.Write(&buf, format.F32, []int64{2, 3}, make([]byte, 24)); err != nil {
		log.Fatal(err)
	}
	b := buf.Bytes()
	fmt.Printf("%q %d bytes\n", bytes.TrimRight(b[10:bytes.IndexByte(b, '\n')], " "), len(b))
	// Output: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" 152 bytes
}

// Tensor names become file names that are safe on every file system.
func ExampleSafeFileName() {
	fmt.Println(npy.SafeFileName("model.layers.1.weight"), npy.SafeFileName("../etc/passwd"))
	// Output: model.layers.1.weight ___etc_passwd
}
