package jld2

import (
	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/encode"
)

// Convert reads the JLD2 file src and writes its weights to the safeweights
// file dst. On failure nothing is left at dst.
func Convert(src, dst string, opts Options, enc ...encode.Option) (*convert.Report, error) {
	return convert.Convert(src, dst, func(data []byte) (*convert.Model, error) {
		return Read(data, opts)
	}, enc...)
}
