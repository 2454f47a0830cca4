package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"github.com/safeweights/safeweights/internal/safeopen"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/safeweights/safeweights/convert/npy"
	"github.com/safeweights/safeweights/convert/safetensors"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/shard"
	"github.com/safeweights/safeweights/sign"
)

// Sharded models (spec/SHARDS.md): the reading commands take a shard index
// wherever they take a .swt file. The commands call these functions when
// isShardIndex says so.

// indexPrefix is how every index file starts (its canonical form).
var indexPrefix = []byte(`{"index":{"format":"safeweights-shard-index"`)

// isShardIndex reports whether path names a shard index, by its content.
func isShardIndex(path string) bool {
	if path == "-" {
		return false
	}
	if isURL(path) { // remote.go
		return isRemoteIndex(path)
	}
	fh, _, err := safeopen.Open(path) // a FIFO is refused, never waited on
	if err != nil {
		return false
	}
	defer fh.Close()
	b := make([]byte, len(indexPrefix))
	n, _ := fh.ReadAt(b, 0)
	return bytes.Equal(b[:n], indexPrefix)
}

// openIndex opens the sharded model at path. With trusted keys its
// signature must verify; without, it is read unverified (the shards are
// still checked against it).
func openIndex(path, trusted string) (*shard.Model, error) {
	if trusted == "" {
		return shard.Open(context.Background(), path, shardOpener, nil, shard.UnsafeSkipSignature(),
			shard.WithDecodeOptions(decode.WithVerify(decode.VerifyLazy)))
	}
	kr, err := sign.LoadKeyRing(trusted)
	if err != nil {
		return nil, err
	}
	return shard.Open(context.Background(), path, shardOpener, kr)
}

type indexInfo struct {
	Path       string          `json:"path"`
	ModelID    string          `json:"model_id"`
	Shards     []indexShard    `json:"shards"`
	Tensors    int             `json:"tensors"`
	Signatures []signatureInfo `json:"signatures"`
}

type indexShard struct {
	Ref             string   `json:"ref"`
	DigestAlgorithm string   `json:"digest_algorithm"`
	HeaderDigest    string   `json:"header_digest"`
	Tensors         []string `json:"tensors"`
}

// inspectIndex prints a shard index: its model, shards and signatures. No
// shard is opened and no signature checked.
func inspectIndex(e *env, path string, jsonOut bool) error {
	m, err := openIndex(path, "")
	if err != nil {
		return err
	}
	defer m.Close()
	ix := m.Index()
	info := indexInfo{Path: path, ModelID: ix.Index.ModelID, Tensors: len(m.Names()), Signatures: []signatureInfo{}}
	for _, s := range ix.Index.Shards {
		info.Shards = append(info.Shards, indexShard{Ref: s.Ref, DigestAlgorithm: s.DigestAlgorithm.String(), HeaderDigest: hex.EncodeToString(s.HeaderDigest[:]), Tensors: s.Tensors})
	}
	for _, s := range ix.Signatures {
		info.Signatures = append(info.Signatures, signatureInfo{KeyID: s.KeyID.String(), Algorithm: s.Algorithm, Timestamp: rfc3339(s.Timestamp), TimestampUnix: s.Timestamp, Comment: s.Comment})
	}
	if jsonOut {
		return writeJSON(e.stdout, info)
	}
	w := e.stdout
	fmt.Fprintf(w, "shard index: %s\n", clean(path))
	fmt.Fprintf(w, "model:       %s\n", clean(info.ModelID))
	fmt.Fprintf(w, "shards:      %d, %d tensors\n", len(info.Shards), info.Tensors)
	for _, s := range info.Shards {
		fmt.Fprintf(w, "  %s  %s:%s  %d tensors\n", clean(s.Ref), s.DigestAlgorithm, s.HeaderDigest[:16], len(s.Tensors))
	}
	fmt.Fprintf(w, "signatures:  %d (not checked; use 'safeweights verify --trusted')\n", len(info.Signatures))
	for _, s := range info.Signatures {
		fmt.Fprintf(w, "  %s %s %s %q\n", s.KeyID[:16], s.Algorithm, s.Timestamp, clean(s.Comment))
	}
	return nil
}

// verifyIndex checks a sharded model: the index's signature under trusted
// keys (if given), then every shard against the index and every digest.
func verifyIndex(e *env, path, trusted string, jsonOut bool) error {
	m, err := openIndex(path, trusted)
	if err != nil {
		return verifyFailed(e, jsonOut, path, err)
	}
	defer m.Close()
	b := e.newSpinner("verify")
	err = m.Verify(context.Background(), decode.VerifyOptions{})
	b.finish()
	if err != nil {
		return verifyFailed(e, jsonOut, path, err)
	}
	res := &verifyResult{Path: path, OK: true, Tensors: len(m.Names()), Signatures: len(m.Index().Signatures), DataVerified: true}
	if v := m.Verified(); v != nil {
		res.HeaderVerified = true
		res.Authenticated = trusted != ""
		for _, s := range v.Signers {
			res.Signers = append(res.Signers, signerInfo{KeyID: s.KeyID.String(), Trusted: true, Comment: s.Comment, Timestamp: rfc3339(s.Timestamp), TimestampUnix: s.Timestamp})
		}
	}
	if jsonOut {
		return writeJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "ok: %s: model %s, %d shards, %d tensors, every shard matches the index and every digest verified\n",
		clean(path), clean(m.ModelID()), m.NumShards(), res.Tensors)
	if trusted == "" {
		fmt.Fprintf(e.stdout, "not authenticated (--integrity-only): %d index signatures present, not checked\n", res.Signatures)
		return nil
	}
	fmt.Fprintln(e.stdout, "authenticated: the index is signed by a trusted key")
	for _, s := range res.Signers {
		fmt.Fprintf(e.stdout, "index signed by %s: trusted, verified", s.KeyID[:16])
		if s.Comment != "" {
			fmt.Fprintf(e.stdout, ", %q", s.Comment)
		}
		fmt.Fprintln(e.stdout)
	}
	return nil
}

// extractIndex is extract over a sharded model.
func extractIndex(e *env, path, name, out, all, spec, trusted string) error {
	m, err := openIndex(path, trusted)
	if err != nil {
		return err
	}
	defer m.Close()
	if all == "" {
		t, err := m.Tensor(name)
		if err != nil {
			return err
		}
		if spec != "" {
			return extractSlice(e, t, spec, out)
		}
		data, err := t.Bytes()
		if err != nil {
			return err
		}
		noteInexact(e, t)
		return writeNPY(e, out, t, t.Shape, data)
	}
	if err := os.MkdirAll(all, 0o755); err != nil {
		return err
	}
	names := m.Names()
	files := npy.FileNames(names, ".npy")
	index := make(map[string]string, len(files))
	for i := range files {
		if !filepath.IsLocal(files[i]) || filepath.Base(files[i]) != files[i] || files[i] == "index.json" {
			return failf("extract: tensor %s maps to the unsafe file name %q", clean(names[i]), files[i])
		}
		t, err := m.Tensor(names[i])
		if err != nil {
			return err
		}
		data, err := t.Bytes()
		if err != nil {
			return err
		}
		noteInexact(e, t)
		if err := npy.WriteFile(filepath.Join(all, files[i]), t.DType, t.Shape, data); err != nil {
			return err
		}
		index[files[i]] = t.Name
	}
	var b bytes.Buffer
	if err := writeJSON(&b, index); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(all, "index.json"), b.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %d tensors of %d shards to %s (index.json maps file names to tensor names)\n", len(files), m.NumShards(), clean(all))
	return nil
}

// maxSourceIndex bounds the safetensors shard index that convert sniffs.
const maxSourceIndex = 64 << 20

// isSafetensorsIndex reports whether path is a sharded safetensors
// checkpoint's index (model.safetensors.index.json), by its content.
func isSafetensorsIndex(path string) bool {
	fh, st, err := safeopen.Open(path)
	if err != nil {
		return false
	}
	defer fh.Close()
	if st.Size() > maxSourceIndex || st.Size() < 2 {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(fh, maxSourceIndex+1))
	if err != nil || len(b) > maxSourceIndex {
		return false
	}
	_, err = safetensors.ParseIndex(b, safetensors.Limits{})
	return err == nil
}

// convertShardsIndexed converts a sharded safetensors checkpoint into one
// .swt file per shard in the directory outDir and writes outDir/model.swtidx,
// the shard index, signed with the key at keyPath when one is given.
func convertShardsIndexed(e *env, in, outDir, modelID, keyPath string, jsonOut bool) error {
	if modelID == "" {
		modelID = filepath.Base(filepath.Dir(mustAbs(in)))
	}
	var signers []crypto.Signer
	if keyPath != "" {
		priv, err := loadPrivateKey(keyPath, "")
		if err != nil {
			return err
		}
		signers = append(signers, priv)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	b := e.newBar("convert", 0)
	reports, idx, err := safetensors.ConvertShardsIndexed(ctx, in, outDir, modelID, signers, "converted", convertOptions(false, false, b)...)
	b.finish()
	if err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(e.stdout, map[string]any{"index": idx, "model_id": modelID, "signed": len(signers) > 0, "shards": reports})
	}
	for _, r := range reports {
		printReport(e.stdout, r)
	}
	state := "unsigned: sign it with 'safeweights sign " + clean(idx) + " --key KEY'"
	if len(signers) > 0 {
		state = "signed"
	}
	fmt.Fprintf(e.stdout, "wrote shard index %s for model %s: %d shards, %s\n", clean(idx), clean(modelID), len(reports), state)
	return nil
}

func mustAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// signIndex adds a signature by priv to the shard index at path.
func signIndex(e *env, path string, priv ed25519.PrivateKey, comment string) error {
	ix, err := shard.ReadIndex(context.Background(), path, shard.LocalOpener, shard.Limits{})
	if err != nil {
		return err
	}
	if err := ix.Sign(priv, comment, time.Now()); err != nil {
		return err
	}
	if err := shard.WriteFile(path, ix); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "signed shard index %s with key %s\n", clean(path), sign.KeyIDOf(priv.Public().(ed25519.PublicKey)).Short())
	return nil
}
