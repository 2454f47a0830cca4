package source_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	"github.com/safeweights/safeweights/source"
)

// memBackend is a Backend over bytes in memory, standing in for an object
// store: a backend only reads one range per call and says what the
// response told of the object.
type memBackend struct{ data []byte }

func (m memBackend) Name() string { return "mem://object" }

func (m memBackend) ReadRange(ctx context.Context, p []byte, off int64, version string) (int, source.Info, error) {
	info := source.Info{Size: int64(len(m.data)), Version: `"v1"`}
	if version != "" && version != info.Version {
		return 0, info, source.ErrChanged
	}
	n, err := bytes.NewReader(m.data).ReadAt(p, off)
	return n, info, err
}

func ExampleNewRemote() {
	b := memBackend{data: bytes.Repeat([]byte("swt!"), 10_000)}
	// The remote layer adds the speculative first read, pinning, retries
	// and parallel parts to any backend.
	src, err := source.NewRemote(context.Background(), b, source.WithPartSize(8192), source.WithConcurrency(4))
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	p := make([]byte, 20_000) // three parts, read in parallel into p
	if _, err := src.ReadAt(p, 100); err != nil && err != io.EOF {
		log.Fatal(err)
	}
	fmt.Println(src.Size(), string(p[:8]))
	// Output: 40000 swt!swt!
}
