package bson

import (
	"bytes"

	mbson "go.mongodb.org/mongo-driver/v2/bson"

	"github.com/safeweights/safeweights/convert"
)

// The keys of BSON.jl's tagged documents.
const (
	kTag = iota
	kType
	kData
	kSize
	kName
	kParams
	kRef
	kPath
	kTypename
	kBody
	kVar
	nKeys
)

var keyNames = [nKeys]string{"tag", "type", "data", "size", "name", "params", "ref", "path", "typename", "body", "var"}

// The tags BSON.jl writes.
type tag uint8

const (
	tagNone tag = iota
	tagStruct
	tagDatatype
	tagArray
	tagBackref
	tagTuple
	tagSymbol
	tagSvec
	tagRef
	tagUnionall
	tagBottom
	tagAnonymous
)

var tagNames = map[string]tag{
	"struct": tagStruct, "datatype": tagDatatype, "array": tagArray, "backref": tagBackref,
	"tuple": tagTuple, "symbol": tagSymbol, "svec": tagSvec, "ref": tagRef,
	"unionall": tagUnionall, "jl_bottom_type": tagBottom, "jl_anonymous": tagAnonymous,
}

// The keys each tag has (all of them required).
var tagKeys = map[tag]uint16{
	tagStruct:    1<<kType | 1<<kData,
	tagDatatype:  1<<kName | 1<<kParams,
	tagArray:     1<<kType | 1<<kSize | 1<<kData,
	tagBackref:   1 << kRef,
	tagTuple:     1 << kData,
	tagSymbol:    1 << kName,
	tagSvec:      1 << kData,
	tagRef:       1 << kPath,
	tagUnionall:  1<<kBody | 1<<kVar,
	tagBottom:    0,
	tagAnonymous: 1<<kTypename | 1<<kParams,
}

// tdoc is a tagged document, its keys in any stored order.
type tdoc struct {
	tag tag
	f   [nKeys]val
	off int
}

// parseTagged reads a document. It returns tagged false for a document
// without a "tag" key (a Dict{Symbol} that BSON.jl wrote as a plain
// document). A tagged document must have exactly its tag's keys.
func (w *walker) parseTagged(v val) (td tdoc, tagged bool, err error) {
	td.off = v.off
	var has uint16
	other := false
	err = w.each(v, func(key []byte, e val) error {
		for i := range keyNames {
			if string(key) == keyNames[i] {
				if has&(1<<i) != 0 {
					return w.errAt(e.off, convert.ErrMalformed, "duplicate key %q", key)
				}
				has |= 1 << i
				td.f[i] = e
				return nil
			}
		}
		other = true
		return nil
	})
	if err != nil || has&(1<<kTag) == 0 {
		return td, false, err
	}
	ts, ok := asStringBytes(td.f[kTag])
	if !ok {
		return td, false, w.errAt(td.f[kTag].off, convert.ErrMalformed, "tag is not a string")
	}
	t, ok := tagNames[string(ts)]
	if !ok {
		return td, false, w.errAt(td.f[kTag].off, convert.ErrUnsupported, "unknown tag %q", ts)
	}
	td.tag = t
	want := tagKeys[t] | 1<<kTag
	if other || has != want {
		return td, false, w.errAt(v.off, convert.ErrMalformed, "%s document with keys %s, want %s", ts, keyList(has, other), keyList(want, false))
	}
	return td, true, nil
}

func keyList(has uint16, other bool) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range keyNames {
		if has&(1<<i) != 0 {
			if b.Len() > 1 {
				b.WriteByte(' ')
			}
			b.WriteString(keyNames[i])
		}
	}
	if other {
		b.WriteString(" ...")
	}
	b.WriteByte(']')
	return b.String()
}

// isDoc reports whether v is an embedded document.
func isDoc(v val) bool { return v.t == mbson.TypeEmbeddedDocument }
