package convert

import (
	"errors"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
)

// Option configures a converter's Convert or Read. The options of this
// package apply to every converter (convert/bson, convert/jld2,
// convert/safetensors, convert/auto); a converter's own limits come from
// its package (bson.WithLimits, jld2.WithLimits, safetensors.WithLimits).
// A converter ignores the options of other converters, so one list can be
// given to convert/auto whatever the source turns out to be.
//
// An Option reports an invalid value when the conversion or read starts,
// before any input is read.
type Option func(*Settings) error

// Settings is what a list of Options sets. Converter packages build it
// with NewSettings and read it; callers only pass Options.
type Settings struct {
	// Options holds the settings that the readers walk with.
	Options
	// Encode are the options of the .swt writer.
	Encode []encode.Option
	// Decode are the options of the .swt reader, where a .swt file is
	// read (an export to safetensors, auto.Summarize).
	Decode []decode.Option
	// Progress, when not nil, is called with the tensor bytes written so
	// far and the total to write.
	Progress func(done, total int64)

	ext map[any]any // values of converter-specific Keys
}

// NewSettings applies opts in order to the defaults (weights only, code
// dropped, the writer's default options, no progress).
func NewSettings(opts ...Option) (*Settings, error) {
	s := &Settings{}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// WithIncludeOptimizer keeps optimiser state, under the "optimizer." prefix
// (rule N9). By default it is dropped and reported.
func WithIncludeOptimizer() Option {
	return func(s *Settings) error { s.IncludeOptimizer = true; return nil }
}

// WithStrict refuses a source that contains serialized code
// (ErrHasCode). By default code is dropped and reported, never run.
func WithStrict() Option {
	return func(s *Settings) error { s.Strict = true; return nil }
}

// WithEncodeOptions passes opts to the .swt writer (alignment, chunk size,
// digest, producer, workers, metadata). Repeated, the lists are joined.
func WithEncodeOptions(opts ...encode.Option) Option {
	return func(s *Settings) error { s.Encode = append(s.Encode, opts...); return nil }
}

// WithDecodeOptions passes opts to the .swt reader where a .swt file is
// the source (safetensors.ExportFile, convert/auto). Repeated, the lists
// are joined.
func WithDecodeOptions(opts ...decode.Option) Option {
	return func(s *Settings) error { s.Decode = append(s.Decode, opts...); return nil }
}

// WithProgress has fn called with the tensor bytes written so far and the
// total, once before the first tensor and after each tensor, from the
// goroutine that runs the conversion. Readers that write no .swt file
// (an export to safetensors) report the bytes they copy.
func WithProgress(fn func(done, total int64)) Option {
	return func(s *Settings) error { s.Progress = fn; return nil }
}

// Key is a setting of one converter package, stored in Settings by an
// Option of that package, as a context.Context stores values by key. Its
// zero value is not usable: create one with NewKey.
type Key[T any] struct{ name *string }

// NewKey returns a new key; name is for messages only. Every call returns
// a distinct key.
func NewKey[T any](name string) Key[T] { return Key[T]{name: &name} }

// Option returns an Option that sets the key's value to v. A check that is
// not nil runs first: its error fails the conversion before it starts.
func (k Key[T]) Option(v T, check func(T) error) Option {
	return func(s *Settings) error {
		if k.name == nil {
			return errors.New("convert: option with an unset key")
		}
		if check != nil {
			if err := check(v); err != nil {
				return err
			}
		}
		if s.ext == nil {
			s.ext = map[any]any{}
		}
		s.ext[k.name] = v
		return nil
	}
}

// Get returns the value set for the key, and whether one was set.
func (k Key[T]) Get(s *Settings) (T, bool) {
	v, ok := s.ext[k.name].(T)
	return v, ok
}
