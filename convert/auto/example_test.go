package auto_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/safeweights/safeweights/convert/auto"
)

// The format is recognised by content, never by name: a safetensors file
// named model.bin converts all the same.
func ExampleConvert() {
	dir, _ := os.MkdirTemp("", "auto-example")
	defer os.RemoveAll(dir)
	header := `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(append(b, header...), make([]byte, 8)...)
	src := filepath.Join(dir, "model.bin")
	if err := os.WriteFile(src, b, 0o644); err != nil {
		log.Fatal(err)
	}

	f, err := auto.DetectFile(src)
	if err != nil {
		log.Fatal(err)
	}
	rep, err := auto.Convert(context.Background(), src, filepath.Join(dir, "model.swt"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f, rep.SourceFormat, len(rep.Tensors))
	// Output: safetensors safetensors 1
}
