package convert_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
)

// A reader for another format builds a Model; WriteFile turns it into a
// .swt file with the structure recorded as data.
func ExampleWriteFile() {
	dir, _ := os.MkdirTemp("", "convert-example")
	defer os.RemoveAll(dir)
	m := &convert.Model{
		SourceFormat: "safetensors",
		Tensors:      []convert.Tensor{{Name: "w", DType: format.F32, Shape: []int64{2}, Data: make([]byte, 8)}},
		Structure: &convert.Node{Kind: "struct", Type: "Flux.Dense", Fields: []convert.Field{
			{Name: "weight", Node: &convert.Node{Kind: "array", Tensor: "w", DType: "F32"}},
			{Name: "σ", Node: &convert.Node{Kind: "function", Function: "relu"}},
		}},
	}
	dst := filepath.Join(dir, "model.swt")
	if err := convert.WriteFile(context.Background(), dst, m, nil); err != nil {
		log.Fatal(err)
	}
	f, err := decode.Inspect(dst)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fmt.Println(f.Metadata()[convert.MetaStructure])
	// Output: {"kind":"struct","type":"Flux.Dense","fields":[{"name":"weight","node":{"kind":"array","tensor":"w","dtype":"F32"}},{"name":"σ","node":{"kind":"function","function":"relu"}}]}
}
