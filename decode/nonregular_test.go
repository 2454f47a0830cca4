package decode_test

import (
	"errors"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/internal/safeopen/safeopentest"
)

// Open and Inspect refuse a FIFO, /dev/zero, a directory and a symlink loop
// at once, with a kind, instead of blocking or reading forever.
func TestOpenNonRegular(t *testing.T) {
	for name, c := range safeopentest.Hostile(t) {
		for _, open := range []func(string, ...decode.Option) (*decode.File, error){decode.Open, decode.Inspect} {
			err := safeopentest.Promptly(t, func() error {
				f, err := open(c.Path)
				if err == nil {
					f.Close()
				}
				return err
			})
			if !errors.Is(err, c.Kind) {
				t.Errorf("%s: %v, want kind %s", name, err, c.Kind.Name())
			}
		}
	}
}
