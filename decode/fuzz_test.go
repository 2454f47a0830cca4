package decode_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/testvectors"
)

// fuzzLimits are small, so that what a file may make the reader allocate is
// small too, and an allocation out of proportion stands out.
var fuzzLimits = format.Limits{
	MaxHeaderSize:       1 << 20,
	MaxTensors:          1024,
	MaxRank:             8,
	MaxNameLength:       256,
	MaxMetadataSize:     1 << 16,
	MaxDecompressedSize: 64 << 10,
	MaxSignatures:       4,
}

// FuzzDecode checks that no input makes the reader panic or allocate out of
// proportion, that every accepted file reads the same mapped and through an
// io.ReaderAt, and that an accepted file re-encoded by the encoder reads back
// the same. Inputs whose header parses but whose header digest does not
// match are also tried with the digest fixed, so that mutations reach the
// header verifier instead of stopping at R10.
func FuzzDecode(f *testing.F) {
	for _, load := range []func() ([]testvectors.Case, error){testvectors.Core, testvectors.Sign} {
		cases, err := load()
		if err != nil {
			f.Fatal(err)
		}
		for _, c := range cases {
			if len(c.Data) <= 64<<10 {
				f.Add(c.Data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOne(t, data)
		if fixed := fixHeaderDigest(data); fixed != nil {
			fuzzOne(t, fixed)
		}
	})
}

func fuzzOne(t *testing.T, data []byte) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r, rerr := decode.NewReader(bytes.NewReader(data), int64(len(data)), decode.WithLimits(fuzzLimits))
	runtime.ReadMemStats(&after)
	// Opening allocates the header copy, the signature block and a few
	// small structures: a small multiple of the input.
	if n := after.TotalAlloc - before.TotalAlloc; n > 16*uint64(len(data))+256<<10 {
		t.Fatalf("opening %d bytes allocated %d bytes", len(data), n)
	}

	path := filepath.Join(t.TempDir(), "f.swt")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, merr := decode.Open(path, decode.WithLimits(fuzzLimits))
	if rerr != nil || merr != nil {
		if format.KindOf(rerr) == nil || format.KindOf(merr) != format.KindOf(rerr) {
			t.Fatalf("readers disagree: reader %v, mapped %v", rerr, merr)
		}
		if m != nil {
			m.Close()
		}
		return
	}
	defer m.Close()
	fuzzChangingSource(t, data)

	runtime.ReadMemStats(&before)
	got, gerr := readAll(r)
	runtime.ReadMemStats(&after)
	// Reading allocates each tensor about three times (Bytes, ReadInto and
	// the copy kept here); compressed tensors add a bounded decoder.
	bound := 4*uint64(len(data)) + 1<<20
	for t := range r.All() {
		if t.Compression != format.None {
			bound += 4*uint64(min(t.Length, fuzzLimits.MaxDecompressedSize)) + 8<<20
		}
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > bound {
		t.Fatalf("reading %d bytes allocated %d bytes (bound %d)", len(data), n, bound)
	}
	mgot, mgerr := readAll(m)
	if format.KindOf(gerr) != format.KindOf(mgerr) || (gerr == nil) != (mgerr == nil) {
		t.Fatalf("readers disagree: reader %v, mapped %v", gerr, mgerr)
	}
	if gerr == nil {
		if diff := compare(got, mgot); diff != "" {
			t.Fatalf("readers disagree on %s", diff)
		}
	}
	if gerr != nil && !errors.Is(gerr, format.ErrDigest) && !errors.Is(gerr, format.ErrPadding) {
		return // some tensor does not decode
	}
	// Every tensor decoded (digests aside): the encoder must write a file
	// that reads back the same.
	if gerr != nil {
		if got, gerr = readTensors(r); gerr != nil {
			return
		}
	}
	re := reencode(t, r, got)
	rf, err := decode.Open(re)
	if err != nil {
		t.Fatalf("re-encoded file: %v", err)
	}
	defer rf.Close()
	again, err := readAll(rf)
	if err != nil {
		t.Fatalf("re-encoded file: %v", err)
	}
	if diff := compare(got, again); diff != "" {
		t.Fatalf("re-encoded file differs in %s", diff)
	}
}

// readTensors reads what readAll reads, without verifying digests.
func readTensors(f *decode.File) (*contents, error) {
	c := &contents{meta: f.Metadata(), producer: f.Producer()}
	c.prov, c.hasProv = f.Provenance()
	for t := range f.All() {
		b, err := t.Bytes()
		if err != nil {
			return nil, err
		}
		c.names = append(c.names, t.Name)
		c.dtypes = append(c.dtypes, t.DType)
		c.shapes = append(c.shapes, t.Shape)
		c.bytes = append(c.bytes, bytes.Clone(b))
		c.attrs = append(c.attrs, t.Attributes)
	}
	return c, nil
}

// reencode writes what was read from f with the encoder, keeping its
// options, and returns the new file's path.
func reencode(t *testing.T, f *decode.File, c *contents) string {
	path := filepath.Join(t.TempDir(), "re.swt")
	opts := []encode.Option{
		encode.WithAlignment(int(f.Alignment())), encode.WithChunkSize(int(f.ChunkSize())),
		encode.WithDigest(f.DigestAlgorithm()), encode.WithProducer(c.producer), encode.WithMetadata(c.meta),
	}
	if c.hasProv {
		opts = append(opts, encode.WithProvenance(c.prov))
	}
	w, err := encode.Create(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for tt := range f.All() {
		var topts []encode.TensorOption
		if tt.Compression != format.None {
			topts = append(topts, encode.Compress(1))
		}
		for k, v := range tt.Attributes {
			topts = append(topts, encode.Attribute(k, v))
		}
		if err := w.Add(c.names[i], c.dtypes[i], c.shapes[i], c.bytes[i], topts...); err != nil {
			w.Abort()
			t.Fatalf("re-encoding tensor %q: %v", c.names[i], err)
		}
		i++
	}
	if err := w.Close(); err != nil {
		t.Fatalf("re-encoding: %v", err)
	}
	return path
}

// fixHeaderDigest returns a copy of data with the preamble's header digest
// recomputed, or nil when the header cannot be located or the digest
// already matches.
func fixHeaderDigest(data []byte) []byte {
	if len(data) < format.PreambleSize {
		return nil
	}
	p, err := format.ParsePreamble(data, int64(len(data)), fuzzLimits)
	if err != nil {
		return nil
	}
	hdr := data[p.HeaderOffset:p.HeaderEnd()]
	sum := p.DigestAlgorithm.Sum(hdr)
	if sum == p.HeaderDigest {
		return nil
	}
	out := bytes.Clone(data)
	copy(out[56:88], sum[:])
	return out
}

// TestFuzzSeedsCovered keeps the digest fix-up honest: the vectors whose
// header digest is deliberately wrong are the only ones it changes.
func TestFuzzSeedsCovered(t *testing.T) {
	cases, err := testvectors.Core()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		fixed := fixHeaderDigest(c.Data)
		if (fixed != nil) != (c.Rule == "R10") {
			t.Errorf("%s: fix-up changed %v", c.Name, fixed != nil)
		}
		if fixed != nil && binary.LittleEndian.Uint16(fixed[8:]) != format.VersionMajor {
			t.Errorf("%s: fix-up broke the preamble", c.Name)
		}
	}
}

// TestVerifyAllocation checks that Verify allocates in proportion to the
// tensors it checks, not to the chunk size a file declares (up to 1 GiB).
func TestVerifyAllocation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big-chunks.swt")
	w, err := encode.Create(path, encode.WithChunkSize(1<<30), encode.WithAlignment(64))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("w", format.U8, []int64{100}, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"mapped", "reader"} {
		var f *decode.File
		if how == "mapped" {
			f, err = decode.Open(path)
		} else {
			f, err = decode.NewReader(bytes.NewReader(data), int64(len(data)))
		}
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err = f.Verify(context.Background(), decode.VerifyOptions{})
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("%s: verifying 100 bytes allocated %d bytes", how, n)
		}
		f.Close()
	}
}

// fuzzChangingSource reads every tensor lazily, with checked reads, from a
// source whose data region changes after the File is open: whatever is
// returned must be what a steady source returns for a tensor that
// verifies, and a tensor that does not verify must not be returned.
func fuzzChangingSource(t *testing.T, data []byte) {
	ref, err := decode.NewReader(bytes.NewReader(data), int64(len(data)), decode.WithLimits(fuzzLimits), decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		return
	}
	pre := ref.Preamble()
	for _, evil := range []func(*shifty) bool{afterFirst, everyOther} {
		src := &shifty{data: data, lo: int64(pre.DataOffset), hi: int64(pre.DataEnd()), evil: evil}
		f, err := decode.NewReader(src, int64(len(data)), decode.WithLimits(fuzzLimits), decode.WithCheckedReads())
		if err != nil {
			t.Fatalf("a steady open succeeded, a changing one failed: %v", err)
		}
		src.mu.Lock()
		src.armed = true
		src.mu.Unlock()
		for i := range f.NumTensors() {
			got, err := f.TensorAt(i).Bytes()
			if err != nil {
				continue
			}
			want, werr := ref.TensorAt(i).Bytes()
			if werr != nil {
				t.Fatalf("tensor %d: returned from a changing source but fails on a steady one: %v", i, werr)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("tensor %d: a changing source's bytes were returned", i)
			}
		}
	}
}
