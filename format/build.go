package format

import (
	"bytes"
	"slices"
	"strings"

	flatbuffers "github.com/google/flatbuffers/go"

	"github.com/safeweights/safeweights/format/internal/fbs"
)

// HeaderFields is what a writer records in the header.
type HeaderFields struct {
	ChunkSize  uint64
	Tensors    []TensorEntry // in file order
	Metadata   []KeyValue    // any order; keys unique
	Producer   string
	Provenance *Provenance
}

// BuildHeader serializes h as a FlatBuffers header: metadata, attributes and
// notes sorted by key, and the name index. The output is a function of h
// alone, so equal inputs give equal bytes. BuildHeader does not check the
// spec's rules; callers run ParseHeader on the result for that.
func BuildHeader(h *HeaderFields) []byte {
	b := flatbuffers.NewBuilder(1024 + 128*len(h.Tensors))

	tensors := make([]flatbuffers.UOffsetT, len(h.Tensors))
	for i := len(h.Tensors) - 1; i >= 0; i-- {
		tensors[i] = buildTensor(b, &h.Tensors[i])
	}
	fbs.HeaderStartTensorsVector(b, len(tensors))
	for i := len(tensors) - 1; i >= 0; i-- {
		b.PrependUOffsetT(tensors[i])
	}
	tvec := b.EndVector(len(tensors))

	order := make([]uint32, len(h.Tensors))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortStableFunc(order, func(a, c uint32) int {
		return strings.Compare(h.Tensors[a].Name, h.Tensors[c].Name)
	})
	fbs.HeaderStartNameIndexVector(b, len(order))
	for i := len(order) - 1; i >= 0; i-- {
		b.PrependUint32(order[i])
	}
	ivec := b.EndVector(len(order))

	mvec := buildKeyValues(b, h.Metadata, fbs.HeaderStartMetadataVector)
	var prod flatbuffers.UOffsetT
	if h.Producer != "" {
		prod = b.CreateString(h.Producer)
	}
	var prov flatbuffers.UOffsetT
	if p := h.Provenance; p != nil {
		sf := b.CreateString(p.SourceFormat)
		var sha flatbuffers.UOffsetT
		if len(p.SourceSHA256) > 0 {
			sha = b.CreateByteVector(p.SourceSHA256)
		}
		conv := b.CreateString(p.Converter)
		notes := buildKeyValues(b, p.Notes, fbs.ProvenanceStartNotesVector)
		fbs.ProvenanceStart(b)
		fbs.ProvenanceAddSourceFormat(b, sf)
		if sha != 0 {
			fbs.ProvenanceAddSourceSha256(b, sha)
		}
		fbs.ProvenanceAddConverter(b, conv)
		if notes != 0 {
			fbs.ProvenanceAddNotes(b, notes)
		}
		prov = fbs.ProvenanceEnd(b)
	}

	fbs.HeaderStart(b)
	fbs.HeaderAddChunkSize(b, h.ChunkSize)
	fbs.HeaderAddTensors(b, tvec)
	fbs.HeaderAddNameIndex(b, ivec)
	if mvec != 0 {
		fbs.HeaderAddMetadata(b, mvec)
	}
	if prod != 0 {
		fbs.HeaderAddProducer(b, prod)
	}
	if prov != 0 {
		fbs.HeaderAddProvenance(b, prov)
	}
	root := fbs.HeaderEnd(b)
	b.FinishWithFileIdentifier(root, []byte(FileIdentifier))
	return b.FinishedBytes()
}

func buildTensor(b *flatbuffers.Builder, t *TensorEntry) flatbuffers.UOffsetT {
	name := b.CreateString(t.Name)
	fbs.TensorStartShapeVector(b, len(t.Shape))
	for i := len(t.Shape) - 1; i >= 0; i-- {
		b.PrependUint64(uint64(t.Shape[i]))
	}
	shape := b.EndVector(len(t.Shape))
	dig := b.CreateByteVector(t.Digests)
	attrs := buildKeyValues(b, t.Attributes, fbs.TensorStartAttributesVector)
	fbs.TensorStart(b)
	fbs.TensorAddName(b, name)
	fbs.TensorAddDtype(b, fbs.DType(t.DType))
	fbs.TensorAddShape(b, shape)
	fbs.TensorAddOffset(b, t.Offset)
	fbs.TensorAddStoredLength(b, t.StoredLength)
	fbs.TensorAddCompression(b, fbs.Compression(t.Compression))
	fbs.TensorAddDigests(b, dig)
	if attrs != 0 {
		fbs.TensorAddAttributes(b, attrs)
	}
	return fbs.TensorEnd(b)
}

func buildKeyValues(b *flatbuffers.Builder, kvs []KeyValue, start func(*flatbuffers.Builder, int) flatbuffers.UOffsetT) flatbuffers.UOffsetT {
	if len(kvs) == 0 {
		return 0
	}
	sorted := slices.Clone(kvs)
	slices.SortStableFunc(sorted, func(a, c KeyValue) int { return bytes.Compare([]byte(a.Key), []byte(c.Key)) })
	offs := make([]flatbuffers.UOffsetT, len(sorted))
	for i := len(sorted) - 1; i >= 0; i-- {
		k := b.CreateString(sorted[i].Key)
		v := b.CreateString(sorted[i].Value)
		fbs.KeyValueStart(b)
		fbs.KeyValueAddKey(b, k)
		fbs.KeyValueAddValue(b, v)
		offs[i] = fbs.KeyValueEnd(b)
	}
	start(b, len(offs))
	for i := len(offs) - 1; i >= 0; i-- {
		b.PrependUOffsetT(offs[i])
	}
	return b.EndVector(len(offs))
}
