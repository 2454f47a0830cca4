package bson

import (
	"bytes"
	"errors"
	"testing"

	"github.com/safeweights/safeweights/convert"
)

// A file that is not framed as BSON is named where it can be (spec
// CONVERSION.md section 6): a Julia Serialization stream, or a BSON.jl
// file whose NUL bytes a text-mode transfer replaced.
func TestNotBSON(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"julia-serialization", append([]byte("7JL\x0c\x04\x00\x00\x00"), synthDense()...), convert.ErrJuliaSerialization},
		{"nul-to-space", bytes.ReplaceAll(synthDense(), []byte{0}, []byte(" ")), convert.ErrTextMode},
		{"nul-removed", bytes.ReplaceAll(synthDense(), []byte{0}, nil), convert.ErrTextMode},
		{"truncated", synthDense()[:40], convert.ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(c.data)
			var e *Error
			if !errors.Is(err, c.want) || !errors.As(err, &e) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
		})
	}
}
