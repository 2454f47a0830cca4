package convert

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/safeweights/safeweights/format"
)

// ScalarText renders one little-endian element of type dt as the Value of a
// scalar Node (spec/CONVERSION.md section 4), the same way for every source
// format: the shortest decimal that reads back to the same value, booleans
// as true and false, and complex numbers as Julia prints them ("1.5+2.0im"
// is written "1.5+2im"). It returns "" when b is too short for dt.
func ScalarText(dt format.DType, b []byte) string {
	if len(b) < dt.Size() {
		return ""
	}
	le := binary.LittleEndian
	switch dt {
	case format.F64:
		return strconv.FormatFloat(math.Float64frombits(le.Uint64(b)), 'g', -1, 64)
	case format.F32:
		return strconv.FormatFloat(float64(math.Float32frombits(le.Uint32(b))), 'g', -1, 32)
	case format.F16:
		return strconv.FormatFloat(float64(Float16(le.Uint16(b))), 'g', -1, 32)
	case format.BF16:
		return strconv.FormatFloat(float64(math.Float32frombits(uint32(le.Uint16(b))<<16)), 'g', -1, 32)
	case format.I64:
		return strconv.FormatInt(int64(le.Uint64(b)), 10)
	case format.I32:
		return strconv.FormatInt(int64(int32(le.Uint32(b))), 10)
	case format.I16:
		return strconv.FormatInt(int64(int16(le.Uint16(b))), 10)
	case format.I8:
		return strconv.FormatInt(int64(int8(b[0])), 10)
	case format.U64:
		return strconv.FormatUint(le.Uint64(b), 10)
	case format.U32:
		return strconv.FormatUint(uint64(le.Uint32(b)), 10)
	case format.U16:
		return strconv.FormatUint(uint64(le.Uint16(b)), 10)
	case format.U8, format.F8E4M3, format.F8E5M2:
		return strconv.FormatUint(uint64(b[0]), 10)
	case format.Bool:
		return strconv.FormatBool(b[0] != 0)
	case format.C64:
		return complexText(ScalarText(format.F32, b), ScalarText(format.F32, b[4:]))
	case format.C128:
		return complexText(ScalarText(format.F64, b), ScalarText(format.F64, b[8:]))
	}
	return ""
}

func complexText(re, im string) string {
	if len(im) > 0 && im[0] != '-' {
		im = "+" + im
	}
	return re + im + "im"
}

// Float16 converts an IEEE 754 binary16 value to float32, exactly.
func Float16(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // infinities and NaNs
		return math.Float32frombits(sign | 0xff<<23 | man<<13)
	case exp == 0: // zeros and subnormals: man x 2^-24
		v := float32(man) / (1 << 24)
		if sign != 0 {
			return -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
}
