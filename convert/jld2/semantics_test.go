package jld2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/sametest"
)

func dtU8() []byte { return []byte{0x10 | classFixed, 0, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0} }

// dtOpaque1 is a 1-byte opaque type, as JLD2 0.1 wrote Bool.
func dtOpaque1() []byte {
	return []byte{0x10 | classOpaque, 8, 0, 0, 1, 0, 0, 0, 'B', 'o', 'o', 'l', 0, 0, 0, 0}
}

// committedFields is committed with JLD2's field_datatypes attribute: the
// committed types of the compound's members (0 for none).
func (b *h5) committedFields(dt []byte, juliaName string, fields ...uint64) uint64 {
	coll := b.heap([]byte(juliaName))
	attrType := dtCompound([]string{"name"}, [][]byte{dtVlenString()}, []uint32{16})
	return b.object(hmsg{typ: msgDatatype, data: dt},
		mAttr("julia_type", attrType, nil, vlenRef(len(juliaName), coll, 1)),
		mAttr("field_datatypes", dtRef(), []uint64{uint64(len(fields))}, u64s(fields...)))
}

// knetFile writes a Knet model as JLD2 0.1 does: an AutoGrad.Param whose
// value is a KnetArray{Float32,2} of Julia size dims, its data a
// Vector{UInt8} of buf behind the KnetPtr, and its optimiser an Rmsprop
// whose G is a second KnetArray.
func knetFile(dims [2]uint64, buf []byte) []byte {
	b := newH5()
	raw := b.raw(buf)
	bytesDS := b.object(mSpace(uint64(len(buf))), mType(dtU8()), mContig(raw, uint64(len(buf))))
	graw := b.raw(buf)
	gDS := b.object(mSpace(uint64(len(buf))), mType(dtU8()), mContig(graw, uint64(len(buf))))
	ptr := dtCompound([]string{"ptr"}, [][]byte{dtRef()}, []uint32{8})
	dimsT := dtCompound([]string{"1", "2"}, [][]byte{dtI64(), dtI64()}, []uint32{8, 8})
	ka := dtCompound([]string{"ptr", "dims"}, [][]byte{ptr, dimsT}, []uint32{8, 16})
	kat := b.committed(ka, "Knet.KnetArrays.KnetArray{Float32,2}")
	rms := b.committedFields(dtCompound([]string{"G"}, [][]byte{ka}, []uint32{24}), "Knet.Train20.Rmsprop", kat)
	g := b.object(mSpace(), mShared(rms), mCompact(u64s(gDS, dims[0], dims[1])))
	param := b.committedFields(dtCompound([]string{"value", "opt"}, [][]byte{ka, dtRef()}, []uint32{24, 8}), "AutoGrad.Param", kat, 0)
	p := b.object(mSpace(), mShared(param), mCompact(u64s(bytesDS, dims[0], dims[1], g)))
	return b.finish(b.group([]string{"w"}, []uint64{p}))
}

// A KnetArray keeps its data as bytes beside its dimensions: the tensor is
// of its element type, shaped by the dimensions reversed (N11), and
// AutoGrad.Param is transparent, its optimiser state dropped (N7, N9).
func TestKnetArray(t *testing.T) {
	buf := make([]byte, 24)
	for i := range buf {
		buf[i] = byte(i)
	}
	data := knetFile([2]uint64{2, 3}, buf)
	m, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 1 {
		t.Fatalf("tensors %v", tensorNames(m))
	}
	x := m.Tensors[0]
	if x.Name != "w" || x.DType != format.F32 || !slices.Equal(x.Shape, []int64{3, 2}) || !bytes.Equal(x.Data, buf) {
		t.Fatalf("tensor %s %v %v", x.Name, x.DType, x.Shape)
	}
	if len(m.Report.Dropped) != 1 || m.Report.Dropped[0].Kind != convert.DropOptimizer || m.Report.Dropped[0].Path != "w.opt" {
		t.Errorf("dropped %+v", m.Report.Dropped)
	}
	m, err = Read(data, convert.WithIncludeOptimizer())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tensorNames(m), []string{"w", "optimizer.w.opt.G"}; !slices.Equal(got, want) {
		t.Fatalf("kept optimiser state: %v, want %v", got, want)
	}
	if m.Tensors[1].DType != format.F32 {
		t.Errorf("optimiser state %v", m.Tensors[1].DType)
	}

	for _, c := range []struct {
		name string
		dims [2]uint64
	}{
		{"buffer-too-short", [2]uint64{2, 4}},
		{"buffer-too-long", [2]uint64{1, 3}},
		{"dims-overflow", [2]uint64{1 << 40, 1 << 40}},
		{"bytes-overflow", [2]uint64{1 << 31, 1 << 31}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(knetFile(c.dims, buf))
			var e *Error
			if !errors.Is(err, convert.ErrMalformed) || !errors.As(err, &e) {
				t.Fatalf("error %v, want ErrMalformed", err)
			}
		})
	}
}

// Julia 1.0's JLD2 repeats module names; Tracker's TrackedArray is
// transparent and its gradient dropped, as in BSON files (N3b, N7).
func TestLegacyTracker(t *testing.T) {
	b := newH5()
	w := b.f32Dataset([]uint64{2}, []float32{1, 2})
	g := b.f32Dataset([]uint64{2}, []float32{0, 0})
	bt := b.committed(dtOpaque1(), "Core.Core.Bool")
	tracked := b.committedFields(dtCompound([]string{"grad", "isleaf"}, [][]byte{dtRef(), dtOpaque1()}, []uint32{8, 1}), "Tracker.Tracker.Tracked{Core.Core.Array{Core.Core.Float32,1}}", 0, bt)
	ta := b.committed(dtCompound([]string{"tracker", "data", "grad"}, [][]byte{dtRef(), dtRef(), dtRef()}, []uint32{8, 8, 8}), "Tracker.Tracker.TrackedArray{Core.Core.Float32,1}")
	tr := b.object(mSpace(), mShared(tracked), mCompact(append(u64s(g), 1)))
	p := b.object(mSpace(), mShared(ta), mCompact(u64s(tr, w, g)))
	m, err := Read(b.finish(b.group([]string{"b"}, []uint64{p})))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tensorNames(m), []string{"b"}; !slices.Equal(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
	var grads []string
	for _, d := range m.Report.Dropped {
		if d.Kind != convert.DropGradient {
			t.Errorf("dropped %+v", d)
		}
		grads = append(grads, d.Path)
	}
	if !slices.Contains(grads, "b.tracker.grad") || !slices.Contains(grads, "b.grad") {
		t.Errorf("gradients reported %v", grads)
	}
}

// The models of internal/sametest, as JLD2 writes them: both converters
// give the same tensors (spec/CONVERSION.md section 2).
func TestSameModel(t *testing.T) {
	buf := make([]byte, 24)
	files := map[string][]byte{"knet-param": knetFile([2]uint64{2, 3}, buf)}

	b := newH5()
	bt := b.committed(dtOpaque1(), "Core.Core.Bool")
	tracked := b.committedFields(dtCompound([]string{"grad", "isleaf"}, [][]byte{dtRef(), dtOpaque1()}, []uint32{8, 1}), "Tracker.Tracker.Tracked{Core.Core.Array{Core.Core.Float32,2}}", 0, bt)
	ta := b.committed(dtCompound([]string{"tracker", "data", "grad"}, [][]byte{dtRef(), dtRef(), dtRef()}, []uint32{8, 8, 8}), "Tracker.Tracker.TrackedArray{Core.Core.Float32,2}")
	param := func(shape []uint64, n int) uint64 {
		w := b.f32Dataset(shape, make([]float32, n))
		g := b.f32Dataset(shape, make([]float32, n))
		tr := b.object(mSpace(), mShared(tracked), mCompact(append(u64s(g), 1)))
		return b.object(mSpace(), mShared(ta), mCompact(u64s(tr, w, g)))
	}
	w, bias := param([]uint64{3, 2}, 6), param([]uint64{2}, 2)
	dense := b.committed(dtCompound([]string{"W", "b"}, [][]byte{dtRef(), dtRef()}, []uint32{8, 8}), "Flux.Dense{typeof(relu)}")
	layer := b.object(mSpace(), mShared(dense), mCompact(u64s(w, bias)))
	files["tracker-dense"] = b.finish(b.group([]string{"model"}, []uint64{layer}))

	b = newH5()
	var addrs []uint64
	for i := range 4 {
		addrs = append(addrs, b.f32Dataset([]uint64{2}, []float32{float32(i), 0}))
	}
	bn := b.committed(dtCompound([]string{"β", "γ", "μ", "σ²"}, [][]byte{dtRef(), dtRef(), dtRef(), dtRef()}, []uint32{8, 8, 8, 8}), "Flux.BatchNorm{typeof(identity)}")
	files["batchnorm"] = b.finish(b.group([]string{"bn"}, []uint64{b.object(mSpace(), mShared(bn), mCompact(u64s(addrs...)))}))

	b = newH5()
	mv := []uint64{b.f32Dataset([]uint64{2}, []float32{0, 0}), b.f32Dataset([]uint64{2}, []float32{0, 0})}
	leaf := b.committed(dtCompound([]string{"state"}, [][]byte{dtCompound([]string{"1", "2"}, [][]byte{dtRef(), dtRef()}, []uint32{8, 8})}, []uint32{16}), "Optimisers.Leaf{Optimisers.Adam}")
	files["optimisers-leaf"] = b.finish(b.group([]string{"opt_state"}, []uint64{b.object(mSpace(), mShared(leaf), mCompact(u64s(mv...)))}))

	for name, want := range sametest.Models(t) {
		t.Run(name, func(t *testing.T) {
			file := name
			if want.File != "" {
				file = want.File
			}
			m, err := Read(files[file], optimizerOpts(want.IncludeOptimizer)...)
			if err != nil {
				t.Fatal(err)
			}
			sametest.Check(t, name, m)
		})
	}
}

// withUserBlock moves a file built by h5 (user block of 512 bytes) behind a
// user block of n bytes (a power of two, 512 or more): the superblock's
// base and end-of-file addresses move with it; the other addresses are
// relative to the base.
func withUserBlock(data []byte, n int, text string) []byte {
	out := make([]byte, n, n+len(data)-512)
	copy(out, text)
	out = append(out, data[512:]...)
	sb := out[n:]
	binary.LittleEndian.PutUint64(sb[12:], uint64(n))
	binary.LittleEndian.PutUint64(sb[28:], uint64(len(out)))
	binary.LittleEndian.PutUint32(sb[44:], lookup3(sb[:44]))
	return out
}

// HDF5 allows a user block of 512, 1024, 2048, ... bytes before the
// superblock (H1): a file with one of 2048 bytes reads, as plain HDF5 when
// the block is not JLD2's text header.
func TestUserBlock(t *testing.T) {
	b := newH5()
	w := b.f32Dataset([]uint64{2}, []float32{1, 2})
	data := b.finish(b.group([]string{"w"}, []uint64{w}))
	for _, c := range []struct {
		text string
		warn bool
	}{{testHeader, false}, {"written by a tool that keeps notes here", true}} {
		m, err := Read(withUserBlock(data, 2048, c.text))
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Tensors) != 1 || m.Tensors[0].Name != "w" {
			t.Fatalf("tensors %v", tensorNames(m))
		}
		if (len(m.Report.Warnings) > 0) != c.warn {
			t.Errorf("user block %q: warnings %q", c.text, m.Report.Warnings)
		}
	}
}

// A JLD2 file damaged by a text-mode transfer is named so (CONVERSION.md
// D2), not reported as a file without an HDF5 signature.
func TestTextModeDamage(t *testing.T) {
	b := newH5()
	w := b.f32Dataset([]uint64{2}, []float32{1, 2})
	data := b.finish(b.group([]string{"w"}, []uint64{w}))
	for name, d := range map[string][]byte{
		"crlf-to-lf":   bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")),
		"lf-to-crlf":   bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n")),
		"nul-to-space": bytes.ReplaceAll(data, []byte{0}, []byte(" ")),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Read(d)
			var e *Error
			if !errors.Is(err, convert.ErrTextMode) || !errors.As(err, &e) {
				t.Fatalf("error %v, want ErrTextMode", err)
			}
		})
	}
	if _, err := Read(append([]byte("7JL\x0c\x04\x00\x00\x00"), data...)); !errors.Is(err, convert.ErrJuliaSerialization) {
		t.Errorf("Julia Serialization stream: %v", err)
	}
}

// optimizerOpts is WithIncludeOptimizer when keep is set.
func optimizerOpts(keep bool) []convert.Option {
	if keep {
		return []convert.Option{convert.WithIncludeOptimizer()}
	}
	return nil
}
