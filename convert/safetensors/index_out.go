package safetensors

import (
	"context"
	"crypto"
	"path/filepath"
	"time"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/shard"
)

// IndexName is the name of the shard index that ConvertShardsIndexed
// writes beside the shards.
const IndexName = "model" + shard.Ext

// ConvertShardsIndexed converts a sharded checkpoint as ConvertShards does
// and then writes dstDir/model.swtidx, the signed shard index of
// spec/SHARDS.md that names every shard written by its header digest, for
// the model modelID. Each signer (Ed25519) signs the index with comment;
// with no signer the index is written unsigned, and readers that require a
// trusted signature refuse it until it is signed. It returns the shard
// reports and the index's path. opts are as for ConvertShards.
func ConvertShardsIndexed(ctx context.Context, indexPath, dstDir, modelID string, signers []crypto.Signer, comment string, opts ...convert.Option) ([]*convert.Report, string, error) {
	reports, err := ConvertShards(ctx, indexPath, dstDir, opts...)
	if err != nil {
		return nil, "", err
	}
	paths := make([]string, len(reports))
	for i, r := range reports {
		paths[i] = r.Output
	}
	idx, err := shard.Build(modelID, paths)
	if err != nil {
		return nil, "", err
	}
	now := time.Now()
	for _, s := range signers {
		if err := idx.Sign(s, comment, now); err != nil {
			return nil, "", err
		}
	}
	out := filepath.Join(dstDir, IndexName)
	if err := shard.WriteFile(out, idx); err != nil {
		return nil, "", err
	}
	return reports, out, nil
}
