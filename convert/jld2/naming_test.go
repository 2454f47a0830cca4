package jld2

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/safeweights/safeweights/convert"
)

// heap writes a global heap collection holding objs (indices 1, 2, ...)
// and returns its address.
func (b *h5) heap(objs ...[]byte) uint64 {
	var body []byte
	for i, o := range objs {
		body = binary.LittleEndian.AppendUint16(body, uint16(i+1))
		body = append(body, 0, 0, 0, 0, 0, 0)
		body = binary.LittleEndian.AppendUint64(body, uint64(len(o)))
		body = append(body, o...)
		for len(body)%8 != 0 {
			body = append(body, 0)
		}
	}
	h := []byte{'G', 'C', 'O', 'L', 1, 0, 0, 0}
	h = binary.LittleEndian.AppendUint64(h, uint64(16+len(body)))
	return b.raw(append(h, body...))
}

// vlenRef is a variable-length value: count, collection, object index.
func vlenRef(n int, coll uint64, idx uint32) []byte {
	p := binary.LittleEndian.AppendUint32(nil, uint32(n))
	p = binary.LittleEndian.AppendUint64(p, coll)
	return binary.LittleEndian.AppendUint32(p, idx)
}

func dtVlenString() []byte {
	d := []byte{0x10 | classVlen, 1, 0, 0}
	d = binary.LittleEndian.AppendUint32(d, 16)
	return append(d, 0x10|classFixed, 0, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0)
}

// committed writes a committed datatype named juliaName (JLD2's julia_type
// attribute, a Core.DataType whose name is a heap string) and returns its
// address.
func (b *h5) committed(dt []byte, juliaName string) uint64 {
	coll := b.heap([]byte(juliaName))
	attrType := dtCompound([]string{"name"}, [][]byte{dtVlenString()}, []uint32{16})
	return b.object(hmsg{typ: msgDatatype, data: dt}, mAttr("julia_type", attrType, nil, vlenRef(len(juliaName), coll, 1)))
}

// mShared is a datatype message naming the committed datatype at addr.
func mShared(addr uint64) hmsg {
	return hmsg{typ: msgDatatype, flags: 0x03, data: append([]byte{3, 2}, u64s(addr)...)}
}

func tensorNames(m *convert.Model) []string {
	var names []string
	for _, t := range m.Tensors {
		names = append(names, t.Name)
	}
	return names
}

// TestLegacyDenseFields: Flux 0.11's Dense stores W and b; they are named
// weight and bias (CONVERSION.md N3a).
func TestLegacyDenseFields(t *testing.T) {
	b := newH5()
	w := b.f32Dataset([]uint64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	bias := b.f32Dataset([]uint64{2}, []float32{1, 2})
	dense := b.committed(dtCompound([]string{"W", "b"}, [][]byte{dtRef(), dtRef()}, []uint32{8, 8}), "Flux.Dense")
	layer := b.object(mSpace(), mShared(dense), mCompact(u64s(w, bias)))
	m, err := Read(b.finish(b.group([]string{"model"}, []uint64{layer})))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tensorNames(m), []string{"model.weight", "model.bias"}; !slices.Equal(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
}

// dictFile writes a Dict as JLD2 does: a scalar reference, typed by a
// committed Base.Dict type, to a vector of pairs.
func dictFile(b *h5, pairType []byte, pairs []byte, n uint64) []byte {
	dictType := b.committed(dtRef(), "Base.Dict")
	vec := b.object(mSpace(n), mType(pairType), mCompact(pairs))
	d := b.object(mSpace(), mShared(dictType), mCompact(u64s(vec)))
	return b.finish(b.group([]string{"d"}, []uint64{d}))
}

// TestDictNames: a Dict names its values by string keys, and by entry<i>
// with the key as key<i> otherwise (CONVERSION.md N5, spec J9).
func TestDictNames(t *testing.T) {
	b := newH5()
	enc := b.f32Dataset([]uint64{2}, []float32{1, 2})
	dec := b.f32Dataset([]uint64{2}, []float32{3, 4})
	keys := b.heap([]byte("enc"), []byte("dec"))
	pt := dtCompound([]string{"first", "second"}, [][]byte{dtVlenString(), dtRef()}, []uint32{16, 8})
	pairs := append(append(vlenRef(3, keys, 1), u64s(enc)...), append(vlenRef(3, keys, 2), u64s(dec)...)...)
	m, err := Read(dictFile(b, pt, pairs, 2))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tensorNames(m), []string{"d.enc", "d.dec"}; !slices.Equal(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
	if d := m.Structure.Fields[0].Node; d.Kind != "dict" || d.Type != "Base.Dict" || len(d.Items) != 2 || d.Items[0].Items[0].Value != "enc" {
		t.Fatalf("structure %+v", d)
	}

	// Array keys, as in an optimiser's state keyed by the model's arrays.
	b = newH5()
	k1 := b.f32Dataset([]uint64{2}, []float32{1, 2})
	v1 := b.f32Dataset([]uint64{2}, []float32{0, 0})
	pt = dtCompound([]string{"first", "second"}, [][]byte{dtRef(), dtRef()}, []uint32{8, 8})
	m, err = Read(dictFile(b, pt, u64s(k1, v1), 1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tensorNames(m), []string{"d.key1", "d.entry1"}; !slices.Equal(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
}

// TestRestructureIsModel: Optimisers.Restructure holds the model that
// destructure flattened, not optimiser state; Optimisers.Leaf is state.
func TestRestructureIsModel(t *testing.T) {
	b := newH5()
	w := b.f32Dataset([]uint64{2}, []float32{1, 2})
	st := b.f32Dataset([]uint64{2}, []float32{0, 0})
	re := b.committed(dtCompound([]string{"model"}, [][]byte{dtRef()}, []uint32{8}), "Optimisers.Restructure")
	leaf := b.committed(dtCompound([]string{"state"}, [][]byte{dtRef()}, []uint32{8}), "Optimisers.Leaf")
	r := b.object(mSpace(), mShared(re), mCompact(u64s(w)))
	l := b.object(mSpace(), mShared(leaf), mCompact(u64s(st)))
	m, err := Read(b.finish(b.group([]string{"re", "leaf"}, []uint64{r, l})))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tensorNames(m), []string{"re.model"}; !slices.Equal(got, want) {
		t.Fatalf("names %v, want %v", got, want)
	}
}
