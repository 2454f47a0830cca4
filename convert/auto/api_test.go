package auto

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/bson"
	"github.com/safeweights/safeweights/convert/internal/convtest"
	"github.com/safeweights/safeweights/convert/jld2"
	"github.com/safeweights/safeweights/convert/safetensors"
)

func TestConvertAPI(t *testing.T) {
	convtest.Check(t, Convert, sample, bson.Converter)
	// The same through a safetensors source (the first conversion's export).
	dir := t.TempDir()
	swt, st := filepath.Join(dir, "m.swt"), filepath.Join(dir, "m.safetensors")
	if _, err := Convert(context.Background(), sample, swt); err != nil {
		t.Fatal(err)
	}
	if _, err := Convert(context.Background(), swt, st); err != nil {
		t.Fatal(err)
	}
	convtest.Check(t, Convert, st, safetensors.Converter)
}

// Each converter takes its own limits from one list and ignores the others'.
func TestConvertRoutesLimits(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "out.swt")
	others := []convert.Option{jld2.WithLimits(jld2.Limits{MaxNodes: 1}), safetensors.WithLimits(safetensors.Limits{MaxTensors: 1})}
	if _, err := Convert(context.Background(), sample, dst, others...); err != nil {
		t.Fatalf("limits of other converters applied: %v", err)
	}
	os.Remove(dst)
	_, err := Convert(context.Background(), sample, dst, append(others, bson.WithLimits(bson.Limits{MaxTensors: 1}))...)
	if !errors.Is(err, convert.ErrLimit) {
		t.Fatalf("bson limit: error %v, want ErrLimit", err)
	}
	m, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Read(m, bson.WithLimits(bson.Limits{MaxTensors: 1})); !errors.Is(err, convert.ErrLimit) {
		t.Fatalf("Read with a bson limit: error %v, want ErrLimit", err)
	}
	if got, err := Read(m); err != nil || got.Report.Converter != bson.Converter {
		t.Fatalf("Read: %v", err)
	}
}
