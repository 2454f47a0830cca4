package jld2

import (
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/internal/convtest"
)

func TestConvertAPI(t *testing.T) {
	convtest.Check(t, Convert, filepath.Join("testdata", "float16-bool.h5"), Converter)
}

// The version is that of the spec the converter implements, and the name
// is built the one way.
func TestVersion(t *testing.T) {
	if v := convtest.SpecVersion(t, "../../spec/convert-jld2.md"); v != Version {
		t.Errorf("spec/convert-jld2.md is version %s, the converter says %s", v, Version)
	}
	if Converter != convert.ConverterName("jld2", Version) {
		t.Errorf("Converter %q", Converter)
	}
	m, err := Read(readTestdata(t, "float16-bool.h5"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Report.Converter != Converter {
		t.Errorf("Read's report names %q", m.Report.Converter)
	}
}

func TestWithLimitsValidated(t *testing.T) {
	if _, err := Convert(t.Context(), "unused.h5", filepath.Join(t.TempDir(), "x.swt"), WithLimits(Limits{MaxChunks: -1})); err == nil {
		t.Fatal("negative limit accepted")
	}
}
