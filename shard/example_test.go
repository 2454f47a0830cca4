package shard_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/shard"
	"github.com/safeweights/safeweights/sign"
)

// Write two shards and a signed index naming each by its header digest,
// then read the model through the index.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "shard-example")
	defer os.RemoveAll(dir)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)

	var ix shard.Index
	ix.ModelID = "example-model"
	for i, name := range []string{"a.weight", "b.weight"} {
		ref := fmt.Sprintf("model-%d.swt", i+1)
		w, err := encode.Create(filepath.Join(dir, ref))
		if err != nil {
			log.Fatal(err)
		}
		w.Add(name, format.F32, []int64{2}, make([]byte, 8))
		if err := w.Close(); err != nil {
			log.Fatal(err)
		}
		f, err := decode.Inspect(filepath.Join(dir, ref))
		if err != nil {
			log.Fatal(err)
		}
		pre := f.Preamble()
		ix.Shards = append(ix.Shards, shard.Shard{Ref: ref, DigestAlgorithm: pre.DigestAlgorithm, HeaderDigest: pre.HeaderDigest, Tensors: f.Names()})
		f.Close()
	}
	idx, err := shard.New(ix)
	if err != nil {
		log.Fatal(err)
	}
	if err := idx.Sign(priv, "release", time.Now()); err != nil {
		log.Fatal(err)
	}
	indexPath := filepath.Join(dir, "model"+shard.Ext)
	if err := os.WriteFile(indexPath, idx.Marshal(), 0o644); err != nil {
		log.Fatal(err)
	}

	trusted, _ := sign.NewKeyRing(pub)
	m, err := shard.Open(context.Background(), indexPath, shard.LocalOpener, trusted, shard.WithModelID("example-model"))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	t, err := m.Tensor("b.weight")
	if err != nil {
		log.Fatal(err)
	}
	i, _ := m.ShardOf("b.weight")
	fmt.Println(m.ModelID(), m.NumShards(), m.Names(), t.Shape, i)
	// Output: example-model 2 [a.weight b.weight] [2] 1
}
