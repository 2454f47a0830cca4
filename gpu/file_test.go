package gpu

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// writeFile writes a real .swt with raw and compressed tensors of odd sizes
// and returns its path and the offset of tensor "w1" in it.
func writeFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.swt")
	w, err := encode.Create(path, encode.WithAlignment(4096), encode.WithChunkSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	add := func(name string, n int, opts ...encode.TensorOption) {
		b := make([]byte, n*4)
		for i := range b {
			b[i] = byte(r.Uint32() & 0x0F) // compressible
		}
		if err := w.Add(name, format.F32, []int64{int64(n)}, b, opts...); err != nil {
			t.Fatal(err)
		}
	}
	add("w0", 1)
	add("w1", 70001)
	add("z", 3000, encode.Compress(1))
	add("w2", 1024)
	add("w3", 250000)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDecodedFile(t *testing.T) {
	path := writeFile(t)
	for _, p := range []Path{Auto, Mapped, Direct, Buffered} {
		t.Run(p.String(), func(t *testing.T) {
			f, err := decode.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			dev := newFakeDev()
			m, err := Load(context.Background(), f, withFake(dev), WithPath(p), WithVerify(), WithWindowSize(64<<10))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case p == Auto && m.Stats.Path != Mapped && m.Stats.Note == "":
				// A file just written is in the page cache.
				t.Errorf("auto chose %v for a cached file (resident %.2f)", m.Stats.Path, m.Stats.Resident)
			case p == Direct && m.Stats.Path != Direct && m.Stats.Note == "":
				t.Errorf("direct became %v without a note", m.Stats.Path)
			}
			t.Logf("path %v, note %q", m.Stats.Path, m.Stats.Note)
			if err := m.Check(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			for _, lt := range m.Tensors {
				if lt.Offset%4096 != 0 {
					t.Errorf("%s at offset %d of the allocation: alignment lost", lt.Name, lt.Offset)
				}
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			dev.assertClean(t, 0)
		})
	}
}

func TestLoadDecodedFileCorrupt(t *testing.T) {
	path := writeFile(t)
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tt, err := f.Tensor("w3")
	if err != nil {
		t.Fatal(err)
	}
	off := tt.Offset + 7*1024 + 9
	f.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x80
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err = decode.Open(path, decode.WithVerify(decode.VerifyNone))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range []Path{Mapped, Buffered, Direct} {
		dev := newFakeDev()
		_, err = Load(context.Background(), f, withFake(dev), WithPath(p), WithVerify())
		var de *DigestError
		if !errors.As(err, &de) || de.Tensor != "w3" || de.Chunk != 7 {
			t.Fatalf("%v: got %v, want a digest error in w3 chunk 7", p, err)
		}
		dev.assertClean(t, 0)
	}
}

func TestSummaryJSON(t *testing.T) {
	v := buildView(15, oddSpecs(1024), 64, 1024)
	f := newFakeDev()
	m, err := loadView(context.Background(), v, withFake(f), WithPath(Mapped))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, err := json.Marshal(m.Summary("m.swt", true))
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Path    string
		Bytes   int64
		Tensors []struct {
			Name       string
			FileOffset int64 `json:"file_offset"`
		}
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Path != "mapped" || back.Bytes != m.Stats.Bytes || len(back.Tensors) != len(v.tensors) || back.Tensors[1].FileOffset != v.tensors[1].offset {
		t.Fatalf("summary %s", b)
	}
}

// A file opened under a verify mode or a policy is verified without
// WithVerify; one that asks for checked reads never copies from its
// mapping, whatever path is asked for.
func TestLoadHonoursFileVerification(t *testing.T) {
	path := writeFile(t)
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tt, err := f.Tensor("w3")
	if err != nil {
		t.Fatal(err)
	}
	off := tt.Offset + 3*1024 + 1
	f.Close()

	for _, p := range []Path{Auto, Mapped, Direct, Buffered} {
		f, err := decode.Open(path, decode.WithCheckedReads())
		if err != nil {
			t.Fatal(err)
		}
		dev := newFakeDev()
		m, err := Load(context.Background(), f, withFake(dev), WithPath(p), WithWindowSize(64<<10))
		if err != nil {
			t.Fatal(err)
		}
		if m.Stats.Path == Mapped || !m.Stats.Verified {
			t.Errorf("%v with checked reads: path %v, verified %v", p, m.Stats.Path, m.Stats.Verified)
		}
		if p == Mapped && m.Stats.Note == "" {
			t.Errorf("mapped refused without a note")
		}
		if err := m.Check(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		m.Close()
		f.Close()
		dev.assertClean(t, 0)
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []decode.VerifyMode{decode.VerifyLazy} {
		for _, p := range []Path{Mapped, Direct, Buffered} {
			f, err := decode.Open(path, decode.WithVerify(mode))
			if err != nil {
				t.Fatal(err)
			}
			dev := newFakeDev()
			_, err = Load(context.Background(), f, withFake(dev), WithPath(p))
			var de *DigestError
			if !errors.As(err, &de) || de.Tensor != "w3" {
				t.Errorf("%v under %v without WithVerify: %v, want a digest error in w3", p, mode, err)
			}
			f.Close()
			dev.assertClean(t, 0)
		}
	}
}

// Nonzero padding between tensors fails a verified load before any copy.
func TestLoadChecksPadding(t *testing.T) {
	path := writeFile(t)
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	w0, _ := f.Tensor("w0")
	gap := w0.Offset + w0.StoredLength // w0 is 4 bytes, aligned to 4096: padding follows
	f.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[gap+10] = 0x5A
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Path{Mapped, Buffered} {
		f, err := decode.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		dev := newFakeDev()
		_, err = Load(context.Background(), f, withFake(dev), WithPath(p), WithVerify())
		if !errors.Is(err, format.ErrPadding) {
			t.Errorf("%v: %v, want a padding error", p, err)
		}
		f.Close()
		dev.assertClean(t, 0)
	}
}
