package format

import (
	"bytes"
	"math/bits"
	"unicode/utf8"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/safeweights/safeweights/format/internal/fbs"
)

// FileIdentifier is the FlatBuffers file identifier of the header.
const FileIdentifier = "SWT1"

// Schema slots (field order in spec/safeweights.fbs).
const (
	slotHeaderChunkSize = iota
	slotHeaderTensors
	slotHeaderNameIndex
	slotHeaderMetadata
	slotHeaderProducer
	slotHeaderProvenance
)

const (
	slotTensorName = iota
	slotTensorDType
	slotTensorShape
	slotTensorOffset
	slotTensorStoredLength
	slotTensorCompression
	slotTensorDigests
	slotTensorAttributes
)

const (
	slotProvSourceFormat = iota
	slotProvSourceSHA256
	slotProvConverter
	slotProvNotes
)

// KeyValue is one metadata entry, attribute or provenance note.
type KeyValue struct {
	Key, Value string
}

// Provenance records where a converted file came from.
type Provenance struct {
	SourceFormat string
	SourceSHA256 []byte // 32 bytes, or empty
	Converter    string
	Notes        []KeyValue
}

// TensorEntry is a tensor as the header records it.
type TensorEntry struct {
	Name         string
	DType        DType
	Shape        []int64
	Offset       uint64 // relative to the start of the data region
	StoredLength uint64
	Compression  Compression
	Digests      []byte // concatenated chunk digests
	Attributes   []KeyValue
}

// Length is the canonical (decoded) byte length of the tensor, or false if
// it overflows.
func (t *TensorEntry) Length() (uint64, bool) {
	n, ok := NumElements(t.Shape)
	if !ok {
		return 0, false
	}
	hi, lo := bits.Mul64(n, uint64(t.DType.Size()))
	return lo, hi == 0 && lo <= 1<<63-1
}

// NumElements returns the product of the dimensions (R17), or false if a
// dimension is negative or the product overflows an int64. The product is the
// mathematical one: a zero dimension makes it 0 whatever the others are, so
// [2^62, 4, 0] has 0 elements.
func NumElements(shape []int64) (uint64, bool) {
	zero := false
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		zero = zero || d == 0
	}
	if zero {
		return 0, true
	}
	n := uint64(1)
	for _, d := range shape {
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > 1<<63-1 {
			return 0, false
		}
		n = lo
	}
	return n, true
}

// NumChunks is the number of digest chunks of a tensor of stored length n.
func NumChunks(n, chunkSize uint64) uint64 {
	if n == 0 {
		return 0
	}
	return (n-1)/chunkSize + 1
}

// Header is a verified FlatBuffers header. Its methods never fail: ParseHeader
// has checked every rule that they depend on. A Header aliases the buffer it
// was parsed from.
type Header struct {
	buf       []byte
	root      fbs.Header
	n         int
	chunkSize uint64
}

// ParseHeader verifies buf, the header of a file with preamble p, completely:
// its FlatBuffers structure (R11, R12) and every rule of the spec that the
// header alone decides (R13 to R24). It touches no tensor data.
func ParseHeader(buf []byte, p *Preamble, lim Limits) (*Header, error) {
	v := &fbv{buf: buf, base: int64(p.HeaderOffset)}
	if len(buf) < 8 {
		return nil, v.errf(0, "root", "header shorter than 8 bytes")
	}
	// R11 coverage: a reader cannot account for the objects that fields of
	// a later minor version reference, so it checks coverage only in files
	// of the minor versions it knows.
	if p.VersionMinor <= VersionMinor {
		v.cover = make([]uint64, (len(buf)+63)/64)
		v.lastVT, v.maskVT = ^uint32(0), ^uint32(0)
		_ = v.claim(0, 8, "root")
	}
	if string(buf[4:8]) != FileIdentifier {
		return nil, v.errf(4, "file identifier", "want "+FileIdentifier)
	}
	rootPos, err := v.deref(0, "root")
	if err != nil {
		return nil, err
	}
	rt, err := v.table(rootPos, widthsHeader, "root")
	if err != nil {
		return nil, err
	}

	// R13: chunk size.
	chunk, err := v.u64(rt, slotHeaderChunkSize, "chunk_size")
	if err != nil {
		return nil, err
	}
	if chunk < MinChunkSize || chunk > MaxChunkSize || chunk&(chunk-1) != 0 {
		return nil, Errorf(ErrChunking, "R13", -1, "chunk_size", "not a power of two in [1 KiB, 1 GiB]")
	}

	// R14: tensor count.
	tStart, n, _, err := v.vectorField(rt, slotHeaderTensors, 4, "tensors")
	if err != nil {
		return nil, err
	}
	if n > uint64(lim.MaxTensors) {
		return nil, Errorf(ErrLimit, "R14", -1, "tensors", itoa(n)+" tensors over the limit of "+itoa(uint64(lim.MaxTensors)))
	}

	meta := uint64(0) // bytes of metadata, attributes and notes (R23)
	align := uint64(p.Alignment)
	end := uint64(0) // end of the previous tensor, relative to the data region
	for i := uint64(0); i < n; i++ {
		t, err := v.tableAt(tStart+4*i, widthsTensor, "tensor")
		if err != nil {
			return nil, err
		}
		if err := checkTensor(v, t, i, p, lim, chunk, align, &end, &meta); err != nil {
			return nil, err
		}
	}
	// R20: the data region ends where the last tensor ends.
	if end != p.DataLength {
		return nil, Errorf(ErrLayout, "R20", 32, "data length", "does not end at the last tensor")
	}

	// R22: the name index is a permutation sorted by name.
	if err := checkNameIndex(v, rt, tStart, n); err != nil {
		return nil, err
	}

	// R23: metadata.
	if err := checkKeyValues(v, rt, slotHeaderMetadata, "metadata", lim, &meta); err != nil {
		return nil, err
	}
	// R24: producer and provenance.
	if s, off, _, err := v.stringField(rt, slotHeaderProducer, "producer"); err != nil {
		return nil, err
	} else if !utf8.Valid(s) {
		return nil, Errorf(ErrMetadata, "R24", v.base+int64(off), "producer", "not UTF-8")
	}
	if pp, err := v.field(rt, slotHeaderProvenance, 4, "provenance"); err != nil {
		return nil, err
	} else if pp != 0 {
		pt, err := v.tableAt(pp, widthsProvenance, "provenance")
		if err != nil {
			return nil, err
		}
		for _, slot := range []int{slotProvSourceFormat, slotProvConverter} {
			s, off, _, err := v.stringField(pt, slot, "provenance")
			if err != nil {
				return nil, err
			}
			if !utf8.Valid(s) {
				return nil, Errorf(ErrMetadata, "R24", v.base+int64(off), "provenance", "not UTF-8")
			}
			meta += uint64(len(s))
		}
		_, sn, _, err := v.vectorField(pt, slotProvSourceSHA256, 1, "provenance source_sha256")
		if err != nil {
			return nil, err
		}
		if sn != 0 && sn != 32 {
			return nil, Errorf(ErrMetadata, "R24", -1, "provenance source_sha256", "not 32 bytes")
		}
		if err := checkKeyValues(v, pt, slotProvNotes, "provenance notes", lim, &meta); err != nil {
			return nil, err
		}
	}
	if meta > uint64(lim.MaxMetadataSize) {
		return nil, Errorf(ErrLimit, "R23", -1, "metadata", itoa(meta)+" bytes over the limit of "+itoa(uint64(lim.MaxMetadataSize)))
	}

	if err := v.checkCoverage(); err != nil {
		return nil, err
	}

	h := &Header{buf: buf, n: int(n), chunkSize: chunk}
	h.root.Init(buf, flatbuffers.UOffsetT(rootPos))
	return h, nil
}

func checkTensor(v *fbv, t table, i uint64, p *Preamble, lim Limits, chunk, align uint64, end, meta *uint64) error {
	// Field labels are built only on failure: building them for every
	// tensor of a valid file was most of the cost of ParseHeader.
	var name []byte
	named := false // the name is valid and labels the tensor
	field := func(suffix string) string {
		if !named {
			return "tensor " + itoa(i) + suffix
		}
		return "tensor " + strconvQuote(name) + suffix
	}
	// R12, R15: the name.
	name, off, ok, err := v.stringField(t, slotTensorName, "")
	if err != nil {
		return labeled(err, field(" name"))
	}
	if !ok {
		return Errorf(ErrHeader, "R12", v.base+int64(t.pos), field(""), "name missing")
	}
	if len(name) > lim.MaxNameLength {
		return Errorf(ErrLimit, "R15", v.base+int64(off), field(" name"), itoa(uint64(len(name)))+" bytes over the limit of "+itoa(uint64(lim.MaxNameLength)))
	}
	if !validName(name) {
		return Errorf(ErrName, "R15", v.base+int64(off), field(" name"), "empty, not UTF-8, or holds NUL")
	}
	named = true

	// R16: the dtype.
	dt, err := v.u8(t, slotTensorDType, "")
	if err != nil {
		return labeled(err, field(" dtype"))
	}
	if !DType(dt).Valid() {
		return Errorf(ErrDType, "R16", -1, field(" dtype"), "unknown dtype "+itoa(uint64(dt)))
	}

	// R17: the shape.
	sStart, rank, _, err := v.vectorField(t, slotTensorShape, 8, "")
	if err != nil {
		return labeled(err, field(" shape"))
	}
	if rank > uint64(lim.MaxRank) {
		return Errorf(ErrLimit, "R17", v.base+int64(sStart), field(" shape"), "rank "+itoa(rank)+" over the limit of "+itoa(uint64(lim.MaxRank)))
	}
	count, err := shapeCount(v, sStart, rank, field)
	if err != nil {
		return err
	}
	hi, length := bits.Mul64(count, uint64(DType(dt).Size()))
	if hi != 0 || length > 1<<63-1 {
		return Errorf(ErrShape, "R17", v.base+int64(sStart), field(" shape"), "byte length overflows")
	}

	// R18: compression and stored length.
	comp, err := v.u8(t, slotTensorCompression, "")
	if err != nil {
		return labeled(err, field(" compression"))
	}
	stored, err := v.u64(t, slotTensorStoredLength, "")
	if err != nil {
		return labeled(err, field(" stored_length"))
	}
	switch Compression(comp) {
	case None:
		if stored != length {
			return Errorf(ErrShape, "R18", -1, field(" stored_length"), "is "+itoa(stored)+", the shape and dtype give "+itoa(length))
		}
	case Zstd:
		if length == 0 || stored == 0 {
			return Errorf(ErrCompression, "R18", -1, field(""), "a compressed tensor must not be empty")
		}
	default:
		return Errorf(ErrCompression, "R18", -1, field(" compression"), "unknown compression "+itoa(uint64(comp)))
	}

	// R19, R20: placement.
	offset, err := v.u64(t, slotTensorOffset, "")
	if err != nil {
		return labeled(err, field(" offset"))
	}
	want := uint64(0)
	if i > 0 {
		var ok bool
		if want, ok = AlignUp(*end, align); !ok {
			return Errorf(ErrLayout, "R19", -1, field(" offset"), "overflows")
		}
	}
	if offset != want {
		return Errorf(ErrLayout, "R19", -1, field(" offset"), "is "+itoa(offset)+", must be "+itoa(want)+" (the previous tensor's end rounded up to the alignment)")
	}
	e, c := bits.Add64(offset, stored, 0)
	if c != 0 || e > p.DataLength {
		return Errorf(ErrLayout, "R20", -1, field(""), "extends past the data region")
	}
	*end = e

	// R21: chunk digests.
	_, dn, _, err := v.vectorField(t, slotTensorDigests, 1, "")
	if err != nil {
		return labeled(err, field(" digests"))
	}
	if dn != NumChunks(stored, chunk)*DigestSize {
		return Errorf(ErrChunking, "R21", -1, field(" digests"), "want "+itoa(NumChunks(stored, chunk))+" digests of 32 bytes")
	}

	// R23: attributes, labeled only when the tensor has some.
	if ap, err := v.field(t, slotTensorAttributes, 4, ""); err != nil || ap != 0 {
		return checkKeyValues(v, t, slotTensorAttributes, field(" attributes"), lim, meta)
	}
	return nil
}

// shapeCount checks R17 on the rank dimensions at sStart and returns their
// product. Every dimension must be below 2^63; the product is the
// mathematical one, so a zero dimension anywhere makes it 0 and no earlier
// partial product can overflow it.
func shapeCount(v *fbv, sStart, rank uint64, field func(string) string) (uint64, error) {
	zero := false
	for j := uint64(0); j < rank; j++ {
		d := le.Uint64(v.buf[sStart+8*j:])
		if d > 1<<63-1 {
			return 0, Errorf(ErrShape, "R17", v.base+int64(sStart+8*j), field(" shape"), "dimension not below 2^63")
		}
		zero = zero || d == 0
	}
	if zero {
		return 0, nil
	}
	count := uint64(1)
	for j := uint64(0); j < rank; j++ {
		hi, lo := bits.Mul64(count, le.Uint64(v.buf[sStart+8*j:]))
		if hi != 0 || lo > 1<<63-1 {
			return 0, Errorf(ErrShape, "R17", v.base+int64(sStart+8*j), field(" shape"), "element count overflows")
		}
		count = lo
	}
	return count, nil
}

// labeled sets the field of a structural error from fbv, which was called
// with an empty label so that valid files never pay for building one.
func labeled(err error, field string) error {
	if fe, ok := err.(*FormatError); ok && fe.Field == "" {
		fe.Field = field
	}
	return err
}

// checkKeyValues checks a vector of KeyValue tables (R12, R23): keys and
// values present and UTF-8, keys non-empty and strictly increasing.
func checkKeyValues(v *fbv, t table, slot int, field string, lim Limits, meta *uint64) error {
	start, n, _, err := v.vectorField(t, slot, 4, field)
	if err != nil {
		return err
	}
	var prev []byte
	for i := uint64(0); i < n; i++ {
		kv, err := v.tableAt(start+4*i, widthsKeyValue, field)
		if err != nil {
			return err
		}
		k, koff, kok, err := v.stringField(kv, 0, field+" key")
		if err != nil {
			return err
		}
		val, _, vok, err := v.stringField(kv, 1, field+" value")
		if err != nil {
			return err
		}
		if !kok || !vok {
			return Errorf(ErrHeader, "R12", v.base+int64(kv.pos), field, "key or value missing")
		}
		*meta += uint64(len(k)) + uint64(len(val))
		if *meta > uint64(lim.MaxMetadataSize) {
			return Errorf(ErrLimit, "R23", v.base+int64(koff), field, "over the metadata limit of "+itoa(uint64(lim.MaxMetadataSize)))
		}
		if len(k) == 0 || !utf8.Valid(k) || !utf8.Valid(val) {
			return Errorf(ErrMetadata, "R23", v.base+int64(koff), field, "empty key, or key or value not UTF-8")
		}
		if i > 0 {
			switch c := bytes.Compare(prev, k); {
			case c == 0:
				return Errorf(ErrDuplicate, "R23", v.base+int64(koff), field, "duplicate key "+strconvQuote(k))
			case c > 0:
				return Errorf(ErrMetadata, "R23", v.base+int64(koff), field, "keys not sorted")
			}
		}
		prev = k
	}
	return nil
}

// checkNameIndex checks R22: the index is a permutation of the tensors whose
// names are strictly increasing (so names are unique).
func checkNameIndex(v *fbv, rt table, tStart, n uint64) error {
	start, m, _, err := v.vectorField(rt, slotHeaderNameIndex, 4, "name_index")
	if err != nil {
		return err
	}
	if m != n {
		return Errorf(ErrHeader, "R22", -1, "name_index", "length differs from the tensor count")
	}
	seen := make([]uint64, (n+63)/64)
	var prev []byte
	for i := uint64(0); i < n; i++ {
		j := uint64(le.Uint32(v.buf[start+4*i:]))
		if j >= n || seen[j/64]&(1<<(j%64)) != 0 {
			return Errorf(ErrHeader, "R22", v.base+int64(start+4*i), "name_index", "not a permutation")
		}
		seen[j/64] |= 1 << (j % 64)
		name := nameAt(v.buf, tStart, j)
		if i > 0 {
			switch c := bytes.Compare(prev, name); {
			case c == 0:
				return Errorf(ErrDuplicate, "R22", -1, "tensor "+strconvQuote(name), "name appears twice")
			case c > 0:
				return Errorf(ErrHeader, "R22", v.base+int64(start+4*i), "name_index", "not sorted by name")
			}
		}
		prev = name
	}
	return nil
}

// nameAt reads tensor j's name from a buffer whose tensors were verified.
func nameAt(buf []byte, tStart, j uint64) []byte {
	var t fbs.Tensor
	p := tStart + 4*j
	t.Init(buf, flatbuffers.UOffsetT(p+uint64(le.Uint32(buf[p:]))))
	return t.Name()
}

func strconvQuote(b []byte) string {
	const max = 64
	s := string(b)
	if len(s) > max {
		s = s[:max] + "..."
	}
	return "\"" + s + "\""
}

// NumTensors is the number of tensors.
func (h *Header) NumTensors() int { return h.n }

// ChunkSize is the digest chunk size.
func (h *Header) ChunkSize() uint64 { return h.chunkSize }

func (h *Header) tensor(i int) fbs.Tensor {
	var t fbs.Tensor
	h.root.Tensors(&t, i)
	return t
}

// TensorName returns tensor i's name; the bytes alias the header buffer.
func (h *Header) TensorName(i int) []byte {
	t := h.tensor(i)
	return t.Name()
}

// Tensor returns tensor i (in file order) as a new TensorEntry. The Digests
// slice aliases the header buffer.
func (h *Header) Tensor(i int) TensorEntry {
	t := h.tensor(i)
	e := TensorEntry{
		Name:         string(t.Name()),
		DType:        DType(t.Dtype()),
		Offset:       t.Offset(),
		StoredLength: t.StoredLength(),
		Compression:  Compression(t.Compression()),
		Digests:      t.DigestsBytes(),
	}
	if r := t.ShapeLength(); r > 0 {
		e.Shape = make([]int64, r)
		for j := range e.Shape {
			e.Shape[j] = int64(t.Shape(j))
		}
	} else {
		e.Shape = []int64{}
	}
	if n := t.AttributesLength(); n > 0 {
		e.Attributes = make([]KeyValue, n)
		var kv fbs.KeyValue
		for j := range e.Attributes {
			t.Attributes(&kv, j)
			e.Attributes[j] = KeyValue{string(kv.Key()), string(kv.Value())}
		}
	}
	return e
}

// Lookup returns the file-order index of the tensor named name, by binary
// search of the name index, or -1.
func (h *Header) Lookup(name string) int {
	lo, hi := 0, h.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		j := int(h.root.NameIndex(m))
		// string(b) in a comparison does not allocate.
		switch b := h.TensorName(j); {
		case string(b) == name:
			return j
		case string(b) < name:
			lo = m + 1
		default:
			hi = m
		}
	}
	return -1
}

// SortedIndex returns the file-order index of the i-th tensor in name order.
func (h *Header) SortedIndex(i int) int { return int(h.root.NameIndex(i)) }

// Metadata returns the model-level metadata, sorted by key.
func (h *Header) Metadata() []KeyValue {
	n := h.root.MetadataLength()
	out := make([]KeyValue, n)
	var kv fbs.KeyValue
	for i := range out {
		h.root.Metadata(&kv, i)
		out[i] = KeyValue{string(kv.Key()), string(kv.Value())}
	}
	return out
}

// Producer names the software that wrote the file.
func (h *Header) Producer() string { return string(h.root.Producer()) }

// Provenance returns the conversion provenance, if the file has one.
func (h *Header) Provenance() (Provenance, bool) {
	var p fbs.Provenance
	if h.root.Provenance(&p) == nil {
		return Provenance{}, false
	}
	out := Provenance{
		SourceFormat: string(p.SourceFormat()),
		SourceSHA256: append([]byte(nil), p.SourceSha256Bytes()...),
		Converter:    string(p.Converter()),
	}
	var kv fbs.KeyValue
	for i := 0; i < p.NotesLength(); i++ {
		p.Notes(&kv, i)
		out.Notes = append(out.Notes, KeyValue{string(kv.Key()), string(kv.Value())})
	}
	return out, true
}
