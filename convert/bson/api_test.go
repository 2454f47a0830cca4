package bson

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/internal/convtest"
)

func TestConvertAPI(t *testing.T) {
	src := filepath.Join(t.TempDir(), "model.bson")
	if err := os.WriteFile(src, synthDense(), 0o644); err != nil {
		t.Fatal(err)
	}
	convtest.Check(t, Convert, src, Converter)
}

// The version is that of the spec the converter implements, and the name
// is built the one way.
func TestVersion(t *testing.T) {
	if v := convtest.SpecVersion(t, "../../spec/convert-bson.md"); v != Version {
		t.Errorf("spec/convert-bson.md is version %s, the converter says %s", v, Version)
	}
	if Converter != convert.ConverterName("bson", Version) {
		t.Errorf("Converter %q", Converter)
	}
	m, err := Read(synthDense())
	if err != nil {
		t.Fatal(err)
	}
	if m.Report.Converter != Converter {
		t.Errorf("Read's report names %q", m.Report.Converter)
	}
}

func TestWithLimitsValidated(t *testing.T) {
	if _, err := Convert(t.Context(), "unused.bson", filepath.Join(t.TempDir(), "x.swt"), WithLimits(Limits{MaxDims: -1})); err == nil {
		t.Fatal("negative limit accepted")
	}
}
