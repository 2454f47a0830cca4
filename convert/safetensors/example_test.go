package safetensors_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/safeweights/safeweights/convert/safetensors"
)

// writeSafetensors writes a file as the Python safetensors library lays it
// out: an 8-byte header length, the JSON header, then the data.
func writeSafetensors(path string) {
	header := `{"__metadata__":{"format":"pt"},"bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"weight":{"dtype":"F16","shape":[2,2],"data_offsets":[8,16]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	b = append(b, make([]byte, 16)...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		log.Fatal(err)
	}
}

// Convert a safetensors file to .swt, and export it back.
func ExampleConvert() {
	dir, _ := os.MkdirTemp("", "safetensors-example")
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "model.safetensors")
	writeSafetensors(src)

	dst := filepath.Join(dir, "model.swt")
	rep, err := safetensors.Convert(context.Background(), src, dst)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range rep.Tensors {
		fmt.Println(t.Name, t.DType, t.Shape)
	}

	back := filepath.Join(dir, "back.safetensors")
	if err := safetensors.ExportFile(context.Background(), dst, back); err != nil {
		log.Fatal(err)
	}
	fmt.Println("exported:", filepath.Base(back))
	// Output:
	// bias F32 [2]
	// weight F16 [2 2]
	// exported: back.safetensors
}
