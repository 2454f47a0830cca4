package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/safeweights/safeweights/convert/bson"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
)

// fluxDense is one Dense layer as Julia holds it: W of size (out, in),
// column-major, so W[j, i] is w[j+out*i].
type fluxDense struct {
	in, out int
	w, b    []float32
	act     string
}

// mlp returns Chain(Dense(4 => 8, relu), Dense(8 => 3, tanh), softmax) with
// weights from seed.
func mlp(seed uint64) []fluxDense {
	rng := seed
	next := func() float32 {
		rng ^= rng >> 12
		rng ^= rng << 25
		rng ^= rng >> 27
		return float32(int64((rng*2685821657736338717)>>40)-(1<<23)) / float32(1<<23)
	}
	layer := func(in, out int, act string) fluxDense {
		d := fluxDense{in: in, out: out, w: make([]float32, in*out), b: make([]float32, out), act: act}
		for i := range d.w {
			d.w[i] = next()
		}
		for i := range d.b {
			d.b[i] = next() / 4
		}
		return d
	}
	return []fluxDense{layer(4, 8, "relu"), layer(8, 3, "tanh")}
}

// predictDirect is the model computed straight from the Julia arrays, in
// float64, as a check independent of the server's code and of the
// converter's layout.
func predictDirect(layers []fluxDense, x []float64) []float64 {
	for _, l := range layers {
		y := make([]float64, l.out)
		for j := range l.out {
			s := float64(l.b[j])
			for i := range l.in {
				s += float64(l.w[j+l.out*i]) * x[i]
			}
			switch l.act {
			case "relu":
				s = math.Max(s, 0)
			case "tanh":
				s = math.Tanh(s)
			}
			y[j] = s
		}
		x = y
	}
	var m, sum float64 = math.Inf(-1), 0
	for _, v := range x {
		m = math.Max(m, v)
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = math.Exp(v - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// writeBSON writes the layers as BSON.jl writes `BSON.@save path model` for
// model = Chain(layers..., softmax).
func writeBSON(t *testing.T, path string, layers []fluxDense) {
	t.Helper()
	fn := func(act string) []byte {
		switch act {
		case "identity":
			return datatype([]string{"Main", "Base", "#identity"})
		case "tanh":
			return datatype([]string{"Main", "Base", "#tanh"})
		}
		return datatype([]string{"NNlib", "#" + act})
	}
	items := bsoncore.NewArrayBuilder()
	for _, l := range layers {
		params := bsoncore.NewArrayBuilder().
			AppendDocument(fn(l.act)).
			AppendDocument(datatype([]string{"Core", "Array"}, datatype([]string{"Core", "Float32"}), int64(2))).
			AppendDocument(datatype([]string{"Core", "Array"}, datatype([]string{"Core", "Float32"}), int64(1))).
			Build()
		fields := bsoncore.NewArrayBuilder().
			AppendDocument(array(l.w, l.out, l.in)).
			AppendDocument(array(l.b, l.out)).
			AppendDocument(structDoc(fn(l.act), bsoncore.NewArrayBuilder().Build())).
			Build()
		typ := bsoncore.NewDocumentBuilder().
			AppendString("tag", "datatype").
			AppendArray("params", params).
			AppendArray("name", names([]string{"Flux", "Dense"})).
			Build()
		items.AppendDocument(structDoc(typ, fields))
	}
	items.AppendDocument(structDoc(fn("softmax"), bsoncore.NewArrayBuilder().Build()))
	tuple := bsoncore.NewDocumentBuilder().AppendString("tag", "tuple").AppendArray("data", items.Build()).Build()
	chain := structDoc(datatype([]string{"Flux", "Chain"}, datatype([]string{"Core", "Tuple"})),
		bsoncore.NewArrayBuilder().AppendDocument(tuple).Build())
	doc := bsoncore.NewDocumentBuilder().AppendDocument("model", chain).Build()
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
}

func names(parts []string) []byte {
	a := bsoncore.NewArrayBuilder()
	for _, p := range parts {
		a.AppendString(p)
	}
	return a.Build()
}

func datatype(name []string, params ...any) []byte {
	p := bsoncore.NewArrayBuilder()
	for _, x := range params {
		switch x := x.(type) {
		case []byte:
			p.AppendDocument(x)
		case int64:
			p.AppendInt64(x)
		}
	}
	return bsoncore.NewDocumentBuilder().
		AppendString("tag", "datatype").
		AppendArray("params", p.Build()).
		AppendArray("name", names(name)).
		Build()
}

func structDoc(typ, data []byte) []byte {
	return bsoncore.NewDocumentBuilder().
		AppendString("tag", "struct").
		AppendDocument("type", typ).
		AppendArray("data", data).
		Build()
}

func array(v []float32, dims ...int) []byte {
	size := bsoncore.NewArrayBuilder()
	for _, d := range dims {
		size.AppendInt64(int64(d))
	}
	data := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
	}
	return bsoncore.NewDocumentBuilder().
		AppendString("tag", "array").
		AppendDocument("type", datatype([]string{"Core", "Float32"})).
		AppendArray("size", size.Build()).
		AppendBinary("data", 0, data).
		Build()
}

// checkpoint converts layers to a .swt file in dir, signs it with key
// (unless key is nil) and returns its path.
func checkpoint(t *testing.T, dir, name string, layers []fluxDense, key ed25519.PrivateKey) string {
	t.Helper()
	src := filepath.Join(dir, name+".bson")
	writeBSON(t, src, layers)
	dst := filepath.Join(dir, name+".swt")
	if _, err := bson.Convert(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	if key != nil {
		if err := sign.Sign(t.Context(), dst, key, sign.WithComment("test")); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// replace renames src over dst, as a deployment replaces a model.
func replace(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.Rename(src, dst); err != nil {
		t.Fatal(err)
	}
}

func headerDigest(t *testing.T, path string) string {
	t.Helper()
	f, err := decode.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := f.Preamble().HeaderDigest
	return fmt.Sprintf("%x", d[:])
}

func TestServeAndReload(t *testing.T) {
	dir := t.TempDir()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := sign.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "trusted.pub")
	if err := os.WriteFile(keyFile, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	kr, err := sign.LoadKeyRing(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	v1, v2 := mlp(1), mlp(2)
	live := filepath.Join(dir, "model.swt")
	replace(t, checkpoint(t, dir, "v1", v1, key), live)
	d1 := headerDigest(t, live)
	s := newServer(live, kr)
	s.logf = t.Logf
	if err := s.poll(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	// The poll interval is long: the test triggers each reload itself.
	go func() { served <- serve(ctx, ln, s, time.Hour) }()
	base := "http://" + ln.Addr().String()

	inputs := [][]float64{{1, 0.5, -0.5, -1}, {0, 0, 0, 0}, {-2, 3, 0.25, 1}}
	want := map[string][]fluxDense{d1: v1}
	predict := func(x []float64) error {
		in := make([]float32, len(x))
		for i, v := range x {
			in[i] = float32(v)
		}
		body, _ := json.Marshal(predictRequest{Input: in, Shape: []int{1, len(in)}})
		resp, err := http.Post(base+"/predict", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var pr predictResponse
		if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d, %v", resp.StatusCode, err)
		}
		s.mu.Lock()
		layers, ok := want[pr.Model]
		s.mu.Unlock()
		if !ok {
			return fmt.Errorf("answered by an unknown model %s", pr.Model)
		}
		exp := predictDirect(layers, x)
		if len(pr.Output) != len(exp) || len(pr.Shape) != 2 || pr.Shape[0] != 1 || pr.Shape[1] != len(exp) {
			return fmt.Errorf("output %v of shape %v, want %v", pr.Output, pr.Shape, exp)
		}
		for i := range exp {
			if math.Abs(float64(pr.Output[i])-exp[i]) > 1e-5 {
				return fmt.Errorf("output %v, want %v", pr.Output, exp)
			}
		}
		return nil
	}
	ready := func() readiness {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r readiness
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("readyz: status %d, %v", resp.StatusCode, err)
		}
		return r
	}
	if r := ready(); !r.Ready || r.HeaderDigest != d1 || len(r.Signers) != 1 || r.Signers[0] != sign.KeyIDOf(pub).String() {
		t.Fatalf("readyz %+v, want digest %s", r, d1)
	}
	for _, x := range inputs {
		if err := predict(x); err != nil {
			t.Fatal(err)
		}
	}

	// A request in flight holds the old model: it keeps working after the
	// reload and its file closes only when it is released.
	held := s.acquire()

	// Requests run while the model is replaced.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := predict(inputs[(g+n)%len(inputs)]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	next := checkpoint(t, dir, "v2", v2, key)
	d2 := headerDigest(t, next)
	s.mu.Lock()
	want[d2] = v2
	s.mu.Unlock()
	replace(t, next, live)
	if err := s.poll(); err != nil {
		t.Fatal(err)
	}
	if r := ready(); r.HeaderDigest != d2 {
		t.Fatalf("after the reload readyz says %s, want %s", r.HeaderDigest, d2)
	}
	for _, x := range inputs {
		if err := predict(x); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	y, err := held.net.forward(tensor{data: []float32{1, 0.5, -0.5, -1}, shape: []int{4}})
	if err != nil || held.digest != d1 || math.Abs(float64(y.data[0])-predictDirect(v1, inputs[0])[0]) > 1e-5 {
		t.Fatalf("the held model answered %v, %v", y.data, err)
	}
	s.release(held)

	// Replacements that must be refused while v2 keeps serving.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	tampered := checkpoint(t, dir, "tampered", mlp(3), key)
	b, err := os.ReadFile(tampered)
	if err != nil {
		t.Fatal(err)
	}
	f, err := decode.Inspect(tampered)
	if err != nil {
		t.Fatal(err)
	}
	off := f.TensorAt(0).Offset
	f.Close()
	b[off] ^= 1 // one bit of the first tensor's data
	if err := os.WriteFile(tampered, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		kind       error
	}{
		{"unsigned", checkpoint(t, dir, "unsigned", mlp(4), nil), format.ErrNoSignature},
		{"untrusted", checkpoint(t, dir, "untrusted", mlp(5), other), format.ErrNoSignature},
		{"tampered", tampered, format.ErrDigest},
	} {
		name := c.name
		replace(t, c.path, live)
		if err := s.poll(); !errors.Is(err, c.kind) {
			t.Fatalf("%s replacement: got %v, want %v", name, err, c.kind)
		}
		if r := ready(); r.HeaderDigest != d2 || r.LastError == "" {
			t.Fatalf("%s: readyz %+v", name, r)
		}
		if err := predict(inputs[2]); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	// A model signed only in a detached FILE.swt.sig: an unsigned file
	// first is refused, and the signature arriving afterwards loads it.
	v6 := mlp(6)
	detached := checkpoint(t, dir, "detached", v6, nil)
	d6 := headerDigest(t, detached)
	s.mu.Lock()
	want[d6] = v6
	s.mu.Unlock()
	replace(t, detached, live)
	if err := s.poll(); !errors.Is(err, format.ErrNoSignature) {
		t.Fatalf("unsigned file before its signature: %v", err)
	}
	if err := sign.Sign(t.Context(), live, key, sign.WithDetached()); err != nil {
		t.Fatal(err)
	}
	if err := s.poll(); err != nil {
		t.Fatal(err)
	}
	if r := ready(); r.HeaderDigest != d6 {
		t.Fatalf("with its detached signature readyz says %s, want %s", r.HeaderDigest, d6)
	}
	if err := predict(inputs[0]); err != nil {
		t.Fatal(err)
	}

	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
