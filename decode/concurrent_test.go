package decode_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// TestConcurrentReaders shares one File between goroutines that look
// tensors up, read them (lazily verified), view them and verify ranges,
// while others run Verify. Run under -race it checks the package's claim of
// being safe for concurrent readers; it also checks every result.
func TestConcurrentReaders(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ts := randomTensors(r, 40)
	path := filepath.Join(t.TempDir(), "m.swt")
	write(t, path, ts, encode.WithChunkSize(1024), encode.WithAlignment(64))
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, open := range []func() (*decode.File, error){
		func() (*decode.File, error) { return decode.Open(path, decode.WithVerify(decode.VerifyLazy)) },
		func() (*decode.File, error) {
			return decode.NewReader(bytes.NewReader(raw), int64(len(raw)), decode.WithVerify(decode.VerifyLazy))
		},
	} {
		f, err := open()
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 8 {
			wg.Go(func() {
				for i := range ts {
					s := ts[(i+g*5)%len(ts)]
					tt, err := f.Tensor(s.name)
					if err != nil {
						errs <- err
						return
					}
					b, err := tt.Bytes()
					if err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(b, s.data) {
						errs <- errors.New("bytes differ for " + s.name)
						return
					}
					if tt.Compression == format.None && tt.StoredLength > 0 {
						if err := tt.VerifyRange(0, tt.StoredLength); err != nil {
							errs <- err
							return
						}
					}
				}
			})
		}
		for range 2 {
			wg.Go(func() {
				if err := f.Verify(context.Background(), decode.VerifyOptions{Workers: 3}); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		f.Close()
	}
}
