package jld2_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/safeweights/safeweights/convert/jld2"
)

// Convert a JLD2 (HDF5) file; this one, from the package's test data, holds
// a Float16 and a Bool array. The reader opens no other file and runs no
// code.
func ExampleConvert() {
	dir, _ := os.MkdirTemp("", "jld2-example")
	defer os.RemoveAll(dir)

	rep, err := jld2.Convert(context.Background(), filepath.Join("testdata", "float16-bool.h5"), filepath.Join(dir, "model.swt"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rep.SourceFormat)
	for _, t := range rep.Tensors {
		fmt.Println(t.Name, t.DType, t.Shape)
	}
	// Output:
	// jld2
	// half F16 [3 5]
	// mask BOOL [17]
}
