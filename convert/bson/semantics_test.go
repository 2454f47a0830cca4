package bson

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/sametest"
)

// tracked is a Tracker.jl TrackedArray of x whose gradient is backref g.
func tracked(x D, g int) D {
	tr := strct(dt(path("Tracker", "Tracked")), uint32Prim(0), nil, true, br(g))
	return strct(dt(path("Tracker", "TrackedArray"), tF32, int64(1)), tr, x, br(g))
}

func uint32Prim(v uint32) D {
	return prim(dt(path("Core", "UInt32")), []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
}

func knetArray(dims []int64, b []byte) D {
	d := make(A, len(dims))
	for i, x := range dims {
		d[i] = x
	}
	ptr := strct(dt(path("Knet", "KnetArrays", "KnetPtr")), b, int64(len(b)), int64(-1), nil)
	return strct(dt(path("Knet", "KnetArrays", "KnetArray"), tF32, int64(len(dims))), ptr, tup(d...))
}

func knetFile(dims []int64, b []byte) []byte {
	rms := strct(dt(path("Knet", "Train20", "Rmsprop")), 0.01, 0.9, 1e-6, 0.0, knetArray(dims, slices.Clone(b)))
	return encode(D{{"w", strct(dt(path("AutoGrad", "Param"), dt(path("Knet", "KnetArrays", "KnetArray"))), knetArray(dims, b), rms)}})
}

// The models of internal/sametest, as BSON.jl writes them: both
// converters give the same tensors (spec/CONVERSION.md section 2).
func TestSameModel(t *testing.T) {
	buf := f32s(6, 1)
	files := map[string][]byte{
		"tracker-dense": encode(D{
			{"model", strct(dt(path("Flux", "Dense")), tracked(f32arr(1, 2, 3), 1), tracked(f32arr(2, 2), 2), fn("NNlib", "relu"))},
			{"_backrefs", A{f32arr(0, 2, 3), f32arr(0, 2)}},
		}),
		"knet-param": knetFile([]int64{2, 3}, buf),
		"batchnorm": encode(D{{"bn", strct(dt(path("Flux", "BatchNorm")),
			fn("Base", "identity"), f32arr(1, 2), f32arr(2, 2), f32arr(3, 2), f32arr(4, 2), 1e-5, 0.1, true)}}),
	}
	adam := strct(dt(path("Optimisers", "Adam")), 0.001, tup(0.9, 0.999), 1e-8)
	files["optimisers-leaf"] = encode(D{{"opt_state", strct(dt(path("Optimisers", "Leaf")), adam, tup(f32arr(0, 2), f32arr(0, 2)), false)}})
	for name, want := range sametest.Models(t) {
		t.Run(name, func(t *testing.T) {
			file := name
			if want.File != "" {
				file = want.File
			}
			m := mustRead(t, files[file], optimizerOpts(want.IncludeOptimizer)...)
			sametest.Check(t, name, m)
		})
	}
}

// A KnetArray's bytes become a tensor of its element type (N11); a buffer
// whose length is not the size's is malformed.
func TestKnetArray(t *testing.T) {
	buf := f32s(6, 1)
	m := mustRead(t, knetFile([]int64{2, 3}, buf), convert.WithIncludeOptimizer())
	if got, want := tensorNamesOf(m), []string{"w", "optimizer.w.opt.G"}; !slices.Equal(got, want) {
		t.Fatalf("tensors %q, want %q", got, want)
	}
	if x := m.Tensors[0]; x.DType != format.F32 || !slices.Equal(x.Shape, []int64{3, 2}) || !bytes.Equal(x.Data, buf) {
		t.Errorf("tensor %v %v", x.DType, x.Shape)
	}
	for _, dims := range [][]int64{{2, 4}, {1, 3}, {1 << 40, 1 << 40}} {
		_, err := Read(knetFile(dims, buf))
		if !errors.Is(err, convert.ErrMalformed) {
			t.Errorf("dims %v: error %v, want ErrMalformed", dims, err)
		}
	}
}

// InvertibleNetworks' Parameter is transparent, its grad dropped (N7); a
// Flux 0.14 Recur's live state is state, its cell's state0 a parameter.
func TestWrappersAndState(t *testing.T) {
	param := strct(dt(path("InvertibleNetworks", "Parameter")), f32arr(1, 2), f32arr(0, 2))
	cell := strct(dt(path("Flux", "LSTMCell")), f32arr(1, 8, 2), f32arr(2, 8, 2), f32arr(3, 8), tup(f32arr(4, 2, 1), f32arr(5, 2, 1)))
	recur := strct(dt(path("Flux", "Recur")), cell, tup(f32arr(6, 2, 3), f32arr(7, 2, 3)))
	m := mustRead(t, encode(D{{"p", param}, {"lstm", recur}}))

	// AutoGrad.Param's opt is optimiser state whatever its type.
	custom := strct(dt(path("AutoGrad", "Param")), f32arr(1, 2), strct(dt(path("My", "Opt")), f32arr(0, 2)))
	mc := mustRead(t, encode(D{{"w", custom}}))
	if got := tensorNamesOf(mc); !slices.Equal(got, []string{"w"}) || len(mc.Report.Dropped) != 1 ||
		mc.Report.Dropped[0].Kind != convert.DropOptimizer || mc.Report.Dropped[0].Path != "w.opt.field1" {
		t.Errorf("custom optimiser: tensors %q, dropped %+v", got, mc.Report.Dropped)
	}
	roles := map[string]string{}
	for _, x := range m.Tensors {
		roles[x.Name] = x.Role
	}
	want := map[string]string{
		"p": "", "lstm.cell.Wi": "", "lstm.cell.Wh": "", "lstm.cell.b": "", "lstm.cell.state0.1": "", "lstm.cell.state0.2": "",
		"lstm.state.1": convert.RoleState, "lstm.state.2": convert.RoleState,
	}
	if len(roles) != len(want) {
		t.Errorf("tensors %v", tensorNamesOf(m))
	}
	for k, v := range want {
		if r, ok := roles[k]; !ok || r != v {
			t.Errorf("%s: role %q (present %v), want %q", k, r, ok, v)
		}
	}
	if len(m.Report.Dropped) != 1 || m.Report.Dropped[0].Path != "p.grad" || m.Report.Dropped[0].Kind != convert.DropGradient {
		t.Errorf("dropped %+v", m.Report.Dropped)
	}
}

func tensorNamesOf(m *convert.Model) []string {
	var names []string
	for _, x := range m.Tensors {
		names = append(names, x.Name)
	}
	return names
}

// optimizerOpts is WithIncludeOptimizer when keep is set.
func optimizerOpts(keep bool) []convert.Option {
	if keep {
		return []convert.Option{convert.WithIncludeOptimizer()}
	}
	return nil
}
