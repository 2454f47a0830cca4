package jld2

import (
	"context"

	"github.com/safeweights/safeweights/convert"
)

// Version is this converter's version: that of spec/convert-jld2.md, the
// rules it implements. It is recorded, as part of Converter, in the
// provenance of every file it writes and in its reports.
const Version = "1.0"

// Converter names this converter and its version in provenance, reports
// and 'safeweights version' (convert.ConverterName).
const Converter = "safeweights/convert/jld2 " + Version

var limitsKey = convert.NewKey[Limits]("jld2.Limits")

// WithLimits sets the limits of a JLD2 read (zero fields: defaults). A
// negative limit is an error when the read or conversion starts. Other
// converters ignore this option.
func WithLimits(l Limits) convert.Option {
	return limitsKey.Option(l, func(l Limits) error { _, err := l.withDefaults(); return err })
}

func resolve(opts []convert.Option) (options, error) {
	s, err := convert.NewSettings(opts...)
	if err != nil {
		return options{}, err
	}
	lim, _ := limitsKey.Get(s)
	return options{Options: s.Options, Limits: lim}, nil
}

// Convert reads the JLD2 file src and writes its weights to the safeweights
// file dst, returning the conversion report. opts are Read's and those of
// convert.WriteFile (encoder options, progress). ctx is checked between
// tensors; nothing is left at dst on failure or cancellation.
func Convert(ctx context.Context, src, dst string, opts ...convert.Option) (*convert.Report, error) {
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	return convert.Convert(ctx, src, dst, func(data []byte) (*convert.Model, error) {
		m, _, err := read(data, o)
		return m, err
	}, opts...)
}
