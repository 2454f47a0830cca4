package jld2

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"github.com/safeweights/safeweights/convert"
)

type expectation struct {
	Name   string  `json:"name"`
	DType  string  `json:"dtype"`
	Shape  []int64 `json:"shape"`
	SHA256 string  `json:"sha256"`
}

func readExpect(t testing.TB) map[string][]expectation {
	b, err := os.ReadFile("testdata/expect.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string][]expectation
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGenerated reads the files gen.py writes with h5py: chunked layouts
// with deflate, shuffle and zstd over every chunk index JLD2 and h5py
// write, Float16 and Bool arrays.
func TestGenerated(t *testing.T) {
	for file, want := range readExpect(t) {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Read(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Tensors) != len(want) {
				t.Fatalf("%d tensors, want %d", len(m.Tensors), len(want))
			}
			for _, w := range want {
				i := slices.IndexFunc(m.Tensors, func(x convert.Tensor) bool { return x.Name == w.Name })
				if i < 0 {
					t.Fatalf("missing %s", w.Name)
				}
				tt := m.Tensors[i]
				sum := sha256.Sum256(tt.Data)
				if tt.DType.String() != w.DType || !slices.Equal(tt.Shape, w.Shape) || hex.EncodeToString(sum[:]) != w.SHA256 {
					t.Errorf("%s: got %v %v, want %s %v (sha ok: %v)", w.Name, tt.DType, tt.Shape, w.DType, w.Shape, hex.EncodeToString(sum[:]) == w.SHA256)
				}
			}
			if m.Report.Versions["jld2"] != "0.2.0" || m.Report.Versions["julia"] != "1.10.4" {
				t.Errorf("versions %v", m.Report.Versions)
			}
		})
	}
}

// TestGeneratedRefused: files that point outside themselves, or use
// features outside the subset, fail with the documented error kind.
func TestGeneratedRefused(t *testing.T) {
	for file, want := range map[string]error{
		"external-link.h5":      convert.ErrRefused,
		"external-storage.h5":   convert.ErrRefused,
		"virtual-dataset.h5":    convert.ErrRefused,
		"decompression-bomb.h5": convert.ErrMalformed,
		"unsupported-filter.h5": convert.ErrUnsupported,
	} {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Read(data)
			var e *Error
			if !errors.Is(err, want) || !errors.As(err, &e) {
				t.Fatalf("got %v, want %v as *Error", err, want)
			}
		})
	}
}

func TestContiguousAliasesInput(t *testing.T) {
	b := newH5()
	w := b.f32Dataset([]uint64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	data := b.finish(b.group([]string{"w"}, []uint64{w}))
	m, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	d := m.Tensors[0].Data
	lo, hi := uintptr(unsafe.Pointer(&data[0])), uintptr(unsafe.Pointer(&data[len(data)-1]))
	if p := uintptr(unsafe.Pointer(&d[0])); p < lo || p > hi {
		t.Fatal("contiguous tensor data was copied")
	}
	if math.Float32frombits(binary.LittleEndian.Uint32(d[20:])) != 6 || !slices.Equal(m.Tensors[0].Shape, []int64{2, 3}) {
		t.Fatalf("tensor %v %v", m.Tensors[0].Shape, d)
	}
}

// structFile writes a dataset holding a compound of references named
// after fields, each pointing at targets[i].
func structFile(b *h5, fields []string, targets []uint64) uint64 {
	types := make([][]byte, len(fields))
	sizes := make([]uint32, len(fields))
	for i := range fields {
		types[i], sizes[i] = dtRef(), 8
	}
	return b.object(mSpace(), mType(dtCompound(fields, types, sizes)), mCompact(u64s(targets...)))
}

func TestSharedArrayAliases(t *testing.T) {
	b := newH5()
	w := b.f32Dataset([]uint64{2}, []float32{1, 2})
	inner := structFile(b, []string{"weight", "tied"}, []uint64{w, w})
	outer := structFile(b, []string{"a", "b"}, []uint64{inner, inner})
	data := b.finish(b.group([]string{"model"}, []uint64{outer}))
	m, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 1 || m.Tensors[0].Name != "model.a.weight" {
		t.Fatalf("tensors %+v", m.Tensors)
	}
	got := slices.Clone(m.Tensors[0].Aliases)
	slices.Sort(got)
	if want := []string{"model.a.tied", "model.b.tied", "model.b.weight"}; !slices.Equal(got, want) {
		t.Fatalf("aliases %v, want %v", got, want)
	}
}

// hostile builds files that must fail with a typed error.
func hostile() map[string]struct {
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

	b := newH5()
	add("address-past-eof", b.finish(b.group([]string{"w"}, []uint64{1 << 40})), convert.ErrMalformed)

	b = newH5()
	w := b.object(mSpace(4), mType(dtF32()), mContig(1<<40, 16))
	add("data-past-eof", b.finish(b.group([]string{"w"}, []uint64{w})), convert.ErrMalformed)

	b = newH5()
	w = b.f32Dataset([]uint64{2}, []float32{1, 2})
	g := b.group([]string{"w"}, []uint64{w})
	data := b.finish(g)
	data[512+int(w)+10] ^= 0xff
	add("bad-header-checksum", data, convert.ErrMalformed)

	b = newH5()
	data = b.finish(b.group(nil, nil))
	data[512+20] ^= 1
	add("bad-superblock-checksum", data, convert.ErrMalformed)

	b = newH5()
	w = b.object(mSpace(1<<40, 1<<40), mType(dtF32()), mContig(0, 16))
	add("size-overflow", b.finish(b.group([]string{"w"}, []uint64{w})), convert.ErrMalformed)

	b = newH5()
	w = b.object(mSpace(1<<30, 1<<20), mType(dtF32()), mContig(undefAddr, 1<<52))
	add("huge-dataspace-no-data", b.finish(b.group([]string{"w"}, []uint64{w})), convert.ErrMalformed)

	b = newH5()
	w = b.object(mSpace(1<<20), mType(dtF32()), mCompact([]byte{1, 2, 3, 4}))
	add("huge-dataspace-compact", b.finish(b.group([]string{"w"}, []uint64{w})), convert.ErrMalformed)

	// A chain of 500 references, deeper than the depth limit.
	b = newH5()
	prev := b.f32Dataset([]uint64{1}, []float32{1})
	for i := 0; i < 500; i++ {
		prev = structFile(b, []string{"x"}, []uint64{prev})
	}
	add("deep-reference-chain", b.finish(b.group([]string{"m"}, []uint64{prev})), convert.ErrLimit)

	// A compound nested 300 deep.
	dt := dtF32()
	size := uint32(4)
	for i := 0; i < 300; i++ {
		dt = dtCompound([]string{"x"}, [][]byte{dt}, []uint32{size})
	}
	b = newH5()
	w = b.object(mSpace(), mType(dt), mCompact(make([]byte, 4)))
	add("deep-type-nesting", b.finish(b.group([]string{"m"}, []uint64{w})), convert.ErrLimit)

	// Continuation chunk pointing at itself.
	b = newH5()
	cont := b.addr()
	ochk := []byte("OCHK")
	ochk = append(ochk, msgContinuation, 16, 0, 0)
	ochk = append(ochk, u64s(cont, 28)...)
	ochk = binary.LittleEndian.AppendUint32(ochk, lookup3(ochk))
	b.raw(ochk)
	root := b.object(hmsg{typ: msgContinuation, data: u64s(cont, 28)})
	add("continuation-loop", b.finish(root), convert.ErrMalformed)

	return out
}

func TestHostile(t *testing.T) {
	for name, c := range hostile() {
		t.Run(name, func(t *testing.T) {
			_, err := Read(c.data)
			var e *Error
			if !errors.Is(err, c.want) || !errors.As(err, &e) {
				t.Fatalf("got %v, want %v as *Error", err, c.want)
			}
		})
	}
}

func TestLimitsValidated(t *testing.T) {
	if _, err := Read(nil, WithLimits(Limits{MaxDepth: -1})); err == nil {
		t.Fatal("negative limit accepted")
	}
	if _, err := Read([]byte("not hdf5")); !errors.Is(err, convert.ErrMalformed) {
		t.Fatalf("got %v", err)
	}
}

func TestOptimizerDropped(t *testing.T) {
	b := newH5()
	w := b.f32Dataset([]uint64{2}, []float32{1, 2})
	m1 := b.f32Dataset([]uint64{2}, []float32{0, 0})
	data := b.finish(b.group([]string{"model_state", "opt_state"}, []uint64{w, m1}))
	m, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 1 || m.Tensors[0].Name != "model_state" {
		t.Fatalf("tensors %+v", m.Tensors)
	}
	if !slices.ContainsFunc(m.Report.Dropped, func(d convert.Dropped) bool { return d.Kind == convert.DropOptimizer }) {
		t.Fatal("optimiser state not reported")
	}
	m, err = Read(data, convert.WithIncludeOptimizer())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 2 || m.Tensors[1].Name != "optimizer.opt_state" {
		t.Fatalf("tensors %+v", m.Tensors)
	}
}

// A reference cycle is valid (rule J3): each object is converted once and
// the back-edge is a "ref" node naming the path where the object was
// first reached.
func TestReferenceCycle(t *testing.T) {
	// A struct whose field refers to itself.
	b := newH5()
	w := b.f32Dataset([]uint64{2}, []float32{1, 2})
	self := b.addr()
	structFile(b, []string{"w", "next"}, []uint64{w, self})
	m, err := Read(b.finish(b.group([]string{"m"}, []uint64{self})))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 1 || m.Tensors[0].Name != "m.w" || len(m.Tensors[0].Aliases) != 0 {
		t.Fatalf("tensors %+v", m.Tensors)
	}
	next := m.Structure.Fields[0].Node.Fields[1].Node
	if next.Kind != "ref" || next.Ref != "m" {
		t.Errorf("back-edge %+v, want a ref to m", next)
	}

	// Two objects that refer to each other, each holding an array.
	b = newH5()
	w1 := b.f32Dataset([]uint64{1}, []float32{1})
	w2 := b.f32Dataset([]uint64{1}, []float32{2})
	first := b.addr()
	second := first + uint64(len(encodeOHDR(mSpace(), mType(dtCompound([]string{"w", "x"}, [][]byte{dtRef(), dtRef()}, []uint32{8, 8})), mCompact(u64s(0, 0)))))
	structFile(b, []string{"w", "x"}, []uint64{w1, second})
	structFile(b, []string{"w", "y"}, []uint64{w2, first})
	m, err = Read(b.finish(b.group([]string{"m"}, []uint64{first})))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range m.Tensors {
		names = append(names, x.Name)
	}
	if want := []string{"m.w", "m.x.w"}; !slices.Equal(names, want) {
		t.Fatalf("tensors %q, want %q", names, want)
	}
	y := m.Structure.Fields[0].Node.Fields[1].Node.Fields[1].Node
	if y.Kind != "ref" || y.Ref != "m" {
		t.Errorf("back-edge %+v, want a ref to m", y)
	}
}
