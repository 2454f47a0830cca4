package convert

import (
	"slices"
	"testing"
)

func TestFieldNames(t *testing.T) {
	cases := []struct {
		typ     string
		n       int
		nparams int
		want    []string
	}{
		{"Flux.Dense", 3, -1, []string{"weight", "bias", "σ"}},
		{"Main.Flux.Dense", 3, -1, []string{"weight", "bias", "σ"}},
		{"Flux.Conv", 6, -1, []string{"σ", "weight", "bias", "stride", "pad", "dilation"}},
		{"Flux.Conv", 7, -1, []string{"σ", "weight", "bias", "stride", "pad", "dilation", "groups"}},
		{"Flux.BatchNorm", 8, -1, []string{"λ", "β", "γ", "μ", "σ²", "ϵ", "momentum", "active"}},
		{"Flux.BatchNorm", 11, -1, []string{"λ", "β", "γ", "μ", "σ²", "ϵ", "momentum", "affine", "track_stats", "active", "chs"}},
		{"Flux.LSTMCell", 5, -1, []string{"Wi", "Wh", "b", "h", "c"}},
		{"Flux.LSTMCell", 4, -1, []string{"Wi", "Wh", "b", "state0"}},
		{"Flux.GRUCell", 4, 2, []string{"Wi", "Wh", "b", "h"}},
		{"Flux.GRUCell", 4, 3, []string{"Wi", "Wh", "b", "state0"}},
		{"Flux.RNNCell", 5, 3, []string{"σ", "Wi", "Wh", "b", "h"}},
		{"Flux.RNNCell", 5, 4, []string{"σ", "Wi", "Wh", "b", "state0"}},
		{"Flux.Recur", 2, -1, []string{"cell", "state"}},
		{"Flux.Recur", 3, -1, []string{"cell", "init", "state"}},
		{"Flux.LayerNorm", 5, -1, []string{"λ", "diag", "ϵ", "size", "affine"}},
		{"Flux.Chain{Tuple{}}", 1, -1, []string{"layers"}},
	}
	for _, c := range cases {
		got, ok := FieldNamesParams(c.typ, c.n, c.nparams)
		if !ok || !slices.Equal(got, c.want) {
			t.Errorf("FieldNamesParams(%q, %d, %d) = %v, %v; want %v", c.typ, c.n, c.nparams, got, ok, c.want)
		}
	}
	if _, ok := FieldNames("Flux.Dense", 4); ok {
		t.Error("Flux.Dense with 4 fields is not a known layout")
	}
	if _, ok := FieldNames("Main.MyLayer", 2); ok {
		t.Error("an unknown type has no field names")
	}
	for typ, want := range map[string]bool{
		"Flux.Optimise.ADAM":                      true,
		"Optimisers.Leaf{Optimisers.Adam, Any}":   true,
		"Main.Optimisers.Adam":                    true,
		"Flux.Dense":                              false,
		"Optimisers.Restructure":                  false,
		"Optimisers.Restructure{Flux.Chain, Any}": false,
	} {
		if got := IsOptimiser(typ); got != want {
			t.Errorf("IsOptimiser(%q) = %v, want %v", typ, got, want)
		}
	}
}

func TestNameJoin(t *testing.T) {
	cases := []struct {
		parts []string
		want  string
	}{
		{[]string{"model", "layers", "1", "weight"}, "model.layers.1.weight"},
		{[]string{"a.b", "100%"}, "a%2Eb.100%25"},
		{[]string{"σ²"}, "σ²"},
		{[]string{"%2E"}, "%252E"},
	}
	for _, c := range cases {
		got := NameJoin(c.parts...)
		if got != c.want {
			t.Errorf("NameJoin(%q) = %q; want %q", c.parts, got, c.want)
		}
		if back := NameSplit(got); !slices.Equal(back, c.parts) {
			t.Errorf("NameSplit(%q) = %q; want %q", got, back, c.parts)
		}
	}
}

// TestTypeName: legacy JLD2 spellings normalise to the names the tables use
// (spec/CONVERSION.md N3b).
func TestTypeName(t *testing.T) {
	for in, want := range map[string]string{
		"Tracker.Tracker.TrackedArray{Core.Core.Float32,2}": "Tracker.TrackedArray",
		"Core.Core.Bool":              "Core.Bool",
		"Optimise.Optimise.ADAM":      "Flux.Optimise.ADAM",
		"Flux.Optimise.Optimise.ADAM": "Flux.Optimise.ADAM",
		"Main.Base.IdDict":            "Base.IdDict",
		"Tracker.Tracked":             "Tracker.Tracked",
		"Flux.Flux":                   "Flux.Flux",
		"Knet.KnetArrays.KnetArray":   "Knet.KnetArrays.KnetArray",
	} {
		if got := TypeName(in); got != want {
			t.Errorf("TypeName(%q) = %q, want %q", in, got, want)
		}
	}
	if !IsOptimiser("Optimise.Optimise.ADAM") || !IsOptimiser("Knet.Train20.Rmsprop") || IsOptimiser("Knet.KnetArrays.KnetArray") {
		t.Error("IsOptimiser")
	}
	for _, n := range []string{"Tracker.Tracker.TrackedArray", "Knet.KnetArrays.JLD2KnetArray{Float32,2}", "Knet.FileIO_gpu.ParamJLD"} {
		if _, ok := WrapperOf(n); !ok {
			t.Errorf("%s is not a wrapper", n)
		}
	}
	if _, ok := WrapperOf("Other.ParamJLD"); ok {
		t.Error("ParamJLD outside Knet is a wrapper")
	}
	if d, ok := ElementType("Core.Core.Float32"); !ok || d.String() != "F32" {
		t.Errorf("ElementType: %v %v", d, ok)
	}
	if got := TypeParams("A{Float32, B{C,D}, 2}"); !slices.Equal(got, []string{"Float32", "B{C,D}", "2"}) {
		t.Errorf("TypeParams: %q", got)
	}
}
