package sign_test

import (
	"testing"

	"github.com/safeweights/safeweights/format"
)

// TestBitFlip flips every bit of a small signed file, one at a time: full
// verification must fail for each, with a failure kind of the spec.
func TestBitFlip(t *testing.T) {
	path := smallFile(t, t.TempDir(), format.BLAKE3)
	signFile(t, path, key(1), "bit flip", false)
	b := readFile(t, path)
	kr := ring(t, key(1))
	if _, err := verifyBytes(b, kr); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes, %d flips", len(b), 8*len(b))
	kinds := map[string]int{}
	for i := range b {
		for bit := range 8 {
			b[i] ^= 1 << bit
			_, err := verifyBytes(b, kr)
			b[i] ^= 1 << bit
			if err == nil {
				t.Fatalf("flipping bit %d of byte %d verifies", bit, i)
			}
			k := format.KindOf(err)
			if k == nil {
				t.Fatalf("byte %d bit %d: error without a kind: %v", i, bit, err)
			}
			kinds[k.Name()]++
		}
	}
	t.Logf("outcomes: %v", kinds)
}
