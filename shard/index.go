package shard

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/sign"
)

// Constants of index version 1 (spec/SHARDS.md).
const (
	FormatName = "safeweights-shard-index"
	Version    = 1
	// Ext is the suggested file name extension of an index.
	Ext = ".swtidx"

	MaxModelIDLength = 1024
	MaxRefLength     = 255
	MaxCommentLength = 1024

	DefaultMaxIndexSize = 64 << 20
	DefaultMaxShards    = 1 << 16
)

// Limits bound what ParseFile accepts (X2, X6). Zero fields mean defaults.
type Limits struct {
	MaxIndexSize  int64 // default 64 MiB
	MaxShards     int   // default 65,536
	MaxTensors    int   // default format.DefaultMaxTensors
	MaxSignatures int   // default format.DefaultMaxSignatures
	MaxNameLength int   // default format.DefaultMaxNameLength
}

func (l Limits) withDefaults() Limits {
	if l.MaxIndexSize <= 0 {
		l.MaxIndexSize = DefaultMaxIndexSize
	}
	if l.MaxShards <= 0 {
		l.MaxShards = DefaultMaxShards
	}
	if l.MaxTensors <= 0 {
		l.MaxTensors = format.DefaultMaxTensors
	}
	if l.MaxSignatures <= 0 {
		l.MaxSignatures = format.DefaultMaxSignatures
	}
	if l.MaxNameLength <= 0 {
		l.MaxNameLength = format.DefaultMaxNameLength
	}
	return l
}

// Shard is one shard of an index.
type Shard struct {
	// Ref is the shard's name relative to the index (X5).
	Ref             string
	DigestAlgorithm format.DigestAlgorithm
	HeaderDigest    [format.DigestSize]byte
	// Tensors are the names of the shard's tensors, sorted.
	Tensors []string
}

// Index is the signed part of an index file.
type Index struct {
	ModelID string
	Shards  []Shard
}

// Signature is one signature entry of an index file.
type Signature struct {
	Algorithm string // "ed25519"
	KeyID     sign.KeyID
	Timestamp int64
	Comment   string
	Sig       []byte
}

// File is a parsed index file: the index and its signatures.
type File struct {
	Index      Index
	Signatures []Signature
	body       []byte // the canonical bytes of Index, which signatures sign
}

// Body is the canonical encoding of the index that signatures sign.
func (f *File) Body() []byte { return f.body }

func errf(kind *format.Kind, rule, field, reason string) *format.FormatError {
	return &format.FormatError{Kind: kind, Rule: rule, Offset: -1, Field: field, Reason: reason}
}

// appendString appends s in the canonical string form (spec/SHARDS.md 2.1).
// s is valid UTF-8.
func appendString(b []byte, s string) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&15])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

func appendIndex(b []byte, ix *Index) []byte {
	b = append(b, `{"format":`...)
	b = appendString(b, FormatName)
	b = append(b, `,"model_id":`...)
	b = appendString(b, ix.ModelID)
	b = append(b, `,"shards":[`...)
	for i, s := range ix.Shards {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"digest_algorithm":`...)
		b = appendString(b, s.DigestAlgorithm.String())
		b = append(b, `,"header_digest":"`...)
		b = hex.AppendEncode(b, s.HeaderDigest[:])
		b = append(b, `","ref":`...)
		b = appendString(b, s.Ref)
		b = append(b, `,"tensors":[`...)
		for j, n := range s.Tensors {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendString(b, n)
		}
		b = append(b, "]}"...)
	}
	b = append(b, `],"version":`...)
	b = strconv.AppendInt(b, Version, 10)
	return append(b, '}')
}

func appendFile(b []byte, body []byte, sigs []Signature) []byte {
	b = append(b, `{"index":`...)
	b = append(b, body...)
	b = append(b, `,"signatures":[`...)
	for i, s := range sigs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"algorithm":`...)
		b = appendString(b, s.Algorithm)
		b = append(b, `,"comment":`...)
		b = appendString(b, s.Comment)
		b = append(b, `,"key_id":"`...)
		b = hex.AppendEncode(b, s.KeyID[:])
		b = append(b, `","signature":"`...)
		b = hex.AppendEncode(b, s.Sig)
		b = append(b, `","timestamp":`...)
		b = strconv.AppendInt(b, s.Timestamp, 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// Marshal returns the canonical bytes of the index file.
func (f *File) Marshal() []byte { return appendFile(nil, f.body, f.Signatures) }

// New checks ix (X3 to X5) and returns an unsigned index file for it. The
// shards' tensor lists are sorted first.
func New(ix Index) (*File, error) {
	ix.Shards = slices.Clone(ix.Shards)
	for i := range ix.Shards {
		ix.Shards[i].Tensors = slices.Clone(ix.Shards[i].Tensors)
		slices.Sort(ix.Shards[i].Tensors)
	}
	if err := check(&ix, Limits{}.withDefaults()); err != nil {
		return nil, err
	}
	return &File{Index: ix, body: appendIndex(nil, &ix)}, nil
}

// The JSON shapes ParseFile decodes; unknown or missing members are caught
// by the canonical re-encoding (X1).
type jsonFile struct {
	Index      *jsonIndex `json:"index"`
	Signatures []jsonSig  `json:"signatures"`
}

type jsonIndex struct {
	Format  string      `json:"format"`
	ModelID string      `json:"model_id"`
	Shards  []jsonShard `json:"shards"`
	Version int64       `json:"version"`
}

type jsonShard struct {
	DigestAlgorithm string   `json:"digest_algorithm"`
	HeaderDigest    string   `json:"header_digest"`
	Ref             string   `json:"ref"`
	Tensors         []string `json:"tensors"`
}

type jsonSig struct {
	Algorithm string `json:"algorithm"`
	Comment   string `json:"comment"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"`
	Timestamp int64  `json:"timestamp"`
}

// ParseFile parses and checks an index file (X1 to X6). It does not verify
// signatures: see Verify.
func ParseFile(data []byte, lim Limits) (*File, error) {
	lim = lim.withDefaults()
	if int64(len(data)) > lim.MaxIndexSize {
		return nil, errf(format.ErrLimit, "X2", "index", fmt.Sprintf("%d bytes over the limit of %d", len(data), lim.MaxIndexSize))
	}
	if !utf8.Valid(data) {
		return nil, errf(format.ErrHeader, "X1", "index", "not UTF-8")
	}
	// Counts are bounded before decoding allocates per element: every shard
	// object and every signature entry holds at least one '{', and every
	// tensor name at least one '"' pair, so the byte counts bound them.
	if n := bytes.Count(data, []byte(`"ref":`)); n > lim.MaxShards {
		return nil, errf(format.ErrLimit, "X2", "index", fmt.Sprintf("more than %d shards", lim.MaxShards))
	}
	var jf jsonFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jf); err != nil {
		return nil, &format.FormatError{Kind: format.ErrHeader, Rule: "X1", Offset: -1, Field: "index", Reason: "not valid index json", Err: err}
	}
	if jf.Index == nil || jf.Signatures == nil {
		return nil, errf(format.ErrHeader, "X1", "index", "a member is missing")
	}
	ji := jf.Index
	if ji.Format != FormatName {
		return nil, errf(format.ErrHeader, "X3", "format", "not a shard index")
	}
	if ji.Version != Version {
		return nil, errf(format.ErrVersion, "X3", "version", "version "+strconv.FormatInt(ji.Version, 10))
	}
	if len(ji.Shards) > lim.MaxShards {
		return nil, errf(format.ErrLimit, "X2", "shards", fmt.Sprintf("more than %d shards", lim.MaxShards))
	}
	if len(jf.Signatures) > lim.MaxSignatures {
		return nil, errf(format.ErrLimit, "X6", "signatures", fmt.Sprintf("more than %d entries", lim.MaxSignatures))
	}
	f := &File{Index: Index{ModelID: ji.ModelID}}
	for i, js := range ji.Shards {
		alg, ok := format.ParseDigestAlgorithm(js.DigestAlgorithm)
		if !ok || alg.String() != js.DigestAlgorithm {
			return nil, errf(format.ErrHeader, "X4", fmt.Sprintf("shard %d digest_algorithm", i), "unknown algorithm")
		}
		var s Shard
		s.Ref, s.DigestAlgorithm, s.Tensors = js.Ref, alg, js.Tensors
		if err := decodeHex(s.HeaderDigest[:], js.HeaderDigest); err != nil {
			return nil, errf(format.ErrHeader, "X4", fmt.Sprintf("shard %d header_digest", i), "not 64 lowercase hex digits")
		}
		f.Index.Shards = append(f.Index.Shards, s)
	}
	if err := check(&f.Index, lim); err != nil {
		return nil, err
	}
	seen := map[[2]string]bool{}
	for i, js := range jf.Signatures {
		s := Signature{Algorithm: js.Algorithm, Timestamp: js.Timestamp, Comment: js.Comment}
		field := fmt.Sprintf("signature %d", i)
		if len(js.Comment) > MaxCommentLength {
			return nil, errf(format.ErrSignatureBlock, "X6", field, "comment too long")
		}
		if err := decodeHex(s.KeyID[:], js.KeyID); err != nil {
			return nil, errf(format.ErrSignatureBlock, "X6", field, "key id is not 64 lowercase hex digits")
		}
		if len(js.Signature) == 0 || len(js.Signature) > 2*format.MaxSignatureLength || len(js.Signature)%2 != 0 {
			return nil, errf(format.ErrSignatureBlock, "X6", field, "bad signature length")
		}
		s.Sig = make([]byte, len(js.Signature)/2)
		if err := decodeHex(s.Sig, js.Signature); err != nil {
			return nil, errf(format.ErrSignatureBlock, "X6", field, "signature is not lowercase hex")
		}
		if s.Algorithm == algEd25519 && len(s.Sig) != 64 {
			return nil, errf(format.ErrSignatureBlock, "X6", field, "an ed25519 signature is 64 bytes")
		}
		k := [2]string{s.Algorithm, string(s.KeyID[:])}
		if seen[k] {
			return nil, errf(format.ErrDuplicate, "X6", field, "a second entry of the same key")
		}
		seen[k] = true
		f.Signatures = append(f.Signatures, s)
	}
	f.body = appendIndex(nil, &f.Index)
	if !bytes.Equal(f.Marshal(), data) {
		return nil, errf(format.ErrHeader, "X1", "index", "not in canonical form")
	}
	return f, nil
}

// decodeHex decodes exactly len(dst) bytes of lowercase hex.
func decodeHex(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("length")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("not lowercase hex")
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

// check enforces X3 to X5 on ix.
func check(ix *Index, lim Limits) error {
	if len(ix.ModelID) == 0 || len(ix.ModelID) > MaxModelIDLength || !utf8.ValidString(ix.ModelID) || hasControl(ix.ModelID) {
		return errf(format.ErrHeader, "X4", "model_id", "empty, too long, or holds control characters")
	}
	if len(ix.Shards) == 0 {
		return errf(format.ErrHeader, "X4", "shards", "no shard")
	}
	if len(ix.Shards) > lim.MaxShards {
		return errf(format.ErrLimit, "X2", "shards", fmt.Sprintf("more than %d shards", lim.MaxShards))
	}
	refs := map[string]bool{}
	digests := map[[format.DigestSize]byte]bool{}
	names := map[string]bool{}
	total := 0
	for i, s := range ix.Shards {
		field := fmt.Sprintf("shard %d", i)
		if !s.DigestAlgorithm.Valid() {
			return errf(format.ErrHeader, "X4", field, "unknown digest algorithm")
		}
		if !validRef(s.Ref) {
			return errf(format.ErrName, "X5", field+" ref", fmt.Sprintf("%q is not a plain file name", s.Ref))
		}
		if refs[s.Ref] {
			return errf(format.ErrDuplicate, "X4", field+" ref", fmt.Sprintf("%q listed twice", s.Ref))
		}
		refs[s.Ref] = true
		if digests[s.HeaderDigest] {
			return errf(format.ErrDuplicate, "X4", field+" header_digest", "the same shard listed twice")
		}
		digests[s.HeaderDigest] = true
		if len(s.Tensors) == 0 {
			return errf(format.ErrHeader, "X4", field, "lists no tensor")
		}
		total += len(s.Tensors)
		if total > lim.MaxTensors {
			return errf(format.ErrLimit, "X2", field, fmt.Sprintf("more than %d tensors", lim.MaxTensors))
		}
		for j, n := range s.Tensors {
			if n == "" || len(n) > lim.MaxNameLength || !utf8.ValidString(n) || bytes.IndexByte([]byte(n), 0) >= 0 {
				return errf(format.ErrName, "X4", fmt.Sprintf("%s tensor %d", field, j), "breaks R15")
			}
			if j > 0 && s.Tensors[j-1] >= n {
				if s.Tensors[j-1] == n {
					return errf(format.ErrDuplicate, "X4", fmt.Sprintf("%s tensor %q", field, n), "listed twice")
				}
				return errf(format.ErrHeader, "X4", fmt.Sprintf("%s tensor %d", field, j), "tensors not sorted")
			}
			if names[n] {
				return errf(format.ErrDuplicate, "X4", fmt.Sprintf("%s tensor %q", field, n), "in two shards")
			}
			names[n] = true
		}
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// validRef reports whether ref is a plain file name beside the index (X5).
func validRef(ref string) bool {
	if len(ref) == 0 || len(ref) > MaxRefLength || ref[0] == '.' {
		return false
	}
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '+') {
			return false
		}
	}
	return true
}
