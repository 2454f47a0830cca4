package jld2

// Rebuilding a model from its converted file alone: the structure recorded
// in safeweights.structure and the tensors, read back with decode, by the
// layout conventions of CONVERSION.md 4.4. The outputs are checked against
// a direct computation on the synthetic model's Julia-order arrays, which
// shares no code with the converters or this evaluator.

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/bson"
	"github.com/safeweights/safeweights/convert/structure"
	"github.com/safeweights/safeweights/decode"
)

// rt is a row-major tensor.
type rt struct {
	v     []float32
	shape []int
}

type evaluator struct {
	t *testing.T
	f *decode.File
}

func (e *evaluator) tensor(n *convert.Node) *rt {
	e.t.Helper()
	if n == nil || n.Kind != "array" {
		return nil // bias=false
	}
	tt, err := e.f.Tensor(n.Tensor)
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := decode.View[float32](tt)
	if err != nil {
		e.t.Fatal(err)
	}
	s := make([]int, len(tt.Shape))
	for i, d := range tt.Shape {
		s[i] = int(d)
	}
	return &rt{v, s}
}

func (e *evaluator) ints(n *convert.Node) []int {
	e.t.Helper()
	if n == nil || n.Kind != "tuple" {
		e.t.Fatalf("want a tuple of integers, got %+v", n)
	}
	out := make([]int, len(n.Items))
	for i, it := range n.Items {
		v, err := strconv.Atoi(it.Value)
		if it.Kind != "scalar" || err != nil {
			e.t.Fatalf("tuple item %+v", it)
		}
		out[i] = v
	}
	return out
}

func activate(t *testing.T, n *convert.Node, x float64) float64 {
	if n == nil || n.Kind != "function" {
		t.Fatalf("activation %+v", n)
	}
	switch n.Function {
	case "identity":
		return x
	case "relu":
		return math.Max(x, 0)
	case "tanh":
		return math.Tanh(x)
	case "σ", "sigmoid":
		return 1 / (1 + math.Exp(-x))
	}
	t.Fatalf("activation %q", n.Function)
	return 0
}

// layer runs one layer on x: [N, features] or [N, C, H, W].
func (e *evaluator) layer(n *convert.Node, x rt) rt {
	t := e.t
	if n.Kind == "function" {
		switch n.Function {
		case "flatten":
			return rt{x.v, []int{x.shape[0], len(x.v) / x.shape[0]}}
		case "softmax":
			k := x.shape[len(x.shape)-1]
			y := make([]float32, len(x.v))
			for o := 0; o < len(y); o += k {
				var s float64
				for i := range k {
					s += math.Exp(float64(x.v[o+i]))
				}
				for i := range k {
					y[o+i] = float32(math.Exp(float64(x.v[o+i])) / s)
				}
			}
			return rt{y, x.shape}
		}
		t.Fatalf("function layer %+v", n)
	}
	switch n.Type {
	case "Flux.Dense":
		// weight [in, out]: y = x W + b.
		w, b := e.tensor(fieldOf(n, "weight")), e.tensor(fieldOf(n, "bias"))
		in, out := w.shape[0], w.shape[1]
		N := x.shape[0]
		y := make([]float32, N*out)
		for r := range N {
			for j := range out {
				s := 0.0
				if b != nil {
					s = float64(b.v[j])
				}
				for i := range in {
					s += float64(x.v[r*in+i]) * float64(w.v[i*out+j])
				}
				y[r*out+j] = float32(activate(t, fieldOf(n, "σ"), s))
			}
		}
		return rt{y, []int{N, out}}
	case "Flux.Conv":
		// weight [O, C, KH, KW]; stride, pad, dilation in Julia order
		// (W first); a true convolution: the kernel is flipped.
		w, b := e.tensor(fieldOf(n, "weight")), e.tensor(fieldOf(n, "bias"))
		st, pd, dl := e.ints(fieldOf(n, "stride")), e.ints(fieldOf(n, "pad")), e.ints(fieldOf(n, "dilation"))
		O, C, KH, KW := w.shape[0], w.shape[1], w.shape[2], w.shape[3]
		N, H, W := x.shape[0], x.shape[2], x.shape[3]
		OH := (H+pd[2]+pd[3]-dl[1]*(KH-1)-1)/st[1] + 1
		OW := (W+pd[0]+pd[1]-dl[0]*(KW-1)-1)/st[0] + 1
		y := make([]float32, N*O*OH*OW)
		for nn := range N {
			for o := range O {
				for oh := range OH {
					for ow := range OW {
						s := 0.0
						if b != nil {
							s = float64(b.v[o])
						}
						for c := range C {
							for kh := range KH {
								for kw := range KW {
									ih, iw := oh*st[1]-pd[2]+kh*dl[1], ow*st[0]-pd[0]+kw*dl[0]
									if ih < 0 || ih >= H || iw < 0 || iw >= W {
										continue
									}
									s += float64(x.v[((nn*C+c)*H+ih)*W+iw]) * float64(w.v[((o*C+c)*KH+KH-1-kh)*KW+KW-1-kw])
								}
							}
						}
						y[((nn*O+o)*OH+oh)*OW+ow] = float32(activate(t, fieldOf(n, "σ"), s))
					}
				}
			}
		}
		return rt{y, []int{N, O, OH, OW}}
	case "Flux.MaxPool", "Flux.MeanPool":
		k, st, pd := e.ints(fieldOf(n, "k")), e.ints(fieldOf(n, "stride")), e.ints(fieldOf(n, "pad"))
		N, C, H, W := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
		OH, OW := (H+pd[2]+pd[3]-k[1])/st[1]+1, (W+pd[0]+pd[1]-k[0])/st[0]+1
		y := make([]float32, N*C*OH*OW)
		for nc := range N * C {
			for oh := range OH {
				for ow := range OW {
					m, s := math.Inf(-1), 0.0
					for kh := range k[1] {
						for kw := range k[0] {
							ih, iw := oh*st[1]-pd[2]+kh, ow*st[0]-pd[0]+kw
							if ih >= 0 && ih < H && iw >= 0 && iw < W {
								v := float64(x.v[(nc*H+ih)*W+iw])
								m, s = math.Max(m, v), s+v
							}
						}
					}
					if n.Type == "Flux.MeanPool" {
						m = s / float64(k[0]*k[1])
					}
					y[(nc*OH+oh)*OW+ow] = float32(m)
				}
			}
		}
		return rt{y, []int{N, C, OH, OW}}
	case "Flux.BatchNorm":
		mu, s2 := e.tensor(fieldOf(n, "μ")), e.tensor(fieldOf(n, "σ²"))
		beta, gamma := e.tensor(fieldOf(n, "β")), e.tensor(fieldOf(n, "γ"))
		eps, err := strconv.ParseFloat(fieldOf(n, "ϵ").Value, 64)
		if err != nil {
			t.Fatal(err)
		}
		C := x.shape[1]
		inner := len(x.v) / x.shape[0] / C
		y := make([]float32, len(x.v))
		for i, v := range x.v {
			c := (i / inner) % C
			z := (float64(v)-float64(mu.v[c]))/math.Sqrt(float64(s2.v[c])+eps)*float64(gamma.v[c]) + float64(beta.v[c])
			y[i] = float32(activate(t, fieldOf(n, "λ"), z))
		}
		return rt{y, x.shape}
	}
	t.Fatalf("layer %s", n.Type)
	return rt{}
}

// ---- the reference: Julia's definitions on Julia-order arrays ----

func refAct(name string, x float64) float64 {
	switch name {
	case "relu":
		return math.Max(x, 0)
	case "tanh":
		return math.Tanh(x)
	case "σ":
		return 1 / (1 + math.Exp(-x))
	}
	return x
}

// jarr is a column-major array with its Julia size.
type jarr struct {
	v  []float64
	sz []int
}

func (a jarr) at(i ...int) float64 {
	off, m := 0, 1
	for d, x := range i {
		off += x * m
		m *= a.sz[d]
	}
	return a.v[off]
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// reference runs the model as Flux defines it on x of Julia size sz.
func reference(layers []sLayer, x jarr) jarr {
	for _, l := range layers {
		switch l.kind {
		case "dense": // W is out×in: y = σ.(W*x .+ b)
			W := jarr{f64(l.w), l.wsz}
			out, in := l.wsz[0], l.wsz[1]
			y := make([]float64, out)
			for o := range out {
				s := 0.0
				for i := range in {
					s += W.at(o, i) * x.v[i]
				}
				if l.b != nil {
					s += float64(l.b[o])
				}
				y[o] = refAct(l.act, s)
			}
			x = jarr{y, []int{out, 1}}
		case "conv": // W is (kw, kh, cin, cout); x is WHCN
			W := jarr{f64(l.w), l.wsz}
			kw, kh, cin, cout := l.wsz[0], l.wsz[1], l.wsz[2], l.wsz[3]
			iw, ih := x.sz[0], x.sz[1]
			ow := (iw+l.pad[0]+l.pad[1]-l.dilation[0]*(kw-1)-1)/l.stride[0] + 1
			oh := (ih+l.pad[2]+l.pad[3]-l.dilation[1]*(kh-1)-1)/l.stride[1] + 1
			y := jarr{make([]float64, ow*oh*cout), []int{ow, oh, cout, 1}}
			for co := range cout {
				for b := range oh {
					for a := range ow {
						s := 0.0
						if l.b != nil {
							s = float64(l.b[co])
						}
						for ci := range cin {
							for j := range kh {
								for i := range kw {
									xa := a*l.stride[0] - l.pad[0] + i*l.dilation[0]
									xb := b*l.stride[1] - l.pad[2] + j*l.dilation[1]
									if xa >= 0 && xa < iw && xb >= 0 && xb < ih {
										// convolution: the kernel reversed in space
										s += W.at(kw-1-i, kh-1-j, ci, co) * x.at(xa, xb, ci, 0)
									}
								}
							}
						}
						y.v[a+ow*(b+oh*co)] = refAct(l.act, s)
					}
				}
			}
			x = y
		case "batchnorm":
			c := len(l.mu)
			y := jarr{make([]float64, len(x.v)), x.sz}
			plane := x.sz[0] * x.sz[1]
			for i, v := range x.v {
				ch := (i / plane) % c
				y.v[i] = float64(l.gamma[ch])*(v-float64(l.mu[ch]))/math.Sqrt(float64(l.s2[ch])+float64(l.eps)) + float64(l.beta[ch])
			}
			x = y
		case "maxpool", "meanpool":
			iw, ih, c := x.sz[0], x.sz[1], x.sz[2]
			ow := (iw+l.pad[0]+l.pad[1]-l.k[0])/l.stride[0] + 1
			oh := (ih+l.pad[2]+l.pad[3]-l.k[1])/l.stride[1] + 1
			y := jarr{make([]float64, ow*oh*c), []int{ow, oh, c, 1}}
			for ch := range c {
				for b := range oh {
					for a := range ow {
						m, s := math.Inf(-1), 0.0
						for j := range l.k[1] {
							for i := range l.k[0] {
								v := x.at(a*l.stride[0]+i, b*l.stride[1]+j, ch, 0)
								m, s = math.Max(m, v), s+v
							}
						}
						if l.kind == "meanpool" {
							m = s / float64(l.k[0]*l.k[1])
						}
						y.v[a+ow*(b+oh*ch)] = m
					}
				}
			}
			x = y
		case "func":
			switch l.act {
			case "flatten":
				x = jarr{x.v, []int{len(x.v), 1}}
			case "softmax":
				y := make([]float64, len(x.v))
				s := 0.0
				for _, v := range x.v {
					s += math.Exp(v)
				}
				for i, v := range x.v {
					y[i] = math.Exp(v) / s
				}
				x = jarr{y, x.sz}
			}
		}
	}
	return x
}

// rebuild converts src to a .swt file, reads it back, rebuilds the Chain
// under the top-level name model from its structure and runs it on x.
func rebuild(t *testing.T, m *convert.Model, x rt) rt {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "model.swt")
	if err := convert.WriteFile(context.Background(), dst, m, nil); err != nil {
		t.Fatal(err)
	}
	f, err := decode.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	root, err := structure.Parse([]byte(f.Metadata()[convert.MetaStructure]))
	if err != nil {
		t.Fatal(err)
	}
	chain := topLevel(root)["model"]
	if chain == nil || chain.Type != "Flux.Chain" || fieldOf(chain, "layers") == nil {
		t.Fatalf("no Chain under model: %+v", chain)
	}
	e := &evaluator{t: t, f: f}
	for _, l := range fieldOf(chain, "layers").Items {
		x = e.layer(l, x)
	}
	return x
}

// TestRebuildFromStructure: a Dense chain and a Conv/BatchNorm/pool chain,
// each converted from BSON.jl and from JLD2, rebuilt from the converted
// file alone, compute what Flux computes.
func TestRebuildFromStructure(t *testing.T) {
	cases := []struct {
		name   string
		layers []sLayer
		jsize  []int // Julia size of the input
	}{
		{"dense", denseModel(), []int{3, 1}},
		{"conv", convModel(), []int{6, 5, 2, 1}},
	}
	for _, c := range cases {
		n := 1
		for _, d := range c.jsize {
			n *= d
		}
		in := ramp(n, 13)
		want := reference(c.layers, jarr{f64(in), c.jsize})
		// The same bytes, row-major: Julia's (W, H, C, N) is [N, C, H, W].
		shape := make([]int, len(c.jsize))
		for i, d := range c.jsize {
			shape[len(shape)-1-i] = d
		}
		for _, format := range []string{"bson", "jld2", "jld2-0.5"} {
			t.Run(c.name+"/"+format, func(t *testing.T) {
				var m *convert.Model
				var err error
				if format == "bson" {
					m, err = bson.Read(chainBSON(c.layers))
				} else {
					m, err = Read(chainJLD2v(c.layers, format == "jld2-0.5"))
				}
				if err != nil {
					t.Fatal(err)
				}
				got := rebuild(t, m, rt{in, shape})
				if len(got.v) != len(want.v) {
					t.Fatalf("%d outputs, want %d", len(got.v), len(want.v))
				}
				worst := 0.0
				for i := range got.v {
					d := math.Abs(float64(got.v[i])-want.v[i]) / math.Max(math.Abs(want.v[i]), 1e-3)
					worst = math.Max(worst, d)
				}
				t.Logf("outputs %v, max relative error %.2g", got.v, worst)
				if worst > 1e-5 {
					t.Fatalf("max relative error %g\ngot  %v\nwant %v", worst, got.v, fmt.Sprint(want.v))
				}
			})
		}
	}
}
