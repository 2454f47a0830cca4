package httpsrc_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/source/httpsrc"
)

func Example() {
	// A server of static files: http.ServeContent answers range requests
	// and honours If-Match on the ETag it is given.
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.swt")
	w, _ := encode.Create(path)
	w.Add("w", format.F32, []int64{2}, []byte{0, 0, 128, 63, 0, 0, 0, 64})
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("ETag", `"1"`)
		http.ServeContent(rw, r, "model.swt", time.Time{}, bytes.NewReader(raw))
	}))
	defer srv.Close()

	ctx := context.Background()
	src, err := httpsrc.Open(ctx, srv.URL+"/model.swt")
	if err != nil {
		log.Fatal(err)
	}
	f, err := decode.NewReaderContext(ctx, src, src.Size(), decode.WithVerify(decode.VerifyLazy), decode.WithCloser(src))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	t, _ := f.Tensor("w")
	b, err := t.Bytes() // read, and hashed where it landed
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Name, t.Shape, len(b))
	// Output: w [2] 8
}
