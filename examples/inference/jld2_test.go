package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/convert/jld2"
	"github.com/safeweights/safeweights/decode"
)

// jld2Fixture converts a real JLD2 checkpoint of ../shared/fixtures (beside
// the repository) and opens the result, or skips where they are absent.
func jld2Fixture(t *testing.T, name string) *decode.File {
	t.Helper()
	src := filepath.Join("..", "..", "..", "shared", "fixtures", "flux-jld2", name)
	if _, err := os.Stat(src); err != nil {
		t.Skip("fixtures absent")
	}
	dst := filepath.Join(t.TempDir(), "model.swt")
	if _, err := jld2.Convert(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	f, err := decode.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestJLD2DenseChain: a Chain of Dense(tanh) layers saved whole with JLD2
// (before 0.5, which stores the activation only as a type parameter)
// rebuilds with its activations, and computes what the weights say.
func TestJLD2DenseChain(t *testing.T) {
	f := jld2Fixture(t, "flux_model_chain_dense_vavrines.jld2")
	m, err := buildModel(f)
	if err != nil {
		t.Fatal(err)
	}
	layers := m[0].(chain)
	want := []string{"tanh", "tanh", "tanh", "tanh", "identity"}
	if len(layers) != len(want) {
		t.Fatalf("%d layers, want %d", len(layers), len(want))
	}
	for i, l := range layers {
		d, ok := l.(*dense)
		if !ok || d.act.name != want[i] {
			t.Fatalf("layer %d: %T %+v, want Dense(%s)", i+1, l, l, want[i])
		}
	}
	// Directly in Julia's terms: W is out×in column-major, y = σ.(W*x .+ b).
	x := make([]float64, layers[0].(*dense).w.shape[0])
	for i := range x {
		x[i] = math.Sin(float64(i))
	}
	in := tensor{shape: []int{1, len(x)}}
	for _, v := range x {
		in.data = append(in.data, float32(v))
	}
	for i, l := range layers {
		d := l.(*dense)
		nin, nout := d.w.shape[0], d.w.shape[1]
		y := make([]float64, nout)
		for o := range nout {
			s := float64(d.b.data[o])
			for k := range nin {
				s += float64(d.w.data[o+nout*k]) * x[k] // W[o, k]
			}
			if want[i] == "tanh" {
				s = math.Tanh(s)
			}
			y[o] = s
		}
		x = y
	}
	got, err := m.forward(in)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range x {
		if math.Abs(float64(got.data[i])-v) > 1e-4*math.Max(1, math.Abs(v)) {
			t.Fatalf("output %d: %g, want %g", i, got.data[i], v)
		}
	}
}

// TestJLD2ConvChain: a Chain of Conv, MeanPool, flatten, Dense and softmax
// saved whole with JLD2 rebuilds: flatten and softmax keep their places.
func TestJLD2ConvChain(t *testing.T) {
	f := jld2Fixture(t, "flux_model_chain_conv_meanpool_hwdr.jld2")
	m, err := buildModel(f)
	if err != nil {
		t.Fatal(err)
	}
	layers := m[0].(chain)
	if len(layers) != 10 {
		t.Fatalf("%d layers, want 10", len(layers))
	}
	if _, ok := layers[6].(flatten); !ok {
		t.Errorf("layer 7 is %T, want flatten", layers[6])
	}
	if _, ok := layers[9].(softmax); !ok {
		t.Errorf("layer 10 is %T, want softmax", layers[9])
	}
	in := tensor{shape: []int{1, 1, 28, 28}, data: make([]float32, 28*28)}
	for i := range in.data {
		in.data[i] = float32(i%28) / 28
	}
	y, err := m.forward(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(y.data) != 10 {
		t.Fatalf("%d outputs, want 10", len(y.data))
	}
	var sum float64
	for _, v := range y.data {
		sum += float64(v)
	}
	if math.Abs(sum-1) > 1e-5 {
		t.Fatalf("softmax outputs sum to %g", sum)
	}
}
