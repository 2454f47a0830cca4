package remote_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/source/remote"
)

func ExampleOpenFile() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ref := filepath.Join(dir, "model.swt") // or "https://host/model.swt"
	w, _ := encode.Create(ref)
	w.Add("bias", format.U8, []int64{3}, []byte{1, 2, 3})
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	f, err := remote.OpenFile(context.Background(), ref, remote.WithDecode(decode.WithVerify(decode.VerifyLazy)))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	t, _ := f.Tensor("bias")
	b, _ := t.Bytes()
	fmt.Println(b)
	// Output: [1 2 3]
}
