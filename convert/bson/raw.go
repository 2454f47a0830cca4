package bson

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"

	mbson "go.mongodb.org/mongo-driver/v2/bson"

	"github.com/safeweights/safeweights/convert"
)

// val is one BSON value: its type, its bytes (for a document or list, the
// whole encoding with its length prefix), and its offset in the file.
type val struct {
	t   mbson.Type
	b   []byte
	off int
}

func (v val) raw() mbson.RawValue { return mbson.RawValue{Type: v.t, Value: v.b} }

// valueLen returns the encoded length of a value of type t at the start of
// rest, checking every length against rest. BSON.jl writes only the types
// accepted here.
func (w *walker) valueLen(t mbson.Type, rest []byte, off int) (int, error) {
	switch t {
	case mbson.TypeDouble, mbson.TypeInt64:
		if len(rest) < 8 {
			return 0, w.errAt(off, convert.ErrMalformed, "truncated %s", t)
		}
		return 8, nil
	case mbson.TypeInt32:
		if len(rest) < 4 {
			return 0, w.errAt(off, convert.ErrMalformed, "truncated int32")
		}
		return 4, nil
	case mbson.TypeBoolean:
		if len(rest) < 1 {
			return 0, w.errAt(off, convert.ErrMalformed, "truncated boolean")
		}
		if rest[0] > 1 {
			return 0, w.errAt(off, convert.ErrMalformed, "boolean byte %d", rest[0])
		}
		return 1, nil
	case mbson.TypeNull:
		return 0, nil
	case mbson.TypeString, mbson.TypeEmbeddedDocument, mbson.TypeArray, mbson.TypeBinary:
		if len(rest) < 4 {
			return 0, w.errAt(off, convert.ErrMalformed, "truncated length of %s", t)
		}
		l := int64(int32(binary.LittleEndian.Uint32(rest)))
		var total int64
		switch t {
		case mbson.TypeString:
			if l < 1 {
				return 0, w.errAt(off, convert.ErrMalformed, "string length %d", l)
			}
			total = 4 + l
		case mbson.TypeBinary:
			if l < 0 {
				return 0, w.errAt(off, convert.ErrMalformed, "binary length %d", l)
			}
			total = 5 + l
		default:
			if l < 5 {
				return 0, w.errAt(off, convert.ErrMalformed, "%s length %d", t, l)
			}
			total = l
		}
		if total > int64(len(rest)) {
			return 0, w.errAt(off, convert.ErrMalformed, "%s of %d bytes runs past its container (%d bytes left)", t, total, len(rest))
		}
		if t == mbson.TypeString && rest[total-1] != 0 {
			return 0, w.errAt(off, convert.ErrMalformed, "string without its terminating zero")
		}
		return int(total), nil
	}
	return 0, w.errAt(off, convert.ErrUnsupported, "bson type %#x, which BSON.jl never writes", byte(t))
}

// each calls fn for every element of the document or list v, in stored
// order. It checks the document's framing first with bson.Raw.Validate and
// then every element's bounds itself.
func (w *walker) each(v val, fn func(key []byte, e val) error) error {
	b := v.b
	if len(b) < 5 || int(int32(binary.LittleEndian.Uint32(b))) != len(b) {
		return w.errAt(v.off, convert.ErrMalformed, "bad document length")
	}
	if b[len(b)-1] != 0 {
		return w.errAt(v.off+len(b)-1, convert.ErrMalformed, "document without its terminating zero")
	}
	if err := mbson.Raw(b).Validate(); err != nil {
		return w.errAt(v.off, convert.ErrMalformed, "invalid document: %v", err)
	}
	end := len(b) - 1
	pos := 4
	for pos < end {
		t := mbson.Type(b[pos])
		k := bytes.IndexByte(b[pos+1:end], 0)
		if k < 0 {
			return w.errAt(v.off+pos, convert.ErrMalformed, "element key without its terminating zero")
		}
		key := b[pos+1 : pos+1+k]
		vs := pos + 1 + k + 1
		l, err := w.valueLen(t, b[vs:end], v.off+vs)
		if err != nil {
			return err
		}
		if err := fn(key, val{t: t, b: b[vs : vs+l], off: v.off + vs}); err != nil {
			return err
		}
		pos = vs + l
	}
	if pos != end {
		return w.errAt(v.off+pos, convert.ErrMalformed, "elements overrun the document")
	}
	return nil
}

// eachList is each for a BSON list, whose keys must be "0", "1", ... in
// order (which also rules out duplicate keys).
func (w *walker) eachList(v val, fn func(i int, e val) error) error {
	if v.t != mbson.TypeArray {
		return w.errAt(v.off, convert.ErrMalformed, "expected a list, found %s", v.t)
	}
	i := 0
	var buf [20]byte
	return w.each(v, func(key []byte, e val) error {
		if !bytes.Equal(key, strconv.AppendInt(buf[:0], int64(i), 10)) {
			return w.errAt(e.off, convert.ErrMalformed, "list key %q where %d belongs", key, i)
		}
		err := fn(i, e)
		i++
		return err
	})
}

// listLen counts the elements of a list.
func (w *walker) listLen(v val) (int, error) {
	n := 0
	err := w.eachList(v, func(int, val) error { n++; return nil })
	return n, err
}

// asInt reads an int32 or int64 value.
func (w *walker) asInt(v val) (int64, bool) {
	switch v.t {
	case mbson.TypeInt32:
		i, ok := v.raw().Int32OK()
		return int64(i), ok
	case mbson.TypeInt64:
		return v.raw().Int64OK()
	}
	return 0, false
}

// asString reads a string value without copying it.
func asStringBytes(v val) ([]byte, bool) {
	if v.t != mbson.TypeString || len(v.b) < 5 {
		return nil, false
	}
	return v.b[4 : len(v.b)-1], true
}

func asString(v val) (string, bool) {
	if v.t != mbson.TypeString {
		return "", false
	}
	return v.raw().StringValueOK()
}

func asBinary(v val) ([]byte, bool) {
	if v.t != mbson.TypeBinary {
		return nil, false
	}
	sub, data, ok := v.raw().BinaryOK()
	return data, ok && sub == 0
}

func asDouble(v val) (float64, bool) {
	if v.t != mbson.TypeDouble {
		return math.NaN(), false
	}
	return v.raw().DoubleOK()
}
