package bson

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/safeweights/safeweights/convert"
)

// shrink rewrites a BSON.jl file with every array of raw data cut to one
// element per dimension, keeping its structure: fuzz seeds of a few
// kilobytes instead of megabytes of weights, which the fuzzer's
// minimization (quadratic in the input) cannot afford. It returns nil for
// a file it cannot decode.
func shrink(b []byte) []byte {
	d, ok := decodeDoc(b)
	if !ok {
		return nil
	}
	return encode(shrinkDoc(d))
}

func shrinkDoc(d D) D {
	out := make(D, len(d))
	isArray := false
	for _, e := range d {
		if e.K == "tag" && e.V == "array" {
			isArray = true
		}
	}
	var size A
	var data []byte
	for i, e := range d {
		out[i] = E{e.K, shrinkVal(e.V)}
		if isArray && e.K == "size" {
			size, _ = e.V.(A)
		}
		if isArray && e.K == "data" {
			data, _ = e.V.([]byte)
		}
	}
	if size == nil || data == nil {
		return out
	}
	n := int64(1)
	for _, x := range size {
		v, ok := x.(int64)
		if !ok {
			if v32, ok32 := x.(int32); ok32 {
				v = int64(v32)
			} else {
				return out
			}
		}
		n *= v
	}
	if n <= 0 || len(data) == 0 || int64(len(data))%n != 0 {
		return out
	}
	one := make(A, len(size))
	for i := range one {
		one[i] = int64(1)
	}
	for i := range out {
		switch out[i].K {
		case "size":
			out[i].V = one
		case "data":
			out[i].V = data[:int64(len(data))/n]
		}
	}
	return out
}

func shrinkVal(v any) any {
	switch v := v.(type) {
	case D:
		return shrinkDoc(v)
	case A:
		out := make(A, len(v))
		for i, x := range v {
			out[i] = shrinkVal(x)
		}
		return out
	}
	return v
}

func decodeDoc(b []byte) (D, bool) {
	if len(b) < 5 || int(binary.LittleEndian.Uint32(b)) != len(b) {
		return nil, false
	}
	var d D
	pos := 4
	for pos < len(b)-1 {
		t := b[pos]
		k := pos + 1
		for k < len(b) && b[k] != 0 {
			k++
		}
		if k >= len(b) {
			return nil, false
		}
		key := string(b[pos+1 : k])
		p := k + 1
		var v any
		need := func(n int) bool { return p+n <= len(b) }
		switch t {
		case 0x01:
			if !need(8) {
				return nil, false
			}
			v = math.Float64frombits(binary.LittleEndian.Uint64(b[p:]))
			p += 8
		case 0x02, 0x03, 0x04, 0x05:
			if !need(4) {
				return nil, false
			}
			l := int(int32(binary.LittleEndian.Uint32(b[p:])))
			switch t {
			case 0x02:
				if l < 1 || !need(4+l) {
					return nil, false
				}
				v = string(b[p+4 : p+4+l-1])
				p += 4 + l
			case 0x05:
				if l < 0 || !need(5+l) || b[p+4] != 0 {
					return nil, false
				}
				v = append([]byte{}, b[p+5:p+5+l]...)
				p += 5 + l
			default:
				if l < 5 || !need(l) {
					return nil, false
				}
				sub, ok := decodeDoc(b[p : p+l])
				if !ok {
					return nil, false
				}
				if t == 0x04 {
					a := make(A, len(sub))
					for i, e := range sub {
						if e.K != strconv.Itoa(i) {
							return nil, false
						}
						a[i] = e.V
					}
					v = a
				} else {
					v = sub
				}
				p += l
			}
		case 0x08:
			if !need(1) {
				return nil, false
			}
			v = b[p] != 0
			p++
		case 0x0A:
		case 0x10:
			if !need(4) {
				return nil, false
			}
			v = int32(binary.LittleEndian.Uint32(b[p:]))
			p += 4
		case 0x12:
			if !need(8) {
				return nil, false
			}
			v = int64(binary.LittleEndian.Uint64(b[p:]))
			p += 8
		default:
			return nil, false
		}
		if d == nil {
			d = D{}
		}
		d = append(d, E{key, v})
		pos = p
	}
	return d, pos == len(b)-1 && b[pos] == 0
}

// The fuzz seeds cut from the fixtures read as the fixtures do, so they
// reach the same code, and are small enough for the fuzzer's minimizer.
func TestShrunkSeeds(t *testing.T) {
	dir := fixtureDir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*.bson"))
	small := 0
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := shrink(b)
		if s == nil {
			t.Errorf("%s: shrink failed", filepath.Base(p))
			continue
		}
		m1, err1 := Read(b)
		m2, err2 := Read(s)
		if kindOf(err1) != kindOf(err2) {
			t.Errorf("%s: error %v, shrunk %v", filepath.Base(p), err1, err2)
			continue
		}
		if err1 == nil && len(m1.Tensors) != len(m2.Tensors) {
			t.Errorf("%s: %d tensors, shrunk %d", filepath.Base(p), len(m1.Tensors), len(m2.Tensors))
		}
		if len(s) <= maxSeed {
			small++
		}
	}
	if small < len(files)/2 {
		t.Errorf("only %d of %d shrunk fixtures are fuzz seeds", small, len(files))
	}
}

func kindOf(err error) error {
	for _, k := range []error{convert.ErrMalformed, convert.ErrLimit, convert.ErrUnsupported, convert.ErrHasCode, convert.ErrNoWeights, convert.ErrNameClash} {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}
