package main

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// julia is an array as Julia holds it: its size, first dimension first, and
// its elements in column-major order.
type julia struct {
	size []int
	v    []float64
}

func (a julia) at(i ...int) float64 {
	k, m := 0, 1
	for d, x := range i {
		k += x * m
		m *= a.size[d]
	}
	return a.v[k]
}

func seq(seed float64, size ...int) julia {
	n := 1
	for _, d := range size {
		n *= d
	}
	a := julia{size: size, v: make([]float64, n)}
	for i := range a.v {
		a.v[i] = float64(float32(math.Sin(seed + float64(i)*0.7)))
	}
	return a
}

func scalar(v int) *convert.Node {
	return &convert.Node{Kind: "scalar", DType: "I64", Value: strconv.Itoa(v)}
}

func ints2(v ...int) *convert.Node {
	n := &convert.Node{Kind: "tuple", Type: "Core.Tuple"}
	for _, x := range v {
		n.Items = append(n.Items, scalar(x))
	}
	return n
}

func fn(name string) *convert.Node { return &convert.Node{Kind: "function", Function: name} }

func arr(name string) *convert.Node {
	return &convert.Node{Kind: "array", Type: "Array", Tensor: name, DType: "F32"}
}

func object(typ string, fields ...any) *convert.Node {
	n := &convert.Node{Kind: "struct", Type: typ}
	for i := 0; i < len(fields); i += 2 {
		n.Fields = append(n.Fields, convert.Field{Name: fields[i].(string), Node: fields[i+1].(*convert.Node)})
	}
	return n
}

// writeModel writes the tensors (Julia arrays, stored with their size
// reversed and their bytes kept, as the converters do) and the structure.
func writeModel(t *testing.T, root *convert.Node, tensors map[string]julia) *decode.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.swt")
	w, err := encode.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(root)
	w.SetMetadata(convert.MetaStructure, string(js))
	for name, a := range tensors {
		shape := make([]int64, len(a.size))
		for i, d := range a.size {
			shape[len(a.size)-1-i] = int64(d)
		}
		b := make([]byte, 4*len(a.v))
		for i, v := range a.v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(v)))
		}
		if err := w.Add(name, format.F32, shape, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := decode.Open(path, decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestConvPoolNormChain runs Chain(Conv((2, 2), 2 => 3, relu; pad, stride),
// BatchNorm(3, tanh), Pool((2, 2); pad = 1), flatten, Dense(n => 2), softmax)
// against the same model computed directly on the Julia arrays.
func TestConvPoolNormChain(t *testing.T) {
	for _, mean := range []bool{false, true} {
		poolType := "Flux.MaxPool"
		if mean {
			poolType = "Flux.MeanPool"
		}
		t.Run(poolType, func(t *testing.T) {
			const W, H, C, O, K = 5, 4, 2, 3, 2
			x := seq(0.1, W, H, C, 1)
			cw, cb := seq(1, K, K, C, O), seq(2, O)
			mu, s2, beta, gamma := seq(3, O), seq(4, O), seq(5, O), seq(6, O)
			for i := range s2.v {
				s2.v[i] = math.Abs(s2.v[i]) + 0.5
			}
			const eps = 1e-5

			// Conv: pad 1 on the first spatial dimension's low side only,
			// stride 1 and 2: Julia's pad is (w_lo, w_hi, h_lo, h_hi).
			padW, strideW, strideH := 1, 1, 2
			OW := (W+padW-K)/strideW + 1
			OH := (H-K)/strideH + 1
			conv := make([]float64, OW*OH*O) // Julia (OW, OH, O)
			for o := range O {
				for oh := range OH {
					for ow := range OW {
						s := cb.at(o)
						for c := range C {
							for kh := range K {
								for kw := range K {
									// A true convolution: the kernel is flipped.
									iw, ih := ow*strideW-padW+kw, oh*strideH+kh
									if iw < 0 || iw >= W {
										continue
									}
									s += cw.at(K-1-kw, K-1-kh, c, o) * x.at(iw, ih, c, 0)
								}
							}
						}
						s = math.Max(s, 0)
						// BatchNorm with tanh.
						s = math.Tanh(gamma.at(o)*(s-mu.at(o))/math.Sqrt(s2.at(o)+eps) + beta.at(o))
						conv[ow+OW*(oh+OH*o)] = s
					}
				}
			}
			// Pool (2, 2), stride 2, pad 1 all round.
			PW, PH := (OW+2-2)/2+1, (OH+2-2)/2+1
			pooled := make([]float64, PW*PH*O)
			for o := range O {
				for ph := range PH {
					for pw := range PW {
						m, s := math.Inf(-1), 0.0
						for kh := range 2 {
							for kw := range 2 {
								iw, ih := pw*2-1+kw, ph*2-1+kh
								if iw < 0 || iw >= OW || ih < 0 || ih >= OH {
									continue
								}
								v := conv[iw+OW*(ih+OH*o)]
								m, s = math.Max(m, v), s+v
							}
						}
						if mean {
							m = s / 4
						}
						pooled[pw+PW*(ph+PH*o)] = m
					}
				}
			}
			// flatten keeps Julia's column-major order; Dense(n => 2), softmax.
			n := len(pooled)
			dw, db := seq(7, 2, n), seq(8, 2)
			logits := make([]float64, 2)
			for j := range 2 {
				logits[j] = db.at(j)
				for i := range n {
					logits[j] += dw.at(j, i) * pooled[i]
				}
			}
			e0, e1 := math.Exp(logits[0]), math.Exp(logits[1])
			want := []float64{e0 / (e0 + e1), e1 / (e0 + e1)}

			root := &convert.Node{Kind: "dict", Items: []*convert.Node{{Kind: "tuple", Items: []*convert.Node{
				{Kind: "symbol", Value: "model"},
				object("Flux.Chain", "layers", &convert.Node{Kind: "tuple", Type: "Core.Tuple", Items: []*convert.Node{
					object("Flux.Conv", "σ", fn("relu"), "weight", arr("c.weight"), "bias", arr("c.bias"),
						"stride", ints2(strideW, strideH), "pad", ints2(padW, 0, 0, 0), "dilation", ints2(1, 1), "groups", scalar(1)),
					object("Flux.BatchNorm", "λ", fn("tanh"), "β", arr("bn.β"), "γ", arr("bn.γ"), "μ", arr("bn.μ"), "σ²", arr("bn.σ²"),
						"ϵ", &convert.Node{Kind: "scalar", DType: "F32", Value: "1.0e-5"}),
					object(poolType, "k", ints2(2, 2), "pad", ints2(1, 1, 1, 1), "stride", ints2(2, 2)),
					fn("flatten"),
					object("Flux.Dense", "weight", arr("d.weight"), "bias", arr("d.bias"), "σ", fn("identity")),
					fn("softmax"),
				}}),
			}}}}
			f := writeModel(t, root, map[string]julia{
				"c.weight": cw, "c.bias": cb, "bn.μ": mu, "bn.σ²": s2, "bn.β": beta, "bn.γ": gamma,
				"d.weight": dw, "d.bias": db,
			})
			net, err := buildModel(f)
			if err != nil {
				t.Fatal(err)
			}
			in := make([]float32, len(x.v))
			for i, v := range x.v {
				in[i] = float32(v)
			}
			y, err := net.forward(tensor{data: in, shape: []int{1, C, H, W}})
			if err != nil {
				t.Fatal(err)
			}
			if len(y.shape) != 2 || y.shape[0] != 1 || y.shape[1] != 2 {
				t.Fatalf("output shape %v", y.shape)
			}
			for i := range want {
				if math.Abs(float64(y.data[i])-want[i]) > 1e-5 {
					t.Fatalf("output %v, want %v", y.data, want)
				}
			}
		})
	}
}

// The activations against their definitions at a few points.
func TestActivations(t *testing.T) {
	want := map[string]func(float64) float64{
		"identity":  func(x float64) float64 { return x },
		"relu":      func(x float64) float64 { return math.Max(x, 0) },
		"σ":         func(x float64) float64 { return 1 / (1 + math.Exp(-x)) },
		"tanh":      math.Tanh,
		"leakyrelu": func(x float64) float64 { return math.Max(x, 0.01*x) },
		"elu": func(x float64) float64 {
			if x < 0 {
				return math.Exp(x) - 1
			}
			return x
		},
		"gelu": func(x float64) float64 { return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x))) },
	}
	for name, g := range want {
		l, err := activationLayer(name, "test")
		if err != nil {
			t.Fatal(err)
		}
		in := []float32{-2, -0.5, 0, 0.5, 3}
		y, err := l.forward(tensor{data: in, shape: []int{5}})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range in {
			if math.Abs(float64(y.data[i])-g(float64(v))) > 1e-6 {
				t.Fatalf("%s(%v) = %v, want %v", name, v, y.data[i], g(float64(v)))
			}
		}
	}
}

// Layers and functions outside the allow-list are refused when the model is
// built, not run.
func TestUnknownLayersRefused(t *testing.T) {
	for name, layer := range map[string]*convert.Node{
		"layer":      object("Flux.LSTM", "cell", arr("w")),
		"function":   fn("my_custom_activation"),
		"activation": object("Flux.Dense", "weight", arr("w"), "σ", fn("swish_made_up")),
		"dropped":    {Kind: "dropped", Dropped: "closure"},
		"anonymous":  {Kind: "function", Anonymous: true, Dropped: "code"},
		// A Dense whose activation the file does not say: running it as
		// identity would give wrong answers without a word.
		"no-activation": object("Flux.Dense", "weight", arr("w")),
	} {
		t.Run(name, func(t *testing.T) {
			root := object("Flux.Chain", "layers", &convert.Node{Kind: "tuple", Items: []*convert.Node{layer}})
			f := writeModel(t, root, map[string]julia{"w": seq(0, 2, 2)})
			if _, err := buildModel(f); err == nil {
				t.Fatal("built a model with an unknown layer")
			}
		})
	}
	// No structure at all.
	f := writeModel(t, &convert.Node{Kind: "nothing"}, map[string]julia{"w": seq(0, 2)})
	if _, err := buildModel(f); err == nil {
		t.Fatal("built a model without a Chain")
	}
}
