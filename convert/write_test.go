package convert_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
)

// A state buffer's role is the tensor attribute "role"; a parameter has
// none (spec/CONVERSION.md N12).
func TestWriteRole(t *testing.T) {
	m := &convert.Model{
		SourceFormat: "bson.jl",
		Tensors: []convert.Tensor{
			{Name: "bn.γ", DType: format.F32, Shape: []int64{2}, Data: make([]byte, 8)},
			{Name: "bn.μ", DType: format.F32, Shape: []int64{2}, Data: make([]byte, 8), Role: convert.RoleState},
		},
	}
	dst := filepath.Join(t.TempDir(), "m.swt")
	if err := convert.WriteFile(context.Background(), dst, m, nil); err != nil {
		t.Fatal(err)
	}
	f, err := decode.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, want := range map[string]string{"bn.γ": "", "bn.μ": "state"} {
		x, err := f.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := x.Attributes["role"]; got != want || ok != (want != "") {
			t.Errorf("%s: role %q (set %v), want %q", name, got, ok, want)
		}
	}
}
