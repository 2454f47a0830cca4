package safetensors

import (
	"github.com/safeweights/safeweights/convert"
)

// SourceFormat is the provenance name of safetensors sources.
const SourceFormat = "safetensors"

// Read parses the safetensors file held in data and returns its tensors
// in data order. Tensor data aliases data (no copy), so data must outlive
// the model and must not be modified; the header's __metadata__ becomes the
// model's metadata.
//
// Every rule of spec/convert-safetensors.md is checked before Read returns:
// a file Read accepts is one the Rust safetensors loader accepts too. Of
// opts, Read uses WithLimits.
func Read(data []byte, opts ...convert.Option) (*convert.Model, error) {
	lim, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	return read(data, lim)
}

func read(data []byte, lim Limits) (*convert.Model, error) {
	h, err := ParseHeader(data, lim)
	if err != nil {
		return nil, err
	}
	return h.model(data), nil
}

// model builds the model of a validated header over the whole file data.
func (h *Header) model(data []byte) *convert.Model {
	m := &convert.Model{
		SourceFormat: SourceFormat,
		Tensors:      make([]convert.Tensor, len(h.Tensors)),
		Metadata:     h.Metadata,
		Report: convert.Report{
			SourceFormat: SourceFormat,
			Converter:    Converter,
			Dropped:      []convert.Dropped{},
		},
	}
	for i, t := range h.Tensors {
		a, b := h.DataOffset+t.Begin, h.DataOffset+t.End
		m.Tensors[i] = convert.Tensor{
			Name:  t.Name,
			DType: t.DType,
			Shape: t.Shape,
			// The capacity is cut so that an append by a consumer can
			// never write into the next tensor.
			Data: data[a:b:b],
		}
	}
	return m
}
