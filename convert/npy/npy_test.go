package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/format"
)

// parsed is what a reader recovers from a .npy header.
type parsed struct {
	major   byte
	descr   string
	fortran bool
	shape   []int64
	dataOff int
}

var dictRE = regexp.MustCompile(`^\{'descr': '([<>|][a-zA-Z]+[0-9]*)', 'fortran_order': (True|False), 'shape': \(([0-9, ]*)\), \} *\n$`)

// parseHeader reads a .npy header back the way numpy.lib.format does in
// spirit: magic, version, length, then a dict literal with a shape tuple.
func parseHeader(t *testing.T, b []byte) parsed {
	t.Helper()
	if !bytes.HasPrefix(b, []byte(Magic)) || len(b) < 10 {
		t.Fatalf("no magic: %q", b)
	}
	p := parsed{major: b[6]}
	if b[7] != 0 {
		t.Fatalf("minor version %d", b[7])
	}
	var hlen, start int
	switch p.major {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:])), 10
	case 2:
		hlen, start = int(binary.LittleEndian.Uint32(b[8:])), 12
	default:
		t.Fatalf("version %d", p.major)
	}
	if start+hlen > len(b) {
		t.Fatalf("header length %d past the file", hlen)
	}
	p.dataOff = start + hlen
	if p.dataOff%64 != 0 {
		t.Errorf("data at %d, not a multiple of 64", p.dataOff)
	}
	m := dictRE.FindSubmatch(b[start:p.dataOff])
	if m == nil {
		t.Fatalf("header dict %q", b[start:p.dataOff])
	}
	p.descr = string(m[1])
	p.fortran = string(m[2]) == "True"
	tuple := strings.TrimSpace(string(m[3]))
	p.shape = []int64{}
	if tuple != "" {
		parts := strings.Split(tuple, ", ")
		if len(parts) == 1 {
			// A one-element tuple must be written (n,).
			if !strings.HasSuffix(parts[0], ",") {
				t.Fatalf("one-element tuple without comma: %q", tuple)
			}
			parts[0] = strings.TrimSuffix(parts[0], ",")
		}
		for _, s := range parts {
			d, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("shape %q: %v", tuple, err)
			}
			p.shape = append(p.shape, d)
		}
	}
	return p
}

// TestHeaderNumpyBytes pins headers to what numpy.save writes (numpy 1.x and
// 2.x: 64-byte alignment and 21 digits of room for the first dimension).
func TestHeaderNumpyBytes(t *testing.T) {
	cases := []struct {
		dt    format.DType
		shape []int64
		dict  string
	}{
		{format.F32, []int64{2, 3}, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
		{format.F64, []int64{5}, "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }"},
		{format.Bool, []int64{}, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }"},
		{format.C64, []int64{123456, 0}, "{'descr': '<c8', 'fortran_order': False, 'shape': (123456, 0), }"},
	}
	for _, c := range cases {
		h, err := Header(c.dt, c.shape)
		if err != nil {
			t.Fatal(err)
		}
		want := c.dict
		if len(c.shape) > 0 {
			want += strings.Repeat(" ", 21-len(strconv.FormatInt(c.shape[0], 10)))
		}
		prefix := 10
		total := prefix + len(want) + 1
		want += strings.Repeat(" ", 64-total%64) + "\n"
		got := string(h[10:])
		if got != want {
			t.Errorf("%v %v: dict\n%q\nwant\n%q", c.dt, c.shape, got, want)
		}
		if len(h)%64 != 0 {
			t.Errorf("header of %d bytes", len(h))
		}
	}
	// The (2, 3) float32 header numpy writes is 128 bytes with length 118.
	h, _ := Header(format.F32, []int64{2, 3})
	if len(h) != 128 || !bytes.Equal(h[:10], []byte("\x93NUMPY\x01\x00v\x00")) {
		t.Errorf("prefix %q, length %d", h[:10], len(h))
	}
}

func TestWriteEveryDType(t *testing.T) {
	want := map[format.DType]string{
		format.F64: "<f8", format.F32: "<f4", format.F16: "<f2", format.BF16: "<u2",
		format.F8E4M3: "|u1", format.F8E5M2: "|u1",
		format.I64: "<i8", format.I32: "<i4", format.I16: "<i2", format.I8: "|i1",
		format.U64: "<u8", format.U32: "<u4", format.U16: "<u2", format.U8: "|u1",
		format.Bool: "|b1", format.C64: "<c8", format.C128: "<c16",
	}
	for _, dt := range format.DTypes() {
		for _, shape := range [][]int64{{}, {3}, {2, 0}, {2, 3, 4}} {
			n := dt.Size()
			for _, d := range shape {
				n *= int(d)
			}
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(i*7 + 1)
			}
			var buf bytes.Buffer
			if err := Write(&buf, dt, shape, data); err != nil {
				t.Fatal(err)
			}
			p := parseHeader(t, buf.Bytes())
			if p.descr != want[dt] || p.fortran || !slices.Equal(p.shape, shape) || p.major != 1 {
				t.Errorf("%v %v: got %+v", dt, shape, p)
			}
			if !bytes.Equal(buf.Bytes()[p.dataOff:], data) {
				t.Errorf("%v %v: data differs", dt, shape)
			}
			_, exact, _ := Descr(dt)
			if exact != (dt != format.BF16 && dt != format.F8E4M3 && dt != format.F8E5M2) {
				t.Errorf("%v: exact %v", dt, exact)
			}
		}
	}
}

func TestHeaderVersion2(t *testing.T) {
	shape := make([]int64, 4000)
	for i := range shape {
		shape[i] = 1_000_000_000_000_000_000
	}
	h, err := Header(format.U8, shape)
	if err != nil {
		t.Fatal(err)
	}
	p := parseHeader(t, h)
	if p.major != 2 || !slices.Equal(p.shape, shape) {
		t.Fatalf("version %d, rank %d", p.major, len(p.shape))
	}
}

func TestWriteRefuses(t *testing.T) {
	cases := []struct {
		name  string
		dt    format.DType
		shape []int64
		data  []byte
		want  error
	}{
		{"short-data", format.F32, []int64{2}, make([]byte, 4), ErrShape},
		{"long-data", format.F32, []int64{1}, make([]byte, 8), ErrShape},
		{"negative", format.U8, []int64{-1}, nil, ErrShape},
		{"overflow", format.F64, []int64{1 << 62, 4}, nil, ErrShape},
		{"bad-dtype", format.DType(0), []int64{1}, make([]byte, 1), ErrDType},
		{"bad-dtype-high", format.DType(200), []int64{1}, make([]byte, 1), ErrDType},
	}
	for _, c := range cases {
		if err := Write(&bytes.Buffer{}, c.dt, c.shape, c.data); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if err := WriteFrom(&bytes.Buffer{}, format.F32, []int64{4}, bytes.NewReader(make([]byte, 15))); !errors.Is(err, ErrShape) {
		t.Errorf("short reader: got %v", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.npy")
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	if err := WriteFile(path, format.I32, []int64{2}, data); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := parseHeader(t, b)
	if p.descr != "<i4" || !bytes.Equal(b[p.dataOff:], data) {
		t.Fatalf("%+v", p)
	}
	if err := WriteFile(filepath.Join(dir, "bad.npy"), format.I32, []int64{3}, data); !errors.Is(err, ErrShape) {
		t.Fatalf("got %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}
