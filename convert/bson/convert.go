package bson

import "github.com/safeweights/safeweights/convert"

// Convert reads the BSON.jl file src (mapped read-only) and writes its
// weights to the safeweights file dst, returning the conversion report.
// Nothing is left at dst on failure.
func Convert(src, dst string, opts Options) (*convert.Report, error) {
	return convert.Convert(src, dst, func(data []byte) (*convert.Model, error) {
		return Read(data, opts)
	})
}
