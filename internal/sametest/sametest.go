// Package sametest holds the expectations that the BSON.jl and JLD2
// converters' tests share: models each test suite builds in its own
// format, which must convert to the same tensors (spec/CONVERSION.md
// section 2). It is used by tests only.
package sametest

import (
	_ "embed"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/convert"
)

//go:embed same-model.json
var spec []byte

// Tensor is one expected tensor.
type Tensor struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
	Role  string  `json:"role"`
}

// Model is what one model must convert to.
type Model struct {
	// File names the file the model is built as, when several
	// expectations share one ("" for the model's own name).
	File string `json:"file"`
	// IncludeOptimizer: converted with optimiser state kept.
	IncludeOptimizer bool              `json:"include_optimizer"`
	Tensors          []Tensor          `json:"tensors"`
	Dropped          map[string]string `json:"dropped"`
}

// Models returns the expectations by model name.
func Models(t testing.TB) map[string]Model {
	var f struct {
		Models map[string]Model `json:"models"`
	}
	if err := json.Unmarshal(spec, &f); err != nil {
		t.Fatal(err)
	}
	return f.Models
}

// Check compares a converted model with the expectation for name: its
// tensors in order (name, dtype, shape, role), and every expected drop
// reported with its kind at its path.
func Check(t testing.TB, name string, m *convert.Model) {
	t.Helper()
	want, ok := Models(t)[name]
	if !ok {
		t.Fatalf("no expectation for %s", name)
	}
	var got []Tensor
	for _, x := range m.Tensors {
		got = append(got, Tensor{Name: x.Name, DType: x.DType.String(), Shape: x.Shape, Role: x.Role})
	}
	if !slices.EqualFunc(got, want.Tensors, func(a, b Tensor) bool {
		return a.Name == b.Name && a.DType == b.DType && slices.Equal(a.Shape, b.Shape) && a.Role == b.Role
	}) {
		t.Errorf("%s: tensors %+v, want %+v", name, got, want.Tensors)
	}
	for p, k := range want.Dropped {
		found := false
		for _, d := range m.Report.Dropped {
			found = found || d.Kind == k && (d.Path == p || strings.HasPrefix(d.Path, p+"."))
		}
		if !found {
			t.Errorf("%s: nothing at or below %s reported as %q (report %+v)", name, p, k, m.Report.Dropped)
		}
	}
}
