package auto_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/auto"
	"github.com/safeweights/safeweights/convert/bson"
	"github.com/safeweights/safeweights/convert/safetensors"
	"github.com/safeweights/safeweights/encode"
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

// Options are the same for every converter: here a limit for the
// safetensors reader, the writer's chunk size and a progress callback. A
// converter ignores the limits of the others, so one list serves whatever
// the source turns out to be.
func ExampleConvert_options() {
	dir, _ := os.MkdirTemp("", "auto-example")
	defer os.RemoveAll(dir)
	header := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(append(b, header...), make([]byte, 24)...)
	src := filepath.Join(dir, "model.safetensors")
	if err := os.WriteFile(src, b, 0o644); err != nil {
		log.Fatal(err)
	}

	_, err := auto.Convert(context.Background(), src, filepath.Join(dir, "model.swt"),
		safetensors.WithLimits(safetensors.Limits{MaxTensors: 16}),
		bson.WithLimits(bson.Limits{MaxDepth: 64}), // not a BSON.jl file: ignored
		convert.WithEncodeOptions(encode.WithChunkSize(1<<20)),
		convert.WithProgress(func(done, total int64) { fmt.Printf("%d of %d bytes\n", done, total) }))
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// 0 of 24 bytes
	// 8 of 24 bytes
	// 24 of 24 bytes
}
