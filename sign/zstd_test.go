package sign_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
	"github.com/safeweights/safeweights/testvectors"
)

// A file whose digests are right but whose zstd frame is invalid (R27) is
// refused by Sign: it would verify but not decode.
func TestRefusesToSignBadFrame(t *testing.T) {
	cs, err := testvectors.Core()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cs {
		if c.Rule != "R27" || !c.Full || c.Kind != format.ErrCompression {
			continue
		}
		n++
		path := filepath.Join(t.TempDir(), c.Name+".swt")
		if err := os.WriteFile(path, c.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		err := sign.Sign(context.Background(), path, key(1))
		wantKind(t, err, format.ErrCompression)
		if !bytes.Equal(readFile(t, path), c.Data) {
			t.Fatalf("%s: refused signing changed the file", c.Name)
		}
	}
	if n < 10 {
		t.Fatalf("only %d R27 vectors", n)
	}
}
