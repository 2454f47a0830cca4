package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// vector is one generated case.
type vector struct {
	name    string // states the defect
	expect  *format.Kind
	rule    string
	comment string
	full    bool // found only by full verification
	limits  format.Limits
	extra   [][2]string // further key lines
	data    func() []byte
}

// Producer is recorded in every generated file, so that vectors do not
// change with the library's version.
const producer = "safeweights testvectors"

// base files that the invalid vectors break.

// one: one F32 tensor of shape [2, 3].
func one() fileSpec {
	return fileSpec{producer: producer, tensors: []tensorSpec{{name: "w", dt: format.F32, shape: []int64{2, 3}, data: pattern(24, 1)}}}
}

// two: a U8 tensor of 10 bytes at 0 and an F32 tensor of 16 bytes at 64.
func two() fileSpec {
	return fileSpec{producer: producer, tensors: []tensorSpec{
		{name: "a", dt: format.U8, shape: []int64{10}, data: pattern(10, 2)},
		{name: "b", dt: format.F32, shape: []int64{4}, data: pattern(16, 3)},
	}}
}

// chunked: one U8 tensor of 2500 bytes in three chunks of 1 KiB.
func chunked() fileSpec {
	return fileSpec{producer: producer, tensors: []tensorSpec{{name: "w", dt: format.U8, shape: []int64{2500}, data: pattern(2500, 4)}}}
}

// zstdOne: one F32 tensor of 1 KiB stored as a zstd frame.
func zstdOne() fileSpec {
	return fileSpec{producer: producer, tensors: []tensorSpec{{name: "z", dt: format.F32, shape: []int64{256}, data: compressible(1024), zstd: true}}}
}

// withMeta: one tensor with attributes, metadata and provenance.
func withMeta() fileSpec {
	s := one()
	s.tensors[0].attrs = []format.KeyValue{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}
	s.meta = []format.KeyValue{{Key: "k1", Value: "v1"}, {Key: "k2", Value: "v2"}}
	s.prov = &format.Provenance{SourceFormat: "bson.jl", SourceSHA256: make([]byte, 32), Converter: "testvectors",
		Notes: []format.KeyValue{{Key: "n1", Value: "x"}, {Key: "n2", Value: "y"}}}
	return s
}

func with(s fileSpec, edit func(*fileSpec)) func() []byte {
	return func() []byte { edit(&s); return s.bytes() }
}

func fields(s fileSpec, edit func(b *build)) func() []byte {
	return with(s, func(s *fileSpec) { s.fields = edit })
}

func header(s fileSpec, edit func(b *build)) func() []byte {
	return with(s, func(s *fileSpec) { s.header = edit })
}

func pre(s fileSpec, edit func(p *format.Preamble)) func() []byte {
	return with(s, func(s *fileSpec) { s.pre = func(b *build) { edit(&b.pre) } })
}

func file(s fileSpec, edit func(b []byte) []byte) func() []byte {
	return with(s, func(s *fileSpec) { s.file = func(b *build) { b.out = edit(b.out) } })
}

// tensorEdit changes the header entry of tensor i.
func tensorEdit(s fileSpec, i int, edit func(e *format.TensorEntry)) func() []byte {
	return fields(s, func(b *build) { edit(&b.hf.Tensors[i]) })
}

// encoded writes a file with the encoder.
func encoded(opts []encode.Option, add func(w *encode.Writer) error) func() []byte {
	return func() []byte {
		dir, err := os.MkdirTemp("", "swtgen")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "f.swt")
		w, err := encode.Create(path, append([]encode.Option{encode.WithProducer(producer)}, opts...)...)
		if err != nil {
			panic(err)
		}
		if err := add(w); err != nil {
			panic(err)
		}
		if err := w.Close(); err != nil {
			panic(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			panic(err)
		}
		return b
	}
}

func small() []encode.Option {
	return []encode.Option{encode.WithAlignment(64), encode.WithChunkSize(1024)}
}

func sigBlock(entries ...format.SignatureEntry) []byte {
	return format.AppendSignatureBlock(nil, entries)
}

func sigEntry() format.SignatureEntry {
	return format.SignatureEntry{Algorithm: format.Ed25519, KeyID: [32]byte{1, 2, 3}, Timestamp: 1767225600,
		Comment: "not a real signature", Signature: bytes.Repeat([]byte{0x5a}, 64)}
}

func appendBytes(s fileSpec, tail []byte) func() []byte {
	return file(s, func(b []byte) []byte { return append(b, tail...) })
}

// sigEdit appends a valid one-entry signature block and lets edit break it.
func sigEdit(edit func(blk []byte) []byte) func() []byte {
	return appendBytes(one(), edit(sigBlock(sigEntry())))
}

func put32(b []byte, off int, v uint32) []byte { le.PutUint32(b[off:], v); return b }
func put64(b []byte, off int, v uint64) []byte { le.PutUint64(b[off:], v); return b }

func ok(name, comment string, data func() []byte) vector {
	return vector{name: name, comment: comment, data: data}
}

func bad(name string, k *format.Kind, rule, comment string, data func() []byte) vector {
	return vector{name: name, expect: k, rule: rule, comment: comment, data: data}
}

func (v vector) verifyFull() vector                { v.full = true; return v }
func (v vector) withLimits(l format.Limits) vector { v.limits = l; return v }

func vectors() []vector {
	var vs []vector
	vs = append(vs, valid()...)
	vs = append(vs, preamble()...)
	vs = append(vs, structure()...)
	vs = append(vs, tensors()...)
	vs = append(vs, placement()...)
	vs = append(vs, keyValues()...)
	vs = append(vs, data()...)
	vs = append(vs, trailing()...)
	return vs
}

func valid() []vector {
	var vs []vector
	for _, dt := range format.DTypes() {
		n := 6 * dt.Size()
		data := pattern(n, byte(dt))
		if dt == format.Bool {
			data = []byte{0, 1, 1, 0, 1, 0}
		}
		vs = append(vs, ok("ok-dtype-"+strings.ToLower(strings.ReplaceAll(dt.String(), "_", "-")),
			"one "+dt.String()+" tensor of shape [2, 3]",
			encoded(small(), func(w *encode.Writer) error { return w.Add("x", dt, []int64{2, 3}, data) })))
	}
	vs = append(vs,
		ok("ok-every-dtype", "one tensor of each element type, in one file",
			encoded(small(), func(w *encode.Writer) error {
				for _, dt := range format.DTypes() {
					if err := w.Add("t."+dt.String(), dt, []int64{3}, pattern(3*dt.Size(), byte(dt))); err != nil {
						return err
					}
				}
				return nil
			})),
		ok("ok-no-tensors", "a file without tensors: the data region is empty and the header follows the padding",
			encoded(small(), func(w *encode.Writer) error { return nil })),
		ok("ok-scalar-rank-0", "a rank-0 F64 tensor: one element, empty shape",
			encoded(small(), func(w *encode.Writer) error { return w.Add("pi", format.F64, nil, pattern(8, 9)) })),
		ok("ok-empty-tensors", "empty tensors (a dimension of 0) first, between and last: they take no bytes, and no digests",
			encoded(small(), func(w *encode.Writer) error {
				for _, e := range []error{
					w.Add("e0", format.F32, []int64{0}, nil),
					w.Add("m", format.U8, []int64{5}, pattern(5, 1)),
					w.Add("e1", format.F64, []int64{3, 0, 2}, nil),
					w.Add("n", format.I16, []int64{7}, pattern(14, 2)),
					w.Add("e2", format.C128, []int64{0, 0}, nil),
				} {
					if e != nil {
						return e
					}
				}
				return nil
			})),
		ok("ok-zstd", "one F32 tensor stored as a zstd frame",
			encoded(small(), func(w *encode.Writer) error {
				return w.Add("z", format.F32, []int64{64, 64}, compressible(16384), encode.Compress(2))
			})),
		ok("ok-zstd-small-window", "a frame with an 8 KiB window (not single-segment) holding 5000 bytes in raw and RLE blocks",
			zstdTensor(5000, zframe(0, 3, nil, 5000, zblock(false, 0, 4000, pattern(4000, 8)), zblock(true, 1, 1000, []byte{9})))),
		ok("ok-zstd-non-single-segment", "a frame written with a 128 KiB window, not single-segment, holding 300000 bytes in several blocks",
			zstdTensor(300000, func() []byte {
				enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true), zstd.WithWindowSize(128<<10))
				if err != nil {
					panic(err)
				}
				return enc.EncodeAll(pattern(300000, 10), nil)
			}())),
		ok("ok-zstd-and-raw", "compressed and raw tensors side by side, compressed ones spanning several chunks",
			encoded(small(), func(w *encode.Writer) error {
				for _, e := range []error{
					w.Add("raw.0", format.BF16, []int64{100}, pattern(200, 5)),
					w.Add("zstd.0", format.I32, []int64{4096}, compressible(16384), encode.Compress(1)),
					w.Add("raw.1", format.U8, []int64{3}, pattern(3, 6)),
					w.Add("zstd.1", format.U8, []int64{5000}, pattern(5000, 7), encode.Compress(4)),
				} {
					if e != nil {
						return e
					}
				}
				return nil
			})),
		ok("ok-many-tensors", "300 small tensors with 64-byte alignment; names sort differently from file order",
			encoded(small(), func(w *encode.Writer) error {
				for i := range 300 {
					name := "layer." + itoa((i*7)%300) + ".w"
					if err := w.Add(name, format.U8, []int64{int64(i % 5)}, pattern(i%5, byte(i))); err != nil {
						return err
					}
				}
				return nil
			})),
		ok("ok-alignment-16k", "tensor data aligned to 16 KiB, with padding before, between and after",
			encoded([]encode.Option{encode.WithAlignment(16384), encode.WithChunkSize(1024)}, func(w *encode.Writer) error {
				if err := w.Add("a", format.F32, []int64{10}, pattern(40, 1)); err != nil {
					return err
				}
				return w.Add("b", format.F32, []int64{3}, pattern(12, 2))
			})),
		ok("ok-default-options", "the encoder's defaults: 4096-byte alignment, 4 MiB chunks, BLAKE3-256",
			encoded(nil, func(w *encode.Writer) error { return w.Add("w", format.F16, []int64{4, 4}, pattern(32, 3)) })),
		ok("ok-sha256", "SHA-256 header and chunk digests",
			encoded(append(small(), encode.WithDigest(format.SHA256)), func(w *encode.Writer) error {
				return w.Add("w", format.U8, []int64{3000}, pattern(3000, 4))
			})),
		ok("ok-multi-chunk", "a tensor of 2500 bytes in chunks of 1 KiB: two full chunks and a partial one",
			encoded(small(), func(w *encode.Writer) error { return w.Add("w", format.U8, []int64{2500}, pattern(2500, 4)) })),
		ok("ok-metadata-attributes-provenance", "model metadata, tensor attributes and conversion provenance, all sorted by key",
			encoded(append(small(),
				encode.WithMetadata(map[string]string{"license": "MIT", "arch": "mlp", "empty.value": "", "unicode": "h\u00e9llo \u4e16\u754c"}),
				encode.WithProvenance(format.Provenance{SourceFormat: "bson.jl", SourceSHA256: pattern(32, 8),
					Converter: "safeweights/convert/bson 1.0", Notes: []format.KeyValue{{Key: "julia", Value: "1.10"}, {Key: "flux", Value: "0.14"}}})),
				func(w *encode.Writer) error {
					return w.Add("dense.weight", format.F32, []int64{2, 2}, pattern(16, 5),
						encode.Attribute("aliases", "layers.1.weight"), encode.Attribute("role", "weight"))
				})),
		ok("ok-unicode-names", "non-ASCII names sorted bytewise in the name index (not by code point order of UTF-16)",
			encoded(small(), func(w *encode.Writer) error {
				for i, n := range []string{"z", "\u00e9", "\U0001F600", "\uFF21", "A", "a.b"} {
					if err := w.Add(n, format.U8, []int64{1}, []byte{byte(i)}); err != nil {
						return err
					}
				}
				return nil
			})),
		ok("ok-rank-16", "a tensor of rank 16, the default limit, all dimensions 1",
			encoded(small(), func(w *encode.Writer) error {
				return w.Add("r", format.I8, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []byte{7})
			})),
		ok("ok-name-1024-bytes", "a name of 1024 bytes, the default limit",
			encoded(small(), func(w *encode.Writer) error {
				return w.Add(strings.Repeat("n", 1024), format.U8, []int64{1}, []byte{1})
			})),
		ok("ok-huge-empty-dimension", "shape [0, 2^62]: an empty tensor whose other dimension is large",
			encoded(small(), func(w *encode.Writer) error { return w.Add("e", format.F64, []int64{0, 1 << 62}, nil) })),
		ok("ok-empty-dimension-last", "F32 shape [2^62, 4, 0]: the element count is the true product, 0, though 2^62 * 4 alone would overflow",
			encoded(small(), func(w *encode.Writer) error { return w.Add("e", format.F32, []int64{1 << 62, 4, 0}, nil) })),
		ok("ok-minor-version-future", "minor version 7: a reader accepts every minor version of its major version",
			pre(one(), func(p *format.Preamble) { p.VersionMinor = 7 })),
		ok("ok-no-producer", "a header without producer, metadata or provenance",
			with(one(), func(s *fileSpec) { s.producer = "" })),
		ok("ok-signature-block", "a well-formed signature block after the header; its signature is not real, which only a signature verifier notices",
			appendBytes(one(), sigBlock(sigEntry()))),
		ok("ok-signature-block-unknown-algorithm", "a signature block with an entry of an unknown algorithm, which is kept and never trusted",
			appendBytes(one(), sigBlock(func() format.SignatureEntry { e := sigEntry(); e.Algorithm = 99; e.Comment = ""; return e }(), sigEntry()))),
	)
	return vs
}

// zstdTensor is a file of one U8 tensor of n bytes stored as frame.
func zstdTensor(n int64, frame []byte) func() []byte {
	return with(fileSpec{producer: producer, tensors: []tensorSpec{{name: "z", dt: format.U8, shape: []int64{n}, stored: frame}}},
		func(s *fileSpec) { s.fields = setZstd(0) })
}

// setZstd marks tensor i compressed (for hand-made stored bytes).
func setZstd(i int) func(b *build) {
	return func(b *build) { b.hf.Tensors[i].Compression = format.Zstd }
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var s []byte
	for ; i > 0; i /= 10 {
		s = append([]byte{byte('0' + i%10)}, s...)
	}
	return string(s)
}
