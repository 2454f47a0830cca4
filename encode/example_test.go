package encode_test

import (
	"encoding/binary"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// Write two tensors and some metadata. The file appears at its path only
// when Close has written and synced all of it.
func ExampleCreate() {
	dir, err := os.MkdirTemp("", "encode-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.swt")

	w, err := encode.Create(path, encode.WithProducer("example"))
	if err != nil {
		log.Fatal(err)
	}
	weight := make([]byte, 4*2*3)
	for i := range 6 {
		binary.LittleEndian.PutUint32(weight[4*i:], math.Float32bits(float32(i)))
	}
	w.SetMetadata("license", "apache-2.0")
	if err := w.Add("layer.weight", format.F32, []int64{2, 3}, weight); err != nil {
		log.Fatal(err)
	}
	if err := w.Add("layer.bias", format.F32, []int64{2}, make([]byte, 8)); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	f, err := decode.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fmt.Println(f.Producer(), f.Metadata()["license"], f.Names())
	// Output: example apache-2.0 [layer.bias layer.weight]
}
