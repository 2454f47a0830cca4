package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/structure"
	"github.com/safeweights/safeweights/decode"
)

// A tensor is a row-major array. The converter reverses Julia's
// column-major sizes and keeps the bytes (spec/CONVERSION.md), so Flux's
// (features, batch) is [batch, features] here and WHCN is [N, C, H, W].
type tensor struct {
	data  []float32
	shape []int
}

func (t tensor) size() int { return len(t.data) }

// A layer maps a batch to a batch.
type layer interface {
	forward(x tensor) (tensor, error)
}

// chain is a Flux.Chain: its layers in order.
type chain []layer

func (c chain) forward(x tensor) (tensor, error) {
	var err error
	for _, l := range c {
		if x, err = l.forward(x); err != nil {
			return tensor{}, err
		}
	}
	return x, nil
}

// buildModel rebuilds the Flux model recorded in the file's
// safeweights.structure metadata from an allow-list of layer types. It runs
// nothing from the file: an unknown layer or function is an error.
func buildModel(f *decode.File) (chain, error) {
	js, ok := f.Metadata()[convert.MetaStructure]
	if !ok {
		return nil, fmt.Errorf("the file has no %s metadata: it was not converted from a Flux checkpoint", convert.MetaStructure)
	}
	// The structure comes from the file: parse it within limits, checked
	// against the schema (spec/structure.schema.json).
	root, err := structure.Parse([]byte(js))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", convert.MetaStructure, err)
	}
	c := findChain(root, 0)
	if c == nil {
		return nil, fmt.Errorf("%s holds no Flux.Chain", convert.MetaStructure)
	}
	b := &builder{f: f}
	l, err := b.layer(c, "model")
	if err != nil {
		return nil, err
	}
	return chain{l}, nil
}

// findChain returns the first Flux.Chain in a depth-first walk: BSON.@save
// stores the model under its variable name in a top-level dict.
func findChain(n *convert.Node, depth int) *convert.Node {
	if n == nil || depth > 64 {
		return nil
	}
	if n.Kind == "struct" && n.Type == "Flux.Chain" {
		return n
	}
	for _, it := range n.Items {
		if c := findChain(it, depth+1); c != nil {
			return c
		}
	}
	for _, fl := range n.Fields {
		if c := findChain(fl.Node, depth+1); c != nil {
			return c
		}
	}
	return nil
}

type builder struct{ f *decode.File }

func field(n *convert.Node, name string) *convert.Node {
	for _, fl := range n.Fields {
		if fl.Name == name {
			return fl.Node
		}
	}
	return nil
}

// array returns the float32 tensor an array node became, viewed in place
// (verified on first access under the file's lazy verify mode), or nil for
// an absent array (Flux's bias=false).
func (b *builder) array(n *convert.Node, what string, wantRank int) (*tensor, error) {
	if n == nil || n.Kind != "array" {
		return nil, nil
	}
	t, err := b.f.Tensor(n.Tensor)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	v, err := decode.View[float32](t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	shape := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		shape[i] = int(d)
	}
	if wantRank > 0 && len(shape) != wantRank {
		return nil, fmt.Errorf("%s: %s has rank %d, want %d", what, n.Tensor, len(shape), wantRank)
	}
	return &tensor{data: v, shape: shape}, nil
}

func (b *builder) require(n *convert.Node, name, what string, rank int) (*tensor, error) {
	t, err := b.array(field(n, name), what+"."+name, rank)
	if err == nil && t == nil {
		err = fmt.Errorf("%s: no %s array", what, name)
	}
	return t, err
}

// ints reads a tuple of integers (a kernel size, stride, pad), or one
// integer repeated.
func ints(n *convert.Node, what string) ([]int, error) {
	if n == nil {
		return nil, fmt.Errorf("%s: missing", what)
	}
	var items []*convert.Node
	switch n.Kind {
	case "tuple", "vector":
		items = n.Items
	case "scalar":
		items = []*convert.Node{n}
	default:
		return nil, fmt.Errorf("%s: a %s, want integers", what, n.Kind)
	}
	out := make([]int, len(items))
	for i, it := range items {
		v, err := strconv.Atoi(it.Value)
		if it.Kind != "scalar" || err != nil || v < 0 || v > 1<<20 {
			return nil, fmt.Errorf("%s: item %d is not a small integer", what, i)
		}
		out[i] = v
	}
	return out, nil
}

// spatial2 turns Julia's per-dimension (first dimension first, so W before
// H) values into (h, w); pads come as (w_lo, w_hi, h_lo, h_hi).
func spatial2(v []int, what string) (h, w int, err error) {
	switch len(v) {
	case 1:
		return v[0], v[0], nil
	case 2:
		return v[1], v[0], nil
	}
	return 0, 0, fmt.Errorf("%s: %d values; only 2-D layers are supported", what, len(v))
}

func pads(v []int, what string) ([4]int, error) { // top, bottom, left, right
	switch len(v) {
	case 1:
		return [4]int{v[0], v[0], v[0], v[0]}, nil
	case 2:
		return [4]int{v[1], v[1], v[0], v[0]}, nil
	case 4:
		return [4]int{v[2], v[3], v[0], v[1]}, nil
	}
	return [4]int{}, fmt.Errorf("%s: %d values; only 2-D layers are supported", what, len(v))
}

func (b *builder) layer(n *convert.Node, path string) (layer, error) {
	switch n.Kind {
	case "function":
		return activationLayer(n.Function, path)
	case "struct":
	default:
		return nil, fmt.Errorf("%s: unsupported layer: a %s", path, n.Kind)
	}
	switch n.Type {
	case "Flux.Chain":
		layers := field(n, "layers")
		if layers == nil {
			return nil, fmt.Errorf("%s: a Chain without layers", path)
		}
		var c chain
		items := layers.Items
		if layers.Kind == "namedtuple" {
			for _, fl := range layers.Fields {
				items = append(items, fl.Node)
			}
		}
		for i, it := range items {
			l, err := b.layer(it, fmt.Sprintf("%s.layers.%d", path, i+1))
			if err != nil {
				return nil, err
			}
			c = append(c, l)
		}
		return c, nil
	case "Flux.Dense":
		w, err := b.require(n, "weight", path, 2)
		if err != nil {
			return nil, err
		}
		bias, err := b.array(field(n, "bias"), path+".bias", 1)
		if err != nil {
			return nil, err
		}
		if bias != nil && bias.shape[0] != w.shape[1] {
			return nil, fmt.Errorf("%s: bias of %d for %d outputs", path, bias.shape[0], w.shape[1])
		}
		act, err := activationFn(field(n, "σ"), path)
		if err != nil {
			return nil, err
		}
		return &dense{w: *w, b: bias, act: act}, nil
	case "Flux.Conv":
		return b.conv(n, path)
	case "Flux.MaxPool", "Flux.MeanPool":
		k, err := ints(field(n, "k"), path+".k")
		if err != nil {
			return nil, err
		}
		p := &pool{mean: n.Type == "Flux.MeanPool"}
		if p.kh, p.kw, err = spatial2(k, path+".k"); err != nil {
			return nil, err
		}
		s, err := ints(field(n, "stride"), path+".stride")
		if err != nil {
			return nil, err
		}
		if p.sh, p.sw, err = spatial2(s, path+".stride"); err != nil {
			return nil, err
		}
		pd, err := ints(field(n, "pad"), path+".pad")
		if err != nil {
			return nil, err
		}
		if p.pad, err = pads(pd, path+".pad"); err != nil {
			return nil, err
		}
		if p.kh == 0 || p.kw == 0 || p.sh == 0 || p.sw == 0 {
			return nil, fmt.Errorf("%s: a zero kernel size or stride", path)
		}
		return p, nil
	case "Flux.BatchNorm":
		mu, err := b.require(n, "μ", path, 1)
		if err != nil {
			return nil, err
		}
		v, err := b.require(n, "σ²", path, 1)
		if err != nil {
			return nil, err
		}
		beta, err := b.array(field(n, "β"), path+".β", 1)
		if err != nil {
			return nil, err
		}
		gamma, err := b.array(field(n, "γ"), path+".γ", 1)
		if err != nil {
			return nil, err
		}
		eps := 1e-5
		if e := field(n, "ϵ"); e != nil && e.Kind == "scalar" {
			if eps, err = strconv.ParseFloat(e.Value, 64); err != nil || eps < 0 {
				return nil, fmt.Errorf("%s: ϵ is not a number", path)
			}
		}
		act, err := activationFn(field(n, "λ"), path)
		if err != nil {
			return nil, err
		}
		c := mu.size()
		if v.size() != c || (beta != nil && beta.size() != c) || (gamma != nil && gamma.size() != c) {
			return nil, fmt.Errorf("%s: parameters of different lengths", path)
		}
		bn := &batchNorm{scale: make([]float32, c), shift: make([]float32, c), act: act}
		for i := range c {
			g, be := float32(1), float32(0)
			if gamma != nil {
				g = gamma.data[i]
			}
			if beta != nil {
				be = beta.data[i]
			}
			bn.scale[i] = g / float32(math.Sqrt(float64(v.data[i])+eps))
			bn.shift[i] = be - mu.data[i]*bn.scale[i]
		}
		return bn, nil
	}
	return nil, fmt.Errorf("%s: unsupported layer %s", path, n.Type)
}

func (b *builder) conv(n *convert.Node, path string) (layer, error) {
	w, err := b.require(n, "weight", path, 4)
	if err != nil {
		return nil, err
	}
	bias, err := b.array(field(n, "bias"), path+".bias", 1)
	if err != nil {
		return nil, err
	}
	if bias != nil && bias.shape[0] != w.shape[0] {
		return nil, fmt.Errorf("%s: bias of %d for %d output channels", path, bias.shape[0], w.shape[0])
	}
	act, err := activationFn(field(n, "σ"), path)
	if err != nil {
		return nil, err
	}
	c := &conv{w: *w, b: bias, act: act, groups: 1}
	s, err := ints(field(n, "stride"), path+".stride")
	if err != nil {
		return nil, err
	}
	if c.sh, c.sw, err = spatial2(s, path+".stride"); err != nil {
		return nil, err
	}
	d, err := ints(field(n, "dilation"), path+".dilation")
	if err != nil {
		return nil, err
	}
	if c.dh, c.dw, err = spatial2(d, path+".dilation"); err != nil {
		return nil, err
	}
	pd, err := ints(field(n, "pad"), path+".pad")
	if err != nil {
		return nil, err
	}
	if c.pad, err = pads(pd, path+".pad"); err != nil {
		return nil, err
	}
	if g := field(n, "groups"); g != nil {
		gs, err := ints(g, path+".groups")
		if err != nil || len(gs) != 1 || gs[0] == 0 || w.shape[0]%gs[0] != 0 {
			return nil, fmt.Errorf("%s: bad groups", path)
		}
		c.groups = gs[0]
	}
	if c.sh == 0 || c.sw == 0 || c.dh == 0 || c.dw == 0 {
		return nil, fmt.Errorf("%s: a zero stride or dilation", path)
	}
	return c, nil
}

// activation is an element-wise function, or softmax over the features
// (Julia's first dimension, the last one here).
type activation struct {
	name string
	f    func(float32) float32 // nil for softmax
}

func activationFn(n *convert.Node, path string) (activation, error) {
	if n == nil {
		// The converters record every activation (spec/CONVERSION.md S1);
		// a layer without one is not a layout this server knows.
		return activation{}, fmt.Errorf("%s: no activation recorded", path)
	}
	if n.Kind != "function" {
		return activation{}, fmt.Errorf("%s: the activation is a %s, not a function", path, n.Kind)
	}
	a, ok := activations[n.Function]
	if !ok || a.f == nil {
		return activation{}, fmt.Errorf("%s: unsupported activation %q", path, n.Function)
	}
	return a, nil
}

var activations = map[string]activation{}

func init() {
	add := func(f func(float32) float32, names ...string) {
		for _, n := range names {
			activations[n] = activation{name: n, f: f}
		}
	}
	add(func(x float32) float32 { return x }, "identity")
	add(func(x float32) float32 { return max(x, 0) }, "relu")
	add(func(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }, "σ", "sigmoid", "sigmoid_fast")
	add(func(x float32) float32 { return float32(math.Tanh(float64(x))) }, "tanh", "tanh_fast")
	add(func(x float32) float32 {
		if x < 0 {
			return 0.01 * x
		}
		return x
	}, "leakyrelu")
	add(func(x float32) float32 {
		if x < 0 {
			return float32(math.Expm1(float64(x)))
		}
		return x
	}, "elu")
	// NNlib's gelu is the tanh approximation.
	add(func(x float32) float32 {
		v := float64(x)
		return float32(0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v))))
	}, "gelu", "gelu_tanh")
	add(func(x float32) float32 {
		v := float64(x)
		return float32(0.5 * v * (1 + math.Erf(v/math.Sqrt2)))
	}, "gelu_erf")
}

// activationLayer is a function used as a layer of a Chain.
func activationLayer(name, path string) (layer, error) {
	switch name {
	case "softmax":
		return softmax{}, nil
	case "flatten", "MLUtils.flatten", "Flux.flatten":
		return flatten{}, nil
	}
	a, ok := activations[strings.TrimPrefix(name, "NNlib.")]
	if !ok {
		return nil, fmt.Errorf("%s: unsupported function %q", path, name)
	}
	return elementwise{a}, nil
}

type elementwise struct{ a activation }

func (e elementwise) forward(x tensor) (tensor, error) {
	y := make([]float32, len(x.data))
	for i, v := range x.data {
		y[i] = e.a.f(v)
	}
	return tensor{y, x.shape}, nil
}

type softmax struct{}

func (softmax) forward(x tensor) (tensor, error) {
	if len(x.shape) == 0 || x.shape[len(x.shape)-1] == 0 {
		return x, nil
	}
	k := x.shape[len(x.shape)-1]
	y := make([]float32, len(x.data))
	for o := 0; o < len(y); o += k {
		m := math.Inf(-1)
		for _, v := range x.data[o : o+k] {
			m = math.Max(m, float64(v))
		}
		var s float64
		for i, v := range x.data[o : o+k] {
			e := math.Exp(float64(v) - m)
			y[o+i] = float32(e)
			s += e
		}
		for i := range k {
			y[o+i] = float32(float64(y[o+i]) / s)
		}
	}
	return tensor{y, x.shape}, nil
}

type flatten struct{}

func (flatten) forward(x tensor) (tensor, error) {
	if len(x.shape) < 2 {
		return x, nil
	}
	return tensor{x.data, []int{x.shape[0], x.size() / max(x.shape[0], 1)}}, nil
}

// dense is y = σ(x W + b) for x of shape [batch, in] or [in], W stored [in, out].
type dense struct {
	w   tensor
	b   *tensor
	act activation
}

func (d *dense) forward(x tensor) (tensor, error) {
	in, out := d.w.shape[0], d.w.shape[1]
	if len(x.shape) == 0 || len(x.shape) > 2 || x.shape[len(x.shape)-1] != in {
		return tensor{}, fmt.Errorf("Dense(%d => %d) given an input of shape %v", in, out, x.shape)
	}
	n := x.size() / max(in, 1)
	if in == 0 {
		n = 1
		if len(x.shape) == 2 {
			n = x.shape[0]
		}
	}
	y := make([]float32, n*out)
	for r := range n {
		row := y[r*out : (r+1)*out]
		if d.b != nil {
			copy(row, d.b.data)
		}
		for i, xi := range x.data[r*in : (r+1)*in] {
			wr := d.w.data[i*out : (i+1)*out]
			for j := range row {
				row[j] += xi * wr[j]
			}
		}
		for j := range row {
			row[j] = d.act.f(row[j])
		}
	}
	shape := []int{out}
	if len(x.shape) == 2 {
		shape = []int{n, out}
	}
	return tensor{y, shape}, nil
}

// conv is Flux's Conv on [N, C, H, W]: a true convolution (the kernel is
// flipped, unlike CrossCor), with stride, pad, dilation and groups. The
// weight is stored [O, C/groups, KH, KW].
type conv struct {
	w      tensor
	b      *tensor
	act    activation
	sh, sw int
	dh, dw int
	pad    [4]int
	groups int
}

func (c *conv) forward(x tensor) (tensor, error) {
	O, Cg, KH, KW := c.w.shape[0], c.w.shape[1], c.w.shape[2], c.w.shape[3]
	if len(x.shape) != 4 || x.shape[1] != Cg*c.groups {
		return tensor{}, fmt.Errorf("Conv with %d input channels given an input of shape %v, want [N, C, H, W]", Cg*c.groups, x.shape)
	}
	N, C, H, W := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	OH := (H+c.pad[0]+c.pad[1]-c.dh*(KH-1)-1)/c.sh + 1
	OW := (W+c.pad[2]+c.pad[3]-c.dw*(KW-1)-1)/c.sw + 1
	if OH <= 0 || OW <= 0 {
		return tensor{}, fmt.Errorf("Conv: input %v smaller than the kernel", x.shape)
	}
	Og := O / c.groups
	y := make([]float32, N*O*OH*OW)
	for n := range N {
		for o := range O {
			g := o / Og
			var b0 float32
			if c.b != nil {
				b0 = c.b.data[o]
			}
			for oh := range OH {
				for ow := range OW {
					s := b0
					for ci := range Cg {
						xc := x.data[((n*C)+g*Cg+ci)*H*W:]
						wc := c.w.data[((o*Cg)+ci)*KH*KW:]
						for kh := range KH {
							ih := oh*c.sh - c.pad[0] + kh*c.dh
							if ih < 0 || ih >= H {
								continue
							}
							for kw := range KW {
								iw := ow*c.sw - c.pad[2] + kw*c.dw
								if iw < 0 || iw >= W {
									continue
								}
								s += xc[ih*W+iw] * wc[(KH-1-kh)*KW+(KW-1-kw)]
							}
						}
					}
					y[((n*O+o)*OH+oh)*OW+ow] = c.act.f(s)
				}
			}
		}
	}
	return tensor{y, []int{N, O, OH, OW}}, nil
}

// pool is MaxPool or MeanPool on [N, C, H, W]. MeanPool divides by the whole
// window, padding included, as NNlib does.
type pool struct {
	mean   bool
	kh, kw int
	sh, sw int
	pad    [4]int
}

func (p *pool) forward(x tensor) (tensor, error) {
	if len(x.shape) != 4 {
		return tensor{}, fmt.Errorf("pooling given an input of shape %v, want [N, C, H, W]", x.shape)
	}
	N, C, H, W := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	OH := (H+p.pad[0]+p.pad[1]-p.kh)/p.sh + 1
	OW := (W+p.pad[2]+p.pad[3]-p.kw)/p.sw + 1
	if OH <= 0 || OW <= 0 {
		return tensor{}, fmt.Errorf("pooling: input %v smaller than the window", x.shape)
	}
	y := make([]float32, N*C*OH*OW)
	for nc := range N * C {
		xc := x.data[nc*H*W:]
		for oh := range OH {
			for ow := range OW {
				m, s := math.Inf(-1), 0.0
				for kh := range p.kh {
					ih := oh*p.sh - p.pad[0] + kh
					for kw := range p.kw {
						iw := ow*p.sw - p.pad[2] + kw
						if ih < 0 || ih >= H || iw < 0 || iw >= W {
							continue
						}
						v := float64(xc[ih*W+iw])
						m, s = math.Max(m, v), s+v
					}
				}
				v := m
				if p.mean {
					v = s / float64(p.kh*p.kw)
				}
				y[(nc*OH+oh)*OW+ow] = float32(v)
			}
		}
	}
	return tensor{y, []int{N, C, OH, OW}}, nil
}

// batchNorm in test mode: per channel (dimension 1) an affine map from the
// running statistics, then the activation.
type batchNorm struct {
	scale, shift []float32
	act          activation
}

func (b *batchNorm) forward(x tensor) (tensor, error) {
	c := len(b.scale)
	if len(x.shape) < 2 || x.shape[1] != c {
		return tensor{}, fmt.Errorf("BatchNorm(%d) given an input of shape %v", c, x.shape)
	}
	inner := 1
	for _, d := range x.shape[2:] {
		inner *= d
	}
	y := make([]float32, len(x.data))
	for i, v := range x.data {
		ch := (i / inner) % c
		y[i] = b.act.f(v*b.scale[ch] + b.shift[ch])
	}
	return tensor{y, x.shape}, nil
}
