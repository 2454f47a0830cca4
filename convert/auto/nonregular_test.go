package auto

import (
	"errors"
	"testing"

	"github.com/safeweights/safeweights/internal/safeopen/safeopentest"
)

func TestDetectFileNonRegular(t *testing.T) {
	for name, c := range safeopentest.Hostile(t) {
		err := safeopentest.Promptly(t, func() error { _, err := DetectFile(c.Path); return err })
		if !errors.Is(err, c.Kind) {
			t.Errorf("%s: %v, want kind %s", name, err, c.Kind.Name())
		}
	}
}
