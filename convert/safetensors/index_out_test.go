package safetensors

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/shard"
	"github.com/safeweights/safeweights/sign"
)

func TestConvertShardsIndexed(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	index, all := shardedCheckpoint(t, src)
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	reports, out, err := ConvertShardsIndexed(context.Background(), index, dst, "test/model@1", []crypto.Signer{priv}, "converted")
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 3 {
		t.Fatalf("%d reports", len(reports))
	}
	ring, _ := sign.NewKeyRing(priv.Public().(ed25519.PublicKey))
	m, err := shard.Open(context.Background(), out, shard.LocalOpener, ring, shard.WithModelID("test/model@1"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.NumShards() != 3 || len(m.Names()) != len(all) {
		t.Fatalf("%d shards, %d tensors, want 3 and %d", m.NumShards(), len(m.Names()), len(all))
	}
	for _, want := range all {
		tt, err := m.Tensor(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tt.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Data) {
			t.Fatalf("%s: bytes differ from the source", want.Name)
		}
	}
	// Unsigned when no signer is given: refused under a key ring.
	_, out, err = ConvertShardsIndexed(context.Background(), index, t.TempDir(), "test/model@1", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shard.Open(context.Background(), out, shard.LocalOpener, ring); !errors.Is(err, format.ErrNoSignature) {
		t.Fatalf("an unsigned index: %v", err)
	}
}
