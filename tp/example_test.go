package tp_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/tp"
)

// Rank 1 of 2 reads its half of every weight's rows and the whole of
// everything that Rows leaves replicated; each slice is hashed as it is read.
func ExampleNewPlan() {
	dir, _ := os.MkdirTemp("", "tp-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.swt")
	w, err := encode.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	w.Add("proj.weight", format.F32, []int64{6, 4}, make([]byte, 4*6*4))
	w.Add("scale", format.F32, nil, make([]byte, 4)) // rank 0: replicated
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	f, err := decode.Open(path, decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	plan, err := tp.NewPlan(f, 1, 2, tp.Rows)
	if err != nil {
		log.Fatal(err)
	}
	parts, err := plan.Read(context.Background(), f)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range plan.Parts {
		fmt.Printf("%s: dim %d, slice [%v], %d bytes\n", p.Name, p.Dim, p.Slice, len(parts[p.Name]))
	}
	// Output:
	// proj.weight: dim 0, slice [3:6,0:4], 48 bytes
	// scale: dim -1, slice [], 4 bytes
}
