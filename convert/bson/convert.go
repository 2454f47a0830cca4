package bson

import (
	"context"

	"github.com/safeweights/safeweights/convert"
)

// Version is this converter's version: that of spec/convert-bson.md, the
// rules it implements. It is recorded, as part of Converter, in the
// provenance of every file it writes and in its reports.
const Version = "1.1"

// Converter names this converter and its version in provenance, reports
// and 'safeweights version' (convert.ConverterName).
const Converter = "safeweights/convert/bson " + Version

var limitsKey = convert.NewKey[Limits]("bson.Limits")

// WithLimits sets the limits of a BSON.jl read (zero fields: defaults). A
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

// Read extracts the model in a BSON.jl file. data is the whole file,
// typically mapped read-only; the returned tensors' Data alias it, so it
// must stay mapped while the model is used. Of opts, Read uses
// convert.WithIncludeOptimizer, convert.WithStrict and WithLimits.
func Read(data []byte, opts ...convert.Option) (*convert.Model, error) {
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	w, err := newWalker(data, o)
	if err != nil {
		return nil, err
	}
	return w.run()
}

// Convert reads the BSON.jl file src (mapped read-only) and writes its
// weights to the safeweights file dst, returning the conversion report.
// opts are Read's and those of convert.WriteFile (encoder options,
// progress). ctx is checked between tensors; nothing is left at dst on
// failure or cancellation.
func Convert(ctx context.Context, src, dst string, opts ...convert.Option) (*convert.Report, error) {
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	return convert.Convert(ctx, src, dst, func(data []byte) (*convert.Model, error) {
		w, err := newWalker(data, o)
		if err != nil {
			return nil, err
		}
		return w.run()
	}, opts...)
}
