package safetensors

import (
	"math"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a strict JSON tokenizer over one header. encoding/json is not
// used because it keeps the last of duplicate keys without a word, turns
// invalid UTF-8 and lone surrogate escapes into U+FFFD, and decodes values of
// any depth; this scanner reads only the fixed shapes of the safetensors
// schema, so nesting is bounded by the schema itself, and skipping an
// unknown value (index files only) is bounded by an explicit depth.
//
// The input must already be valid UTF-8.
type scanner struct {
	b    []byte
	pos  int
	base int64 // file offset of b[0], for error messages
}

// maxSkipDepth bounds the nesting of values the scanner skips.
const maxSkipDepth = 64

func (s *scanner) off() int64 { return s.base + int64(s.pos) }

func (s *scanner) syntax(reason string) *Error {
	return errorf(ErrHeaderJSON, s.off(), "", reason)
}

func (s *scanner) schema(tensor, reason string) *Error {
	return errorf(ErrHeaderSchema, s.off(), tensor, reason)
}

// ws skips JSON whitespace.
func (s *scanner) ws() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos >= len(s.b) {
		return 0
	}
	return s.b[s.pos]
}

// expect consumes c after optional whitespace.
func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		if s.pos >= len(s.b) {
			return s.syntax("unexpected end of header, want " + quoteByte(c))
		}
		return s.syntax("unexpected " + quoteByte(s.b[s.pos]) + ", want " + quoteByte(c))
	}
	s.pos++
	return nil
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return "'" + string(rune(c)) + "'"
	}
	return "byte 0x" + string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15])
}

// next reports whether another member or element follows: it consumes a ','
// and returns true, or consumes the closing delimiter and returns false.
func (s *scanner) next(close byte) (bool, error) {
	switch s.peek() {
	case ',':
		s.pos++
		return true, nil
	case close:
		s.pos++
		return false, nil
	}
	if s.pos >= len(s.b) {
		return false, s.syntax("unexpected end of header")
	}
	return false, s.syntax("unexpected " + quoteByte(s.b[s.pos]) + ", want ',' or " + quoteByte(close))
}

// open consumes an opening delimiter and reports whether the container is
// empty (in which case the closing delimiter is consumed too).
func (s *scanner) open(open, close byte) (empty bool, err error) {
	if err := s.expect(open); err != nil {
		return false, err
	}
	if s.peek() == close {
		s.pos++
		return true, nil
	}
	return false, nil
}

// str reads a string token.
func (s *scanner) str() (string, error) {
	if err := s.expect('"'); err != nil {
		return "", err
	}
	start := s.pos
	// Fast path: no escapes.
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		switch {
		case c == '"':
			v := string(s.b[start:s.pos])
			s.pos++
			return v, nil
		case c == '\\':
			return s.strSlow(start)
		case c < 0x20:
			return "", s.syntax("control character in string")
		}
		s.pos++
	}
	return "", s.syntax("unterminated string")
}

func (s *scanner) strSlow(start int) (string, error) {
	var sb strings.Builder
	sb.Write(s.b[start:s.pos])
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		switch {
		case c == '"':
			s.pos++
			return sb.String(), nil
		case c < 0x20:
			return "", s.syntax("control character in string")
		case c != '\\':
			sb.WriteByte(c)
			s.pos++
			continue
		}
		// An escape.
		if s.pos+1 >= len(s.b) {
			return "", s.syntax("unterminated string")
		}
		e := s.b[s.pos+1]
		s.pos += 2
		switch e {
		case '"', '\\', '/':
			sb.WriteByte(e)
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return "", s.syntax("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// Only a high surrogate followed by an escaped low
				// surrogate makes a character; anything else is an error,
				// as in serde_json, rather than U+FFFD.
				if r >= 0xdc00 || s.pos+1 >= len(s.b) || s.b[s.pos] != '\\' || s.b[s.pos+1] != 'u' {
					return "", s.syntax("lone surrogate in \\u escape")
				}
				s.pos += 2
				r2, ok := s.hex4()
				if !ok {
					return "", s.syntax("invalid \\u escape")
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", s.syntax("lone surrogate in \\u escape")
				}
			}
			sb.WriteRune(r)
		default:
			return "", s.syntax("invalid escape")
		}
	}
	return "", s.syntax("unterminated string")
}

func (s *scanner) hex4() (rune, bool) {
	if len(s.b)-s.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.pos : s.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.pos += 4
	return r, true
}

// uint reads a non-negative integer that fits in an int64. A number with a
// sign, a fraction or an exponent is valid JSON but not a size: it is a
// schema error, as it is for the Rust loader, which reads these as usize.
func (s *scanner) uint(tensor, what string) (int64, error) {
	s.ws()
	start := s.pos
	var v uint64
	over := false
	for s.pos < len(s.b) && s.b[s.pos] >= '0' && s.b[s.pos] <= '9' {
		d := uint64(s.b[s.pos] - '0')
		if v > (math.MaxUint64-d)/10 {
			over = true
		} else {
			v = v*10 + d
		}
		s.pos++
	}
	n := s.pos - start
	if n == 0 {
		if s.pos < len(s.b) && (s.b[s.pos] == '-' || s.b[s.pos] == '"' || s.b[s.pos] == 't' ||
			s.b[s.pos] == 'f' || s.b[s.pos] == 'n' || s.b[s.pos] == '[' || s.b[s.pos] == '{') {
			return 0, s.schema(tensor, what+" is not a non-negative integer")
		}
		return 0, s.syntax(what + ": want a number")
	}
	if n > 1 && s.b[start] == '0' {
		return 0, s.syntax(what + ": number with a leading zero")
	}
	if s.pos < len(s.b) {
		switch s.b[s.pos] {
		case '.', 'e', 'E':
			return 0, s.schema(tensor, what+" is not an integer")
		}
	}
	if over {
		// Does not fit in a usize: the Rust loader fails to parse it.
		return 0, s.schema(tensor, what+" does not fit in 64 bits")
	}
	if v > math.MaxInt64 {
		return 0, errorf(ErrOverflow, s.base+int64(start), tensor, what+" does not fit in 63 bits")
	}
	return int64(v), nil
}

// skip consumes one value of any type, nested at most depth levels.
func (s *scanner) skip(depth int) error {
	switch c := s.peek(); {
	case c == '"':
		_, err := s.str()
		return err
	case c == '{' || c == '[':
		if depth <= 0 {
			return errorf(ErrHeaderSchema, s.off(), "", "values nested too deeply")
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		empty, err := s.open(c, closer)
		if err != nil || empty {
			return err
		}
		for {
			if c == '{' {
				if _, err := s.str(); err != nil {
					return err
				}
				if err := s.expect(':'); err != nil {
					return err
				}
			}
			if err := s.skip(depth - 1); err != nil {
				return err
			}
			more, err := s.next(closer)
			if err != nil {
				return err
			}
			if !more {
				return nil
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		_, err := s.number()
		return err
	case c == 0 && s.pos >= len(s.b):
		return s.syntax("unexpected end of header")
	default:
		return s.syntax("unexpected " + quoteByte(c))
	}
}

func (s *scanner) literal(word string) error {
	s.ws()
	if len(s.b)-s.pos < len(word) || string(s.b[s.pos:s.pos+len(word)]) != word {
		return s.syntax("invalid literal")
	}
	s.pos += len(word)
	return nil
}

// number consumes a JSON number of any form and returns its text.
func (s *scanner) number() (string, error) {
	s.ws()
	start := s.pos
	if s.pos < len(s.b) && s.b[s.pos] == '-' {
		s.pos++
	}
	digits := func() int {
		n := 0
		for s.pos < len(s.b) && s.b[s.pos] >= '0' && s.b[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	intStart := s.pos
	n := digits()
	if n == 0 || (n > 1 && s.b[intStart] == '0') {
		return "", s.syntax("invalid number")
	}
	if s.pos < len(s.b) && s.b[s.pos] == '.' {
		s.pos++
		if digits() == 0 {
			return "", s.syntax("invalid number")
		}
	}
	if s.pos < len(s.b) && (s.b[s.pos] == 'e' || s.b[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.b) && (s.b[s.pos] == '+' || s.b[s.pos] == '-') {
			s.pos++
		}
		if digits() == 0 {
			return "", s.syntax("invalid number")
		}
	}
	return string(s.b[start:s.pos]), nil
}

// end checks that only whitespace is left.
func (s *scanner) end() error {
	s.ws()
	if s.pos != len(s.b) {
		return s.syntax("data after the header object")
	}
	return nil
}
