package decode_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/testvectors"
)

func openVector(t *testing.T, name string) *decode.File {
	t.Helper()
	cs, err := testvectors.Core()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == name {
			p := filepath.Join(t.TempDir(), name+".swt")
			if err := os.WriteFile(p, c.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := decode.Open(p, decode.WithVerify(decode.VerifyNone))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}
	}
	t.Fatalf("no vector %s", name)
	return nil
}

// A 300-byte tensor declaring 2 GiB is refused by Bytes before it
// allocates the declared length (R27, the expansion bound).
func TestBytesExpansionBoundAllocatesLittle(t *testing.T) {
	f := openVector(t, "zstd-expansion-bound")
	tt := f.TensorAt(0)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_, err := tt.Bytes()
	runtime.ReadMemStats(&m1)
	if cerr := tt.CheckFrame(); !errors.Is(cerr, format.ErrCompression) {
		t.Fatalf("CheckFrame: %v, want ErrCompression", cerr)
	}
	if !errors.Is(err, format.ErrCompression) {
		t.Fatalf("Bytes: %v, want ErrCompression", err)
	}
	if a := m1.TotalAlloc - m0.TotalAlloc; a > 1<<20 {
		t.Fatalf("Bytes allocated %d bytes for a 300-byte frame", a)
	}
}

// Verify and Bytes agree on every compressed vector: a frame Bytes refuses
// never verifies.
func TestVerifyAgreesWithBytes(t *testing.T) {
	for _, name := range []string{"zstd-checksum-wrong", "zstd-dictionary-id", "zstd-skippable-frame", "zstd-reserved-bit",
		"zstd-no-last-block", "zstd-trailing-garbage", "zstd-decodes-to-other-length", "zstd-expansion-bound",
		"ok-zstd-small-window", "ok-zstd-non-single-segment"} {
		f := openVector(t, name)
		verr := f.Verify(context.Background(), decode.VerifyOptions{})
		_, berr := f.TensorAt(0).Bytes()
		if (verr == nil) != (berr == nil) || (verr != nil && !errors.Is(verr, format.ErrCompression)) {
			t.Errorf("%s: Verify: %v, Bytes: %v", name, verr, berr)
		}
	}
}
