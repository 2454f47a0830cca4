package bson

import (
	"fmt"
	"strconv"
	"strings"
)

// Error is a problem found in a BSON.jl file. It wraps one of convert's
// sentinel errors; test it with errors.Is.
type Error struct {
	// Offset is the byte offset in the file of the value at fault.
	Offset int64
	// Path is the document path of that value, such as
	// "model.data[0].data[1]"; "->_backrefs[3]" marks a followed backref.
	Path string
	// Msg says what is wrong.
	Msg string
	// Err is the kind of error: convert.ErrMalformed, convert.ErrLimit,
	// convert.ErrUnsupported, convert.ErrHasCode, convert.ErrNoWeights or
	// convert.ErrNameClash.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("bson: ")
	b.WriteString(e.Msg)
	b.WriteString(" at offset ")
	b.WriteString(strconv.FormatInt(e.Offset, 10))
	if e.Path != "" {
		b.WriteString(" (")
		b.WriteString(e.Path)
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// seg is one step of a document path.
type seg struct {
	key string // document key; empty for a list index or a backref
	idx int    // list index (0-based, as stored)
	br  int    // followed backref (1-based), or 0
}

func renderPath(p []seg) string {
	var b strings.Builder
	for _, s := range p {
		switch {
		case s.br != 0:
			b.WriteString("->_backrefs[")
			b.WriteString(strconv.Itoa(s.br - 1))
			b.WriteString("]")
		case s.key != "":
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		default:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.idx))
			b.WriteByte(']')
		}
	}
	return b.String()
}

func (w *walker) errAt(off int, kind error, format string, args ...any) error {
	return &Error{Offset: int64(off), Path: renderPath(w.phys), Msg: fmt.Sprintf(format, args...), Err: kind}
}
