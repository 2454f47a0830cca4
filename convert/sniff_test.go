package convert

import (
	"bytes"
	"errors"
	"testing"
)

func TestDiagnose(t *testing.T) {
	jld2 := make([]byte, 1024)
	copy(jld2, "HDF5-based Julia Data Format, version 0.2.0\x00 (Julia 1.10.4 64-bit LE)\x00")
	copy(jld2[512:], "\x89HDF\r\n\x1a\n\x02\x08\x08\x00")
	bson := []byte("\x2a\x00\x00\x00\x03model\x00\x1e\x00\x00\x00\x02tag\x00\x07\x00\x00\x00struct\x00\x04data\x00\x05\x00\x00\x00\x00\x00\x00")
	nulsTo := func(b []byte, r string) []byte { return bytes.ReplaceAll(b, []byte{0}, []byte(r)) }
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"julia-serialization", []byte("7JL\x0c\x04\x00\x00\x00\x15\x00\x08"), ErrJuliaSerialization},
		{"hdf5-crlf-to-lf", bytes.Replace(jld2, []byte("\r\n"), []byte("\n"), 1), ErrTextMode},
		{"hdf5-lf-to-crlf", bytes.ReplaceAll(jld2, []byte("\n"), []byte("\r\n")), ErrTextMode},
		{"hdf5-high-byte-replaced", bytes.Replace(jld2, []byte{0x89}, []byte("\xef\xbf\xbd"), 1), ErrTextMode},
		{"jld2-nul-to-space", nulsTo(jld2[:512], " "), ErrTextMode},
		{"bson-nul-removed", nulsTo(bson, ""), ErrTextMode},
		{"bson-nul-to-question-mark", nulsTo(bson, "?"), ErrTextMode},
		{"intact-jld2", jld2, nil},
		{"intact-bson", bson, nil},
		{"text", []byte("a plain text file about data and tags"), nil},
		{"empty", nil, nil},
		{"short-7JL", []byte("7JL"), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := Diagnose(c.data); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("Diagnose: %v, want %v", err, c.want)
			}
		})
	}
}

// FuzzDiagnose: any bytes give one of the kinds or nil, never a panic.
func FuzzDiagnose(f *testing.F) {
	f.Add([]byte("7JL\x0c\x04\x00\x00\x00"))
	f.Add([]byte("\x89HDF\n\x1a\n"))
	f.Add([]byte("HDF5-based Julia Data Format, version 0.2.0 (Julia 1.10.4 64-bit LE) "))
	f.Add([]byte("\x2a   \x03model \x02tag "))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := Diagnose(data); err != nil && !errors.Is(err, ErrJuliaSerialization) && !errors.Is(err, ErrTextMode) {
			t.Fatalf("Diagnose: %v", err)
		}
	})
}
