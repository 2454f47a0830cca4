package shard_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/shard"
)

// FuzzParseFile: a hostile index either fails with a kind of the closed
// list or parses to a file whose canonical encoding is the input itself.
func FuzzParseFile(f *testing.F) {
	fx := makeModel(f, f.TempDir(), "acme/fuzz@1", 3, 5)
	b, err := os.ReadFile(fx.index)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"index":{"format":"safeweights-shard-index","model_id":"m","shards":[],"version":1},"signatures":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := shard.ParseFile(data, shard.Limits{MaxShards: 64, MaxTensors: 256})
		if err != nil {
			if format.KindOf(err) == nil {
				t.Fatalf("an error of no kind: %v", err)
			}
			return
		}
		if !bytes.Equal(idx.Marshal(), data) {
			t.Fatal("parsed an index that is not its own canonical form")
		}
		if _, err := idx.Verify(nil); !errors.Is(err, format.ErrNoSignature) {
			t.Fatalf("verified with no trusted key: %v", err)
		}
	})
}
