package sign_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
)

// TestConcurrentSigners: signers that sign one file at the same time, with
// embedded and with detached signatures, all end up in its block: each takes
// the file's lock before it reads the block it rewrites.
func TestConcurrentSigners(t *testing.T) {
	for _, detached := range []bool{false, true} {
		t.Run(fmt.Sprintf("detached=%v", detached), func(t *testing.T) {
			for round := range 5 {
				path := smallFile(t, t.TempDir(), format.BLAKE3)
				const n = 6
				var wg sync.WaitGroup
				errs := make([]error, n)
				var keys []ed25519.PrivateKey
				for i := range n {
					k := key(byte(10 + i))
					keys = append(keys, k)
					wg.Go(func() {
						errs[i] = sign.Sign(context.Background(), path, k, signOpts(fmt.Sprint(i), detached)...)
					})
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("round %d, signer %d: %v", round, i, err)
					}
				}
				kr := ring(t, keys...)
				var res *sign.Result
				var err error
				opts := []sign.VerifyOption{sign.WithRequireAll()}
				if detached {
					det, err := sign.ReadDetached(path)
					if err != nil {
						t.Fatal(err)
					}
					opts = append(opts, sign.WithDetachedSignature(det))
				}
				if res, err = verifyBytes(readFile(t, path), kr, opts...); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				if len(res.Trusted) != n {
					t.Fatalf("round %d: %d of %d signatures kept", round, len(res.Trusted), n)
				}
			}
		})
	}
}
