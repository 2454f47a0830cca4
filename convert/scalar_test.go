package convert

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/safeweights/safeweights/format"
)

func TestScalarText(t *testing.T) {
	le := binary.LittleEndian
	f32 := func(v float32) []byte { return le.AppendUint32(nil, math.Float32bits(v)) }
	f64 := func(v float64) []byte { return le.AppendUint64(nil, math.Float64bits(v)) }
	for _, c := range []struct {
		dt   format.DType
		b    []byte
		want string
	}{
		{format.F32, f32(1e-5), "1e-05"},
		{format.F64, f64(0.1), "0.1"},
		{format.F16, []byte{0x00, 0x3c}, "1"},
		{format.F16, []byte{0x01, 0x00}, "5.9604645e-08"}, // smallest subnormal, 2^-24
		{format.F16, []byte{0x00, 0xfc}, "-Inf"},
		{format.BF16, []byte{0x80, 0x3f}, "1"},
		{format.I32, le.AppendUint32(nil, math.MaxUint32), "-1"},
		{format.U16, []byte{0xff, 0xff}, "65535"},
		{format.Bool, []byte{1}, "true"},
		{format.C64, append(f32(1.5), f32(-2)...), "1.5-2im"},
		{format.C128, append(f64(0), f64(3)...), "0+3im"},
		{format.F64, []byte{1, 2}, ""}, // too short
	} {
		if got := ScalarText(c.dt, c.b); got != c.want {
			t.Errorf("%v % x: got %q, want %q", c.dt, c.b, got, c.want)
		}
	}
}
