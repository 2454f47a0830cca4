package encode_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

type tensor struct {
	name  string
	dt    format.DType
	shape []int64
	data  []byte
	level int
	attrs map[string]string
}

// model derives tensors and options from the fuzzer's inputs.
func model(seed uint64, n, opt uint8, payload []byte) ([]tensor, []encode.Option, map[string]string) {
	r := rand.New(rand.NewPCG(seed, uint64(len(payload))))
	opts := []encode.Option{
		encode.WithAlignment(64 << (opt & 3)),
		encode.WithChunkSize(1024 << (opt >> 2 & 3)),
		encode.WithWorkers(1 + int(opt>>4&1)),
	}
	if opt&0x20 != 0 {
		opts = append(opts, encode.WithDigest(format.SHA256))
	}
	meta := map[string]string{}
	if opt&0x40 != 0 {
		// Metadata must be UTF-8 (R23); the encoder's refusal of other
		// bytes is checked in FuzzRoundTrip below.
		meta["k"] = strings.ToValidUTF8(string(payload[:min(len(payload), 8)]), "?")
		meta["\u00e9"] = ""
		opts = append(opts, encode.WithProvenance(format.Provenance{SourceFormat: "fuzz", SourceSHA256: make([]byte, 32), Converter: "c",
			Notes: []format.KeyValue{{Key: "n", Value: "v"}}}))
	}
	alphabet := []string{"a", "b", ".", "0", "\u00e9", "\U0001F600", "z"}
	names := map[string]bool{}
	var ts []tensor
	src := 0
	for range int(n % 12) {
		dts := format.DTypes()
		t := tensor{dt: dts[r.IntN(len(dts))], attrs: map[string]string{}}
		for t.name == "" || names[t.name] {
			t.name += alphabet[r.IntN(len(alphabet))]
		}
		names[t.name] = true
		count := int64(1)
		for range r.IntN(4) {
			d := int64(r.IntN(6))
			if r.IntN(8) == 0 && count < 50 {
				d = int64(r.IntN(600)) // several chunks, at most 480 KiB
			}
			t.shape = append(t.shape, d)
			count *= d
		}
		t.data = make([]byte, count*int64(t.dt.Size()))
		for i := range t.data {
			if len(payload) > 0 {
				t.data[i] = payload[src%len(payload)]
				src++
			}
		}
		if r.IntN(3) == 0 {
			t.level = 1 + r.IntN(4)
		}
		if r.IntN(4) == 0 {
			t.attrs["role"] = alphabet[r.IntN(len(alphabet))]
		}
		ts = append(ts, t)
	}
	return ts, opts, meta
}

func writeModel(t *testing.T, path string, ts []tensor, opts []encode.Option, meta map[string]string, fromReader bool) []byte {
	w, err := encode.Create(path, append(opts, encode.WithMetadata(meta))...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range ts {
		var topts []encode.TensorOption
		if tt.level > 0 {
			topts = append(topts, encode.Compress(tt.level))
		}
		for _, k := range slices.Sorted(maps.Keys(tt.attrs)) {
			topts = append(topts, encode.Attribute(k, tt.attrs[k]))
		}
		if fromReader {
			err = w.AddFrom(tt.name, tt.dt, tt.shape, bytes.NewReader(tt.data), topts...)
		} else {
			err = w.Add(tt.name, tt.dt, tt.shape, tt.data, topts...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzRoundTrip encodes random tensors with random options and checks that
// both readers give them back, that digests verify, and that the output is
// deterministic (from memory or from a reader, the same bytes).
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint64(1), uint8(3), uint8(0), []byte("hello, world"))
	f.Add(uint64(2), uint8(11), uint8(0xff), bytes.Repeat([]byte{0, 0, 1}, 100))
	f.Add(uint64(3), uint8(0), uint8(0x40), []byte{})
	f.Add(uint64(4), uint8(7), uint8(0x25), []byte{0xff, 0x00, 0x80})
	f.Fuzz(func(t *testing.T, seed uint64, n, opt uint8, payload []byte) {
		ts, opts, meta := model(seed, n, opt, payload)
		dir := t.TempDir()
		if !utf8.Valid(payload) {
			// Bytes that are not UTF-8 are refused as metadata when given.
			_, err := encode.Create(filepath.Join(dir, "bad.swt"), encode.WithMetadata(map[string]string{"k": string(payload)}))
			if !errors.Is(err, format.ErrMetadata) {
				t.Fatalf("non-UTF-8 metadata: %v", err)
			}
		}
		path := filepath.Join(dir, "m.swt")
		data := writeModel(t, path, ts, opts, meta, false)
		if again := writeModel(t, filepath.Join(dir, "again.swt"), ts, opts, meta, true); !bytes.Equal(data, again) {
			t.Fatal("Add and AddFrom wrote different bytes")
		}
		mf, err := decode.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer mf.Close()
		rf, err := decode.NewReader(bytes.NewReader(data), int64(len(data)), decode.WithVerify(decode.VerifyLazy))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []*decode.File{mf, rf} {
			if err := f.Verify(context.Background(), decode.VerifyOptions{}); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(f.Metadata(), meta) || f.NumTensors() != len(ts) {
				t.Fatalf("metadata %v, %d tensors", f.Metadata(), f.NumTensors())
			}
			for i, want := range ts {
				got := f.TensorAt(i)
				if got.Name != want.name || got.DType != want.dt || !slices.Equal(got.Shape, want.shape) && len(want.shape) > 0 ||
					len(got.Shape) != len(want.shape) || (want.level > 0 && len(want.data) > 0) != (got.Compression == format.Zstd) {
					t.Fatalf("tensor %d: got %+v, want %+v", i, got, want)
				}
				if len(want.attrs) > 0 && !maps.Equal(got.Attributes, want.attrs) {
					t.Fatalf("tensor %q: attributes %v", want.name, got.Attributes)
				}
				b, err := got.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, want.data) {
					t.Fatalf("tensor %q: bytes differ", want.name)
				}
			}
		}
	})
}
