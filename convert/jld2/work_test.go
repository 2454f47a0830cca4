package jld2

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/convert"
)

// mAttr returns a version 3 attribute message with an in-place datatype and
// a simple (or, with no dims, scalar) dataspace.
func mAttr(name string, dt []byte, dims []uint64, data []byte) hmsg {
	ds := mSpace(dims...).data
	d := []byte{3, 0}
	d = binary.LittleEndian.AppendUint16(d, uint16(len(name)+1))
	d = binary.LittleEndian.AppendUint16(d, uint16(len(dt)))
	d = binary.LittleEndian.AppendUint16(d, uint16(len(ds)))
	d = append(d, 0)
	d = append(d, name...)
	d = append(d, 0)
	d = append(d, dt...)
	d = append(d, ds...)
	return hmsg{typ: msgAttribute, data: append(d, data...)}
}

func dtU64() []byte {
	d := []byte{0x10 | classFixed, 0, 0, 0}
	d = binary.LittleEndian.AppendUint32(d, 8)
	return append(d, 0, 0, 64, 0)
}

// mFilteredSingle is a layout version 4 message of one filtered chunk of
// the given dimensions (element size last) stored at addr in size bytes.
func mFilteredSingle(chunk []uint32, addr, size uint64) hmsg {
	d := []byte{4, layoutChunked, filteredSingle, byte(len(chunk)), 4}
	for _, c := range chunk {
		d = binary.LittleEndian.AppendUint32(d, c)
	}
	d = append(d, idxSingle)
	d = binary.LittleEndian.AppendUint64(d, size)
	d = binary.LittleEndian.AppendUint32(d, 0)
	return hmsg{typ: msgLayout, data: binary.LittleEndian.AppendUint64(d, addr)}
}

// mDeflate is a version 2 filter pipeline message with deflate alone.
func mDeflate() hmsg {
	return hmsg{typ: msgFilters, data: []byte{2, 1, filterDeflate, 0, 0, 0, 1, 0, 6, 0, 0, 0}}
}

// workCases are files whose work or memory was out of proportion to their
// size before the reader bounded it; each must now fail with a typed error.
func workCases() map[string]struct {
	data []byte
	want error
} {
	out := map[string]struct {
		data []byte
		want error
	}{}
	add := func(name string, data []byte, want error) {
		out[name] = struct {
			data []byte
			want error
		}{data, want}
	}

	// 2000 datasets whose contiguous storage is the same 64 KiB: each
	// would have become a tensor of its own, 125 MiB of output from a
	// 200 KiB file.
	b := newH5()
	region := b.raw(make([]byte, 64<<10))
	var names []string
	var objs []uint64
	for i := range 2000 {
		names = append(names, "w"+strconv.Itoa(i))
		objs = append(objs, b.object(mSpace(16<<10), mType(dtF32()), mContig(region, 64<<10)))
	}
	add("contiguous-data-shared", b.finish(b.group(names, objs)), convert.ErrMalformed)

	// Two datasets whose single chunks are the same stored bytes.
	b = newH5()
	z := zlibBytes(make([]byte, 4<<10))
	ch := b.raw(z)
	w1 := b.object(mSpace(1024), mType(dtF32()), mFilteredSingle([]uint32{1024, 4}, ch, uint64(len(z))), mDeflate())
	w2 := b.object(mSpace(1024), mType(dtF32()), mFilteredSingle([]uint32{1024, 4}, ch, uint64(len(z))), mDeflate())
	add("chunk-storage-shared", b.finish(b.group([]string{"a", "b"}, []uint64{w1, w2})), convert.ErrMalformed)

	// One Float32 element in a chunk that claims 1 GiB: the chunk buffer
	// was allocated at its declared size before a byte was decoded.
	b = newH5()
	z = zlibBytes([]byte{1, 2, 3, 4})
	ch = b.raw(z)
	w := b.object(mSpace(1), mType(dtF32()), mFilteredSingle([]uint32{1 << 28, 4}, ch, uint64(len(z))), mDeflate())
	add("chunk-declared-huge", b.finish(b.group([]string{"w"}, []uint64{w})), convert.ErrMalformed)

	// An array without data whose dimensions attribute is not empty: a
	// tensor of 48 bytes with no bytes.
	b = newH5()
	w = b.object(hmsg{typ: msgDataspace, data: []byte{2, 0, 0, 2}}, mType(dtF32()), mContig(undefAddr, 0),
		mAttr("dimensions", dtU64(), []uint64{2}, u64s(3, 4)))
	add("empty-array-with-dimensions", b.finish(b.group([]string{"w"}, []uint64{w})), convert.ErrMalformed)

	// 64 tensors under 1000-byte field names, reached through 2000
	// references: 128,000 aliases of 1 KB each from a 100 KiB file.
	b = newH5()
	var fields []string
	var targets []uint64
	for i := range 64 {
		fields = append(fields, strings.Repeat("f", 996)+strconv.Itoa(1000+i))
		targets = append(targets, b.f32Dataset([]uint64{1}, []float32{float32(i)}))
	}
	inner := structFile(b, fields, targets)
	refs := make([]uint64, 2000)
	for i := range refs {
		refs[i] = inner
	}
	vec := b.object(mSpace(uint64(len(refs))), mType(dtRef()), mContig(b.raw(u64s(refs...)), 8*uint64(len(refs))))
	add("alias-names-amplified", b.finish(b.group([]string{"m"}, []uint64{vec})), convert.ErrLimit)
	return out
}

func TestWorkCases(t *testing.T) {
	for name, c := range workCases() {
		t.Run(name, func(t *testing.T) {
			_, err := Read(c.data)
			var e *Error
			if !errors.Is(err, c.want) || !errors.As(err, &e) {
				t.Fatalf("got %v, want %v as *Error", err, c.want)
			}
		})
	}
}

// workInputs are the fuzz seeds, the hostile and work cases, the committed
// fuzz corpus and, when SAFEWEIGHTS_JLD2_CORPUS names a directory (such as
// the fuzz cache, $(go env GOCACHE)/fuzz/.../FuzzRead), every entry in it.
func workInputs(t *testing.T) map[string][]byte {
	in := map[string][]byte{}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.h5"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			in[p] = b
		}
	}
	for name, c := range hostile() {
		in[name] = c.data
	}
	for name, c := range workCases() {
		in[name] = c.data
	}
	for name, c := range indexHostile(t) {
		in[name] = c.data
	}
	if dir := fixtureDirOrEmpty(); dir != "" {
		fx, _ := filepath.Glob(filepath.Join(dir, "*.jld2"))
		for _, p := range fx {
			if b, err := os.ReadFile(p); err == nil {
				in[p] = b
			}
		}
	}
	dirs := []string{filepath.Join("testdata", "fuzz", "FuzzRead")}
	if d := os.Getenv("SAFEWEIGHTS_JLD2_CORPUS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		entries, _ := filepath.Glob(filepath.Join(d, "*"))
		for _, p := range entries {
			b, err := readCorpusEntry(p)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			in[p] = b
		}
	}
	return in
}

// readCorpusEntry reads a "go test fuzz v1" file holding one []byte.
func readCorpusEntry(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	_, rest, ok := strings.Cut(string(raw), "\n")
	rest = strings.TrimSpace(rest)
	q, ok2 := strings.CutPrefix(rest, "[]byte(")
	q, ok3 := strings.CutSuffix(q, ")")
	if !ok || !ok2 || !ok3 {
		return nil, errors.New("not a []byte corpus entry")
	}
	s, err := strconv.Unquote(q)
	return []byte(s), err
}

// TestWorkBounded reads every input under the fuzz target's limits and
// checks that the reader's work and memory stay in proportion to the
// input: parsed header bytes within twice the file, work units within the
// budget, and bytes allocated within a multiple of the file size plus the
// bytes decompression produced.
func TestWorkBounded(t *testing.T) {
	lim := Limits{MaxDecodedBytes: 64 << 20, MaxNodes: 1 << 16, MaxObjects: 1 << 14}
	for name, data := range workInputs(t) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, f, _ := read(data, options{Limits: lim})
		runtime.ReadMemStats(&after)
		if f == nil {
			continue
		}
		n := int64(len(data))
		if f.headerWork > 2*n+1<<16 || f.steps > f.stepBudget {
			t.Errorf("%s: %d header bytes, %d steps for %d input bytes", name, f.headerWork, f.steps, n)
		}
		alloc := int64(after.TotalAlloc - before.TotalAlloc)
		if budget := 64*n + 16<<20 + 2*f.decoded; alloc > budget {
			t.Errorf("%s: allocated %d bytes for %d input bytes (%d decoded)", name, alloc, n, f.decoded)
		}
		t.Logf("%s: %d bytes, %d steps, %d allocated", name, n, f.steps, alloc)
	}
}

func zlibBytes(p []byte) []byte {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write(p)
	zw.Close()
	return buf.Bytes()
}
