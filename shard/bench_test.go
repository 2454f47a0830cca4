package shard_test

import (
	"context"
	"testing"

	"github.com/safeweights/safeweights/shard"
)

// BenchmarkOpen64 opens and verifies the signed index of a 64-shard model
// (no shard is opened), then opens every shard once and checks it against
// the index.
func BenchmarkOpen64(b *testing.B) {
	fx := makeModel(b, b.TempDir(), "acme/bench@1", 64, 3)
	b.Run("index", func(b *testing.B) {
		for b.Loop() {
			m, err := shard.Open(context.Background(), fx.index, shard.LocalOpener, fx.ring)
			if err != nil {
				b.Fatal(err)
			}
			m.Close()
		}
	})
	b.Run("index+shards", func(b *testing.B) {
		for b.Loop() {
			m, err := shard.Open(context.Background(), fx.index, shard.LocalOpener, fx.ring)
			if err != nil {
				b.Fatal(err)
			}
			for i := range m.NumShards() {
				if _, err := m.Shard(context.Background(), i); err != nil {
					b.Fatal(err)
				}
			}
			m.Close()
		}
	})
}
