package shard_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/shard"
	"github.com/safeweights/safeweights/sign"
	"github.com/safeweights/safeweights/tp"
)

type fixture struct {
	dir, index string
	paths      []string
	data       map[string][]byte
	key        ed25519.PrivateKey
	ring       *sign.KeyRing
}

// makeModel writes n shards of two tensors each and a signed index.
func makeModel(t testing.TB, dir, modelID string, n int, seed uint64) *fixture {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	fx := &fixture{dir: dir, index: filepath.Join(dir, "model.swtidx"), data: map[string][]byte{}}
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("model-%05d-of-%05d.swt", i+1, n))
		w, err := encode.Create(p, encode.WithChunkSize(1024), encode.WithAlignment(64))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{fmt.Sprintf("layers.%d.weight", i), fmt.Sprintf("layers.%d.bias", i)} {
			b := make([]byte, 4*16*(1+r.IntN(8)))
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			if err := w.Add(name, format.F32, []int64{int64(len(b) / 64), 16}, b); err != nil {
				t.Fatal(err)
			}
			fx.data[name] = b
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		fx.paths = append(fx.paths, p)
	}
	var seedBytes [ed25519.SeedSize]byte
	seedBytes[0] = byte(seed)
	priv := ed25519.NewKeyFromSeed(seedBytes[:])
	var err error
	fx.key = priv
	if fx.ring, err = sign.NewKeyRing(priv.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	idx, err := shard.Build(modelID, fx.paths)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.Sign(priv, "release", time.Unix(1764633600, 0)); err != nil {
		t.Fatal(err)
	}
	if err := shard.WriteFile(fx.index, idx); err != nil {
		t.Fatal(err)
	}
	return fx
}

func readAll(t *testing.T, m *shard.Model) error {
	t.Helper()
	for _, name := range m.Names() {
		tt, err := m.Tensor(name)
		if err != nil {
			return err
		}
		b, err := tt.Bytes()
		if err != nil {
			return err
		}
		_ = b
	}
	return nil
}

func TestOpen64(t *testing.T) {
	fx := makeModel(t, t.TempDir(), "acme/test@1", 64, 1)
	m, err := shard.Open(context.Background(), fx.index, shard.LocalOpener, fx.ring, shard.WithModelID("acme/test@1"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.NumShards() != 64 || len(m.Names()) != 128 || len(m.Verified().Signers) != 1 {
		t.Fatalf("%d shards, %d names, %v", m.NumShards(), len(m.Names()), m.Verified())
	}
	for name, want := range fx.data {
		tt, err := m.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if tt.Shape[1] != 16 {
			t.Fatalf("%s: shape %v", name, tt.Shape)
		}
		got, err := tt.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: bytes differ", name)
		}
	}
	if err := m.Verify(context.Background(), decode.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Tensor("nope"); !errors.Is(err, format.ErrNotFound) {
		t.Fatalf("missing tensor: %v", err)
	}
	// A tensor-parallel plan runs over the sharded namespace.
	plan, err := tp.NewPlan(m, 1, 2, tp.Rows)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := plan.Read(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	w := fx.data["layers.5.weight"]
	rows := int64(len(w) / 64)
	a, b := tp.Split(rows, 1, 2)
	if !bytes.Equal(parts["layers.5.weight"], w[a*64:b*64]) {
		t.Fatal("rank 1's slice of a sharded tensor differs")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRejections(t *testing.T) {
	other := makeModel(t, t.TempDir(), "acme/other@1", 8, 99)
	for _, c := range []struct {
		name   string
		change func(t *testing.T, fx *fixture)
		opts   []shard.Option
		kind   *format.Kind
		atOpen bool // rejected by Open rather than when the shard is used
	}{
		{name: "swapped", kind: format.ErrDigest, change: func(t *testing.T, fx *fixture) {
			// Another valid file in shard 3's place.
			w, err := encode.Create(fx.paths[3])
			if err != nil {
				t.Fatal(err)
			}
			w.Add("layers.3.weight", format.F32, []int64{1, 16}, make([]byte, 64))
			w.Add("layers.3.bias", format.F32, []int64{1, 16}, make([]byte, 64))
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "renamed", kind: format.ErrDigest, change: func(t *testing.T, fx *fixture) {
			tmp := fx.paths[1] + ".x"
			os.Rename(fx.paths[1], tmp)
			os.Rename(fx.paths[2], fx.paths[1])
			os.Rename(tmp, fx.paths[2])
		}},
		{name: "dropped", kind: format.ErrIO, change: func(t *testing.T, fx *fixture) {
			os.Remove(fx.paths[5])
		}},
		{name: "duplicated", kind: format.ErrDigest, change: func(t *testing.T, fx *fixture) {
			copyFile(t, fx.paths[0], fx.paths[6])
		}},
		{name: "other-model", kind: format.ErrDigest, change: func(t *testing.T, fx *fixture) {
			copyFile(t, other.paths[4], fx.paths[4])
		}},
		{name: "other-model-index", kind: format.ErrNoSignature, atOpen: true, opts: []shard.Option{shard.WithModelID("acme/test@1")}, change: func(t *testing.T, fx *fixture) {
			// The other model's index and shards, signed by the same key,
			// offered where this model is expected.
			idx, _ := shard.Build("acme/other@1", other.paths)
			idx.Sign(fx.key, "", time.Now())
			for i, p := range other.paths {
				copyFile(t, p, fx.paths[i])
			}
			for _, p := range fx.paths[len(other.paths):] {
				os.Remove(p)
			}
			b := idx.Marshal()
			os.WriteFile(fx.index, b, 0o644)
		}},
		{name: "modified-index", kind: format.ErrSignature, atOpen: true, change: func(t *testing.T, fx *fixture) {
			b, _ := os.ReadFile(fx.index)
			b = bytes.Replace(b, []byte(`"layers.7.bias"`), []byte(`"layers.7.biaz"`), 1)
			os.WriteFile(fx.index, b, 0o644)
		}},
		{name: "dropped-from-index", kind: format.ErrSignature, atOpen: true, change: func(t *testing.T, fx *fixture) {
			f := parse(t, fx.index)
			f2, err := shard.New(shard.Index{ModelID: f.Index.ModelID, Shards: f.Index.Shards[1:]})
			if err != nil {
				t.Fatal(err)
			}
			f2.Signatures = f.Signatures
			os.WriteFile(fx.index, f2.Marshal(), 0o644)
		}},
		{name: "non-canonical-index", kind: format.ErrHeader, atOpen: true, change: func(t *testing.T, fx *fixture) {
			b, _ := os.ReadFile(fx.index)
			os.WriteFile(fx.index, append(b, '\n'), 0o644)
		}},
		{name: "unsigned-index", kind: format.ErrNoSignature, atOpen: true, change: func(t *testing.T, fx *fixture) {
			f := parse(t, fx.index)
			f.Signatures = nil
			os.WriteFile(fx.index, f.Marshal(), 0o644)
		}},
		{name: "untrusted-signer", kind: format.ErrNoSignature, atOpen: true, change: func(t *testing.T, fx *fixture) {
			f := parse(t, fx.index)
			f.Signatures = nil
			f.Sign(other.key, "", time.Now())
			os.WriteFile(fx.index, f.Marshal(), 0o644)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fx := makeModel(t, t.TempDir(), "acme/test@1", 8, 1)
			m, err := shard.Open(context.Background(), fx.index, shard.LocalOpener, fx.ring, c.opts...)
			if err != nil {
				t.Fatalf("the intact model: %v", err)
			}
			if err := readAll(t, m); err != nil {
				t.Fatalf("the intact model: %v", err)
			}
			m.Close()
			c.change(t, fx)
			m, err = shard.Open(context.Background(), fx.index, shard.LocalOpener, fx.ring, c.opts...)
			if c.atOpen {
				if !errors.Is(err, c.kind) {
					t.Fatalf("Open: got %v, want %s", err, c.kind.Name())
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer m.Close()
			if err := readAll(t, m); !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want %s", err, c.kind.Name())
			}
			if c.kind == format.ErrIO {
				if err := readAll(t, m); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("a dropped shard: %v, want fs.ErrNotExist too", err)
				}
				// A shard that comes back is read: a missing one is not
				// remembered as bad.
				defer func() {
					copyFile(t, fx.paths[4], fx.paths[5]) // wrong content: now a digest error
					if err := readAll(t, m); !errors.Is(err, format.ErrDigest) {
						t.Fatalf("a shard that reappeared with other bytes: %v", err)
					}
				}()
			}
			if err := m.Verify(context.Background(), decode.VerifyOptions{}); !errors.Is(err, c.kind) {
				t.Fatalf("Verify: got %v, want %s", err, c.kind.Name())
			}
		})
	}
}

func parse(t *testing.T, path string) *shard.File {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := shard.ParseFile(b, shard.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestIndexRules(t *testing.T) {
	d := [32]byte{1}
	e := [32]byte{2}
	good := shard.Shard{Ref: "a.swt", DigestAlgorithm: format.BLAKE3, HeaderDigest: d, Tensors: []string{"x"}}
	for _, c := range []struct {
		name string
		ix   shard.Index
		kind *format.Kind
	}{
		{"no-model-id", shard.Index{Shards: []shard.Shard{good}}, format.ErrHeader},
		{"no-shards", shard.Index{ModelID: "m"}, format.ErrHeader},
		{"same-digest", shard.Index{ModelID: "m", Shards: []shard.Shard{good, {Ref: "b.swt", DigestAlgorithm: format.BLAKE3, HeaderDigest: d, Tensors: []string{"y"}}}}, format.ErrDuplicate},
		{"same-ref", shard.Index{ModelID: "m", Shards: []shard.Shard{good, {Ref: "a.swt", DigestAlgorithm: format.BLAKE3, HeaderDigest: e, Tensors: []string{"y"}}}}, format.ErrDuplicate},
		{"tensor-in-two", shard.Index{ModelID: "m", Shards: []shard.Shard{good, {Ref: "b.swt", DigestAlgorithm: format.BLAKE3, HeaderDigest: e, Tensors: []string{"x"}}}}, format.ErrDuplicate},
		{"ref-escapes", shard.Index{ModelID: "m", Shards: []shard.Shard{{Ref: "../a.swt", DigestAlgorithm: format.BLAKE3, HeaderDigest: d, Tensors: []string{"x"}}}}, format.ErrName},
		{"ref-url", shard.Index{ModelID: "m", Shards: []shard.Shard{{Ref: "http://x/a", DigestAlgorithm: format.BLAKE3, HeaderDigest: d, Tensors: []string{"x"}}}}, format.ErrName},
		{"empty-name", shard.Index{ModelID: "m", Shards: []shard.Shard{{Ref: "a", DigestAlgorithm: format.BLAKE3, HeaderDigest: d, Tensors: []string{""}}}}, format.ErrName},
	} {
		if _, err := shard.New(c.ix); !errors.Is(err, c.kind) {
			t.Errorf("%s: got %v, want %s", c.name, err, c.kind.Name())
		}
	}
	f, err := shard.New(shard.Index{ModelID: "m\u2028\"é", Shards: []shard.Shard{{Ref: "a.swt", DigestAlgorithm: format.SHA256, HeaderDigest: d, Tensors: []string{"b\n", "a\x01"}}}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := shard.ParseFile(f.Marshal(), shard.Limits{})
	if err != nil {
		t.Fatalf("the canonical form does not parse: %v\n%s", err, f.Marshal())
	}
	if !bytes.Equal(g.Marshal(), f.Marshal()) || g.Index.Shards[0].Tensors[0] != "a\x01" {
		t.Fatal("the index did not survive a round trip")
	}
	for _, bad := range []string{
		strings.Replace(string(f.Marshal()), `"version":1`, `"version":2`, 1),
		strings.Replace(string(f.Marshal()), `"a\u0001"`, `"a\u0001","a\u0001"`, 1),
		strings.Replace(string(f.Marshal()), `{"index":`, `{"extra":1,"index":`, 1),
		strings.Replace(string(f.Marshal()), `"é`, `"\u00e9`, 1),
	} {
		if _, err := shard.ParseFile([]byte(bad), shard.Limits{}); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	if _, err := shard.ParseFile(f.Marshal(), shard.Limits{MaxIndexSize: 10}); !errors.Is(err, format.ErrLimit) {
		t.Errorf("size limit: %v", err)
	}
}

func TestResolve(t *testing.T) {
	for _, c := range [][3]string{
		{"https://h/m/model.swtidx", "a.swt", "https://h/m/a.swt"},
		{"s3://b/k/model.swtidx", "a.swt", "s3://b/k/a.swt"},
		{"dir/model.swtidx", "a.swt", "dir/a.swt"},
		{"model.swtidx", "a.swt", "a.swt"},
	} {
		if got := shard.Resolve(c[0], c[1]); got != c[2] {
			t.Errorf("Resolve(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

func TestLocalOpenerRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := shard.LocalOpener(context.Background(), dir); err == nil {
		t.Fatal("opened a directory")
	}
}

func TestIndexLimitsAndTimestamps(t *testing.T) {
	fx := makeModel(t, t.TempDir(), "acme/limits@1", 3, 4)
	b, err := os.ReadFile(fx.index)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shard.ParseFile(b, shard.Limits{MaxShards: 2}); !errors.Is(err, format.ErrLimit) {
		t.Errorf("3 shards under a limit of 2: %v", err)
	}
	if _, err := shard.ParseFile(b, shard.Limits{MaxTensors: 5}); !errors.Is(err, format.ErrLimit) {
		t.Errorf("6 tensors under a limit of 5: %v", err)
	}
	f := parse(t, fx.index)
	if err := f.Sign(fx.key, "before the epoch", time.Unix(-86400, 0)); err != nil {
		t.Fatal(err)
	}
	if len(f.Signatures) != 1 {
		t.Fatalf("re-signing with the same key left %d entries", len(f.Signatures))
	}
	g, err := shard.ParseFile(f.Marshal(), shard.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Signatures[0].Timestamp != -86400 {
		t.Fatalf("timestamp %d", g.Signatures[0].Timestamp)
	}
	if _, err := g.Verify(fx.ring); err != nil {
		t.Fatal(err)
	}
	// The signature covers the timestamp and the comment.
	bad := bytes.Replace(f.Marshal(), []byte(`"timestamp":-86400`), []byte(`"timestamp":-86401`), 1)
	h, err := shard.ParseFile(bad, shard.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Verify(fx.ring); !errors.Is(err, format.ErrSignature) {
		t.Fatalf("a changed timestamp: %v", err)
	}
}
