package decode_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

type spec struct {
	name  string
	dt    format.DType
	shape []int64
	comp  int
	data  []byte
}

func randomTensors(r *rand.Rand, n int) []spec {
	var out []spec
	for i := range n {
		dt := format.DTypes()[r.IntN(len(format.DTypes()))]
		rank := r.IntN(4)
		shape := make([]int64, rank)
		count := int64(1)
		for j := range shape {
			shape[j] = int64(r.IntN(40))
			count *= shape[j]
		}
		data := make([]byte, count*int64(dt.Size()))
		for j := range data {
			data[j] = byte(r.IntN(4))
		}
		comp := 0
		if r.IntN(3) == 0 {
			comp = 1 + r.IntN(4)
		}
		out = append(out, spec{name: "t" + string(rune('a'+i%26)) + "." + string(rune('0'+i/26)), dt: dt, shape: shape, comp: comp, data: data})
	}
	return out
}

func write(t testing.TB, path string, ts []spec, opts ...encode.Option) {
	t.Helper()
	w, err := encode.Create(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ts {
		var topts []encode.TensorOption
		if s.comp > 0 {
			topts = append(topts, encode.Compress(s.comp))
		}
		if len(s.data)%2 == 0 {
			err = w.Add(s.name, s.dt, s.shape, s.data, topts...)
		} else {
			err = w.AddFrom(s.name, s.dt, s.shape, bytes.NewReader(s.data), topts...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	w.SetMetadata("k", "v")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ts := randomTensors(r, 60)
	path := filepath.Join(t.TempDir(), "m.swt")
	write(t, path, ts, encode.WithChunkSize(1024), encode.WithAlignment(64))
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	open := map[string]func() (*decode.File, error){
		"mmap":   func() (*decode.File, error) { return decode.Open(path) },
		"reader": func() (*decode.File, error) { return decode.NewReader(bytes.NewReader(raw), int64(len(raw))) },
		"eager":  func() (*decode.File, error) { return decode.Open(path, decode.WithVerify(decode.VerifyEager)) },
	}
	for how, fn := range open {
		f, err := fn()
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		if f.NumTensors() != len(ts) {
			t.Fatalf("%s: %d tensors", how, f.NumTensors())
		}
		if err := f.Verify(context.Background(), decode.VerifyOptions{}); err != nil {
			t.Fatalf("%s: verify: %v", how, err)
		}
		for i, s := range ts {
			tt := f.TensorAt(i)
			if tt.Name != s.name || tt.DType != s.dt || len(tt.Shape) != len(s.shape) {
				t.Fatalf("%s: tensor %d = %+v", how, i, tt)
			}
			got, err := f.Tensor(s.name)
			if err != nil || got.Index() != i {
				t.Fatalf("%s: lookup %q: %v", how, s.name, err)
			}
			b, err := tt.Bytes()
			if err != nil {
				t.Fatalf("%s: %q: %v", how, s.name, err)
			}
			if !bytes.Equal(b, s.data) {
				t.Fatalf("%s: %q: bytes differ", how, s.name)
			}
		}
		if _, err := f.Tensor("absent"); !errors.Is(err, format.ErrNotFound) {
			t.Fatalf("%s: absent: %v", how, err)
		}
		if f.Metadata()["k"] != "v" {
			t.Fatalf("%s: metadata %v", how, f.Metadata())
		}
		f.Close()
	}
}

func TestDigestMismatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.swt")
	data := bytes.Repeat([]byte{1, 2, 3, 4}, 1000)
	write(t, path, []spec{{name: "w", dt: format.F32, shape: []int64{1000}, data: data}}, encode.WithChunkSize(1024))
	raw, _ := os.ReadFile(path)
	raw[4096+2500] ^= 1
	os.WriteFile(path, raw, 0o644)
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = f.Verify(context.Background(), decode.VerifyOptions{})
	var fe *format.FormatError
	if !errors.Is(err, format.ErrDigest) || !errors.As(err, &fe) || fe.Offset != 4096+2048 {
		t.Fatalf("got %v", err)
	}
	if _, err := decode.Open(path, decode.WithVerify(decode.VerifyEager)); !errors.Is(err, format.ErrDigest) {
		t.Fatalf("eager: %v", err)
	}
	lazy, err := decode.Open(path, decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		t.Fatal(err)
	}
	defer lazy.Close()
	w, _ := lazy.Tensor("w")
	if _, err := w.Bytes(); !errors.Is(err, format.ErrDigest) {
		t.Fatalf("lazy: %v", err)
	}
	if err := w.VerifyRange(0, 2048); err != nil {
		t.Fatalf("first chunks: %v", err)
	}
	if err := w.VerifyRange(2048, 10); !errors.Is(err, format.ErrDigest) {
		t.Fatalf("third chunk: %v", err)
	}
}

func TestView(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.swt")
	data := make([]byte, 16)
	for i := range 4 {
		data[4*i+3] = 0x3f
		data[4*i+2] = 0x80
	}
	write(t, path, []spec{{name: "w", dt: format.F32, shape: []int64{2, 2}, data: data}})
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, _ := f.Tensor("w")
	v, err := decode.View[float32](w)
	if err != nil || len(v) != 4 || v[3] != 1 {
		t.Fatalf("%v %v", v, err)
	}
	if _, err := decode.View[float64](w); err == nil {
		t.Fatal("viewed F32 as float64")
	}
}

// TestViewNamedType checks that a named element type views what its
// underlying type views, and nothing else of the same size.
func TestViewNamedType(t *testing.T) {
	type weight float32
	type count int32
	path := filepath.Join(t.TempDir(), "m.swt")
	write(t, path, []spec{
		{name: "f", dt: format.F32, shape: []int64{1}, data: []byte{0, 0, 0x80, 0x3f}},
		{name: "i", dt: format.I32, shape: []int64{1}, data: []byte{7, 0, 0, 0}},
	})
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ft, _ := f.Tensor("f")
	it, _ := f.Tensor("i")
	if v, err := decode.View[weight](ft); err != nil || v[0] != 1 {
		t.Fatalf("weight view of F32: %v %v", v, err)
	}
	if v, err := decode.View[count](it); err != nil || v[0] != 7 {
		t.Fatalf("count view of I32: %v %v", v, err)
	}
	if _, err := decode.View[weight](it); err == nil {
		t.Fatal("viewed I32 as a float32-based type")
	}
	if _, err := decode.View[count](ft); err == nil {
		t.Fatal("viewed F32 as an int32-based type")
	}
}
