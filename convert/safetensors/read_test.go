package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
)

// rawFile builds a safetensors file from a header given as text (not padded)
// and the data region.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// hostileCase is one file Read must reject, with the rule it breaks.
type hostileCase struct {
	name string
	file []byte
	opts Limits
	want error
}

// hostileFiles is the hostile-safetensors test set. Each name states the
// defect.
func hostileFiles() []hostileCase {
	f32x2 := `{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`
	eight := make([]byte, 8)
	huge := binary.LittleEndian.AppendUint64(nil, ^uint64(0))
	huge = append(huge, `{}      `...)
	overLimit := binary.LittleEndian.AppendUint64(nil, DefaultMaxHeaderSize+1)
	overLimit = append(overLimit, `{}      `...)
	pastEOF := binary.LittleEndian.AppendUint64(nil, 100)
	pastEOF = append(pastEOF, `{}      `...)
	return []hostileCase{
		{name: "header-length-huge", file: huge, want: ErrHeaderTooLarge},
		{name: "header-length-over-limit", file: overLimit, want: ErrHeaderTooLarge},
		{name: "header-length-over-option", file: rawFile(`{"a":`+f32x2+`}`, eight), opts: Limits{MaxHeaderSize: 16}, want: ErrHeaderTooLarge},
		{name: "header-length-past-eof", file: pastEOF, want: ErrHeaderLength},
		{name: "file-shorter-than-8-bytes", file: []byte{2, 0, 0}, want: ErrHeaderLength},
		{name: "empty-file", file: nil, want: ErrHeaderLength},
		{name: "empty-header", file: rawFile(``, nil), want: ErrHeaderStart},
		{name: "leading-whitespace", file: rawFile(` {"a":`+f32x2+`}`, eight), want: ErrHeaderStart},
		{name: "leading-newline", file: rawFile("\n{}", nil), want: ErrHeaderStart},
		{name: "header-not-utf8", file: rawFile("{\"a\xff\":"+f32x2+"}", eight), want: ErrHeaderJSON},
		{name: "header-truncated-json", file: rawFile(`{"a":{"dtype":"F32"`, nil), want: ErrHeaderJSON},
		{name: "header-trailing-comma", file: rawFile(`{"a":`+f32x2+`,}`, eight), want: ErrHeaderJSON},
		{name: "header-junk-after-object", file: rawFile(`{"a":`+f32x2+`}x`, eight), want: ErrHeaderJSON},
		{name: "header-two-objects", file: rawFile(`{}{}`, nil), want: ErrHeaderJSON},
		{name: "header-nul-padding", file: rawFile("{}\x00\x00", nil), want: ErrHeaderJSON},
		{name: "name-lone-surrogate", file: rawFile(`{"a\ud800":`+f32x2+`}`, eight), want: ErrHeaderJSON},
		{name: "name-control-character", file: rawFile("{\"a\x01\":"+f32x2+"}", eight), want: ErrHeaderJSON},
		{name: "number-leading-zero", file: rawFile(`{"a":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}}`, eight), want: ErrHeaderJSON},
		{name: "duplicate-name", file: rawFile(`{"a":`+f32x2+`,"a":`+f32x2+`}`, eight), want: ErrDuplicateName},
		{name: "duplicate-name-by-escape", file: rawFile(`{"a":`+f32x2+`,"\u0061":`+f32x2+`}`, eight), want: ErrDuplicateName},
		{name: "duplicate-metadata", file: rawFile(`{"__metadata__":{},"__metadata__":{}}`, nil), want: ErrDuplicateName},
		{name: "duplicate-metadata-key", file: rawFile(`{"__metadata__":{"k":"1","k":"2"}}`, nil), want: ErrDuplicateName},
		{name: "duplicate-field", file: rawFile(`{"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, eight), want: ErrDuplicateName},
		{name: "name-with-nul", file: rawFile(`{"a\u0000b":`+f32x2+`}`, eight), want: ErrName},
		{name: "name-empty", file: rawFile(`{"":`+f32x2+`}`, eight), want: ErrName},
		{name: "dtype-unknown", file: rawFile(`{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}`, eight), want: ErrDType},
		{name: "dtype-lowercase", file: rawFile(`{"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}`, eight), want: ErrDType},
		{name: "dtype-f8-e8m0", file: rawFile(`{"a":{"dtype":"F8_E8M0","shape":[8],"data_offsets":[0,8]}}`, eight), want: ErrUnsupportedDType},
		{name: "dtype-f4", file: rawFile(`{"a":{"dtype":"F4","shape":[16],"data_offsets":[0,8]}}`, eight), want: ErrUnsupportedDType},
		{name: "dtype-not-string", file: rawFile(`{"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}`, eight), want: ErrHeaderSchema},
		{name: "shape-element-count-overflow", file: rawFile(`{"a":{"dtype":"U8","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}`, eight), want: ErrOverflow},
		{name: "shape-byte-length-overflow", file: rawFile(`{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}`, eight), want: ErrOverflow},
		{name: "shape-dimension-over-63-bits", file: rawFile(`{"a":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,8]}}`, eight), want: ErrOverflow},
		{name: "shape-dimension-over-64-bits", file: rawFile(`{"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,8]}}`, eight), want: ErrHeaderSchema},
		{name: "shape-negative", file: rawFile(`{"a":{"dtype":"U8","shape":[-8],"data_offsets":[0,8]}}`, eight), want: ErrHeaderSchema},
		{name: "shape-fraction", file: rawFile(`{"a":{"dtype":"U8","shape":[8.0],"data_offsets":[0,8]}}`, eight), want: ErrHeaderSchema},
		{name: "shape-exponent", file: rawFile(`{"a":{"dtype":"U8","shape":[8e0],"data_offsets":[0,8]}}`, eight), want: ErrHeaderSchema},
		{name: "shape-nested", file: rawFile(`{"a":{"dtype":"U8","shape":[[8]],"data_offsets":[0,8]}}`, eight), want: ErrHeaderSchema},
		{name: "shape-not-array", file: rawFile(`{"a":{"dtype":"U8","shape":8,"data_offsets":[0,8]}}`, eight), want: ErrHeaderSchema},
		{name: "offsets-three", file: rawFile(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8,8]}}`, eight), want: ErrHeaderSchema},
		{name: "offsets-one", file: rawFile(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[8]}}`, eight), want: ErrHeaderSchema},
		{name: "field-missing", file: rawFile(`{"a":{"dtype":"U8","shape":[8]}}`, eight), want: ErrHeaderSchema},
		{name: "field-unknown", file: rawFile(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8],"x":1}}`, eight), want: ErrHeaderSchema},
		{name: "entry-not-object", file: rawFile(`{"a":[1]}`, nil), want: ErrHeaderSchema},
		{name: "entry-deeply-nested", file: rawFile(`{"a":`+strings.Repeat("[", 100000)+`}`, nil), want: ErrHeaderSchema},
		{name: "metadata-not-object", file: rawFile(`{"__metadata__":"x"}`, nil), want: ErrHeaderSchema},
		{name: "metadata-value-not-string", file: rawFile(`{"__metadata__":{"k":1}}`, nil), want: ErrHeaderSchema},
		{name: "metadata-value-nested", file: rawFile(`{"__metadata__":{"k":{"x":"y"}}}`, nil), want: ErrHeaderSchema},
		{name: "size-mismatch", file: rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, eight[:4]), want: ErrSize},
		{name: "offsets-begin-after-end", file: rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, eight), want: ErrOffsets},
		{name: "offsets-past-eof", file: rawFile(`{"a":`+f32x2+`}`, eight[:4]), want: ErrOffsets},
		{name: "offsets-far-past-eof", file: rawFile(`{"a":{"dtype":"U8","shape":[9000000000000000000],"data_offsets":[0,9000000000000000000]}}`, eight), want: ErrOffsets},
		{name: "offsets-overlapping", file: rawFile(`{"a":`+f32x2+`,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), want: ErrOverlap},
		{name: "offsets-duplicated", file: rawFile(`{"a":`+f32x2+`,"b":`+f32x2+`}`, eight), want: ErrOverlap},
		{name: "offsets-empty-inside-tensor", file: rawFile(`{"a":`+f32x2+`,"b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}`, eight), want: ErrOverlap},
		{name: "hole-between-tensors", file: rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, make([]byte, 12)), want: ErrHole},
		{name: "hole-at-start", file: rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), want: ErrHole},
		{name: "trailing-bytes", file: rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, eight[:6]), want: ErrTrailing},
		{name: "trailing-bytes-no-tensors", file: rawFile(`{}`, eight), want: ErrTrailing},
		{name: "too-many-tensors", file: rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), opts: Limits{MaxTensors: 1}, want: ErrOverLimit},
		{name: "rank-over-limit", file: rawFile(`{"a":{"dtype":"U8","shape":[`+strings.Repeat("1,", 16)+`8],"data_offsets":[0,8]}}`, eight), want: ErrOverLimit},
		{name: "name-over-limit", file: rawFile(`{"`+strings.Repeat("n", 1025)+`":`+f32x2+`}`, eight), want: ErrOverLimit},
	}
}

func TestReadHostile(t *testing.T) {
	for _, c := range hostileFiles() {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(c.file, WithLimits(c.opts))
			if !errors.Is(err, c.want) {
				t.Fatalf("Read: got %v, want %v", err, c.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Read: %T is not *Error", err)
			}
			if !errors.Is(err, convert.ErrMalformed) && !errors.Is(err, convert.ErrLimit) &&
				!errors.Is(err, convert.ErrUnsupported) {
				t.Fatalf("Read: %v wraps none of the convert errors", err)
			}
			// The header-only path over an io.ReaderAt agrees.
			_, err = ReadHeader(bytes.NewReader(c.file), int64(len(c.file)), c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("ReadHeader: got %v, want %v", err, c.want)
			}
		})
	}
}

func TestReadValid(t *testing.T) {
	cases := []struct {
		name   string
		file   []byte
		names  []string
		shapes [][]int64
		meta   map[string]string
	}{
		{name: "empty", file: rawFile(`{}      `, nil)},
		{name: "metadata-null", file: rawFile(`{"__metadata__":null}`, nil)},
		{name: "metadata", file: rawFile(`{"__metadata__":{"format":"pt","x":"\u00e9\n"}}`, nil),
			meta: map[string]string{"format": "pt", "x": "é\n"}},
		{name: "whitespace-inside-and-after", file: rawFile("{ \"a\" :\t{\"dtype\" : \"U8\",\n\"shape\":[ 2 ] ,\"data_offsets\":[0 ,2]} }\r\n  ", []byte{1, 2}),
			names: []string{"a"}, shapes: [][]int64{{2}}},
		{name: "header-order-not-data-order", file: rawFile(`{"z":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}),
			names: []string{"z", "a"}, shapes: [][]int64{{1}, {1}}},
		{name: "scalar-and-empty", file: rawFile(`{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"e2":{"dtype":"F64","shape":[0,3],"data_offsets":[4,4]},"e1":{"dtype":"F64","shape":[3,0],"data_offsets":[4,4]}}`, make([]byte, 4)),
			names: []string{"s", "e1", "e2"}, shapes: [][]int64{{}, {3, 0}, {0, 3}}},
		{name: "escaped-names", file: rawFile(`{"a\/b\"c\\\u00e9\ud83d\ude00":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, []byte{1}),
			names: []string{"a/b\"c\\é😀"}, shapes: [][]int64{{1}}},
		{name: "huge-empty-tensor", file: rawFile(`{"e":{"dtype":"F64","shape":[0,9223372036854775807],"data_offsets":[0,0]}}`, nil),
			names: []string{"e"}, shapes: [][]int64{{0, 9223372036854775807}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Read(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if m.SourceFormat != SourceFormat {
				t.Errorf("SourceFormat %q", m.SourceFormat)
			}
			var names []string
			var shapes [][]int64
			for _, tn := range m.Tensors {
				names = append(names, tn.Name)
				shapes = append(shapes, tn.Shape)
			}
			if !slices.Equal(names, c.names) {
				t.Errorf("names %q, want %q", names, c.names)
			}
			if !slices.EqualFunc(shapes, c.shapes, slices.Equal) {
				t.Errorf("shapes %v, want %v", shapes, c.shapes)
			}
			if len(m.Metadata) != len(c.meta) {
				t.Errorf("metadata %v, want %v", m.Metadata, c.meta)
			}
			for k, v := range c.meta {
				if m.Metadata[k] != v {
					t.Errorf("metadata %q = %q, want %q", k, m.Metadata[k], v)
				}
			}
		})
	}
}

// TestReadAliases checks that tensor data is a view of the input, and that
// appending to one tensor's data cannot clobber the next.
func TestReadAliases(t *testing.T) {
	file := rawFile(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, []byte{1, 2, 3, 4})
	m, err := Read(file)
	if err != nil {
		t.Fatal(err)
	}
	a := m.Tensors[0].Data
	if &a[0] != &file[len(file)-4] {
		t.Error("tensor data is a copy")
	}
	_ = append(a, 99)
	if file[len(file)-2] != 3 {
		t.Error("append to a tensor's data wrote into the next tensor")
	}
}

// TestWriteRustVectors checks Write against files the Rust writer's own
// tests pin byte for byte (safetensors/src/tensor.rs: test_serialization,
// test_empty, test_serialization_forced_alignement).
func TestWriteRustVectors(t *testing.T) {
	f32s := func(v ...float32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, mathFloat32bits(x))
		}
		return b
	}
	data := f32s(0, 1, 2, 3, 4, 5)
	cases := []struct {
		name    string
		tensors []convert.Tensor
		meta    map[string]string
		want    []byte
	}{
		{"serialization", []convert.Tensor{{Name: "attn.0", DType: format.F32, Shape: []int64{1, 2, 3}, Data: data}}, nil,
			rawFile(`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, data)},
		{"empty", nil, nil, rawFile(`{}      `, nil)},
		{"empty-metadata", nil, map[string]string{"framework": "pt"}, rawFile(`{"__metadata__":{"framework":"pt"}}     `, nil)},
		{"forced-alignment", []convert.Tensor{{Name: "attn0", DType: format.F32, Shape: []int64{1, 1, 2, 3}, Data: data}}, nil,
			rawFile(`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `, data)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, c.tensors, c.meta); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), c.want) {
				t.Fatalf("got\n%q\nwant\n%q", buf.Bytes(), c.want)
			}
		})
	}
}

// allDTypeTensors returns synthetic tensors of every dtype safetensors and
// safeweights share, with random bytes, and odd names.
func allDTypeTensors(seed uint64) []convert.Tensor {
	r := rand.New(rand.NewPCG(seed, 1))
	var ts []convert.Tensor
	names := []string{"w", "layers.0.weight", "é/\"\\\n\u007f", "a b", "__x__"}
	codes := slices.Sorted(maps.Keys(dtypes))
	for i, code := range codes {
		d := dtypes[code]
		shape := []int64{int64(r.IntN(4) + 1), int64(r.IntN(5))}
		if i%5 == 0 {
			shape = []int64{}
		}
		n := int64(d.Size())
		for _, s := range shape {
			n *= s
		}
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		ts = append(ts, convert.Tensor{Name: names[i%len(names)] + "." + code, DType: d, Shape: shape, Data: data})
	}
	return ts
}

func TestWriteReadRoundTrip(t *testing.T) {
	for seed := uint64(0); seed < 8; seed++ {
		in := allDTypeTensors(seed)
		meta := map[string]string{"format": "pt", "note": "<&>\u2028\t\"", "": "empty key"}
		var buf bytes.Buffer
		if err := Write(&buf, in, meta); err != nil {
			t.Fatal(err)
		}
		file := buf.Bytes()
		m, err := Read(file)
		if err != nil {
			t.Fatal(err)
		}
		compareTensors(t, in, m.Tensors)
		if len(m.Metadata) != len(meta) {
			t.Fatalf("metadata %v", m.Metadata)
		}
		for k, v := range meta {
			if m.Metadata[k] != v {
				t.Fatalf("metadata %q = %q, want %q", k, m.Metadata[k], v)
			}
		}
		// Every tensor is aligned to its element size, as the Rust writer
		// guarantees, and the header is padded to 8 bytes.
		h, err := ParseHeader(file, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if h.DataOffset%8 != 0 {
			t.Errorf("data offset %d not a multiple of 8", h.DataOffset)
		}
		for _, ti := range h.Tensors {
			if ti.Begin%int64(ti.DType.Size()) != 0 {
				t.Errorf("tensor %q at %d not aligned to %d", ti.Name, ti.Begin, ti.DType.Size())
			}
		}
		// Writing what was read gives the same bytes.
		var again bytes.Buffer
		if err := Write(&again, m.Tensors, m.Metadata); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), file) {
			t.Fatal("rewrite differs")
		}
	}
}

// compareTensors checks that got holds the tensors of want (any order):
// same names, dtypes, shapes and bytes.
func compareTensors(t *testing.T, want, got []convert.Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	byName := make(map[string]convert.Tensor)
	for _, g := range got {
		byName[g.Name] = g
	}
	for _, w := range want {
		g, ok := byName[w.Name]
		switch {
		case !ok:
			t.Fatalf("tensor %q missing", w.Name)
		case g.DType != w.DType:
			t.Fatalf("tensor %q dtype %v, want %v", w.Name, g.DType, w.DType)
		case !slices.Equal(g.Shape, w.Shape):
			t.Fatalf("tensor %q shape %v, want %v", w.Name, g.Shape, w.Shape)
		case !bytes.Equal(g.Data, w.Data):
			t.Fatalf("tensor %q data differs", w.Name)
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	cases := []struct {
		name string
		t    convert.Tensor
	}{
		{"c128", convert.Tensor{Name: "c", DType: format.C128, Shape: []int64{1}, Data: make([]byte, 16)}},
		{"short-data", convert.Tensor{Name: "c", DType: format.F32, Shape: []int64{2}, Data: make([]byte, 4)}},
		{"empty-name", convert.Tensor{Name: "", DType: format.U8, Shape: []int64{1}, Data: make([]byte, 1)}},
		{"metadata-name", convert.Tensor{Name: "__metadata__", DType: format.U8, Shape: []int64{1}, Data: make([]byte, 1)}},
		{"nul-name", convert.Tensor{Name: "a\x00", DType: format.U8, Shape: []int64{1}, Data: make([]byte, 1)}},
		{"negative-dim", convert.Tensor{Name: "n", DType: format.U8, Shape: []int64{-1}, Data: nil}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Write(&bytes.Buffer{}, []convert.Tensor{c.t}, nil)
			if !errors.Is(err, ErrExport) {
				t.Fatalf("got %v, want ErrExport", err)
			}
		})
	}
	dup := []convert.Tensor{{Name: "a", DType: format.U8, Shape: []int64{0}}, {Name: "a", DType: format.U8, Shape: []int64{0}}}
	if err := Write(&bytes.Buffer{}, dup, nil); !errors.Is(err, ErrExport) {
		t.Fatalf("duplicate: got %v, want ErrExport", err)
	}
}

func TestOptionsInvalid(t *testing.T) {
	file := rawFile(`{}      `, nil)
	for _, o := range []Limits{{MaxHeaderSize: -1}, {MaxTensors: -1}, {MaxRank: 65}, {MaxNameLength: -1}, {MaxShards: -1}} {
		if _, err := Read(file, WithLimits(o)); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestDetect(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, allDTypeTensors(1), nil); err != nil {
		t.Fatal(err)
	}
	yes := [][]byte{buf.Bytes(), rawFile(`{}      `, nil), rawFile(`{"__metadata__":{}}`, nil)}
	no := [][]byte{nil, []byte("\x93NUMPY\x01\x00v\x00{'descr'"), []byte("SAFEWEIGHTS-preamble"),
		rawFile(` {}`, nil), rawFile(`[]`, nil), binary.LittleEndian.AppendUint64(nil, 1<<40), []byte("\x89HDF\r\n\x1a\n\x00\x00")}
	for _, b := range yes {
		if !Detect(bytes.NewReader(b), int64(len(b))) {
			t.Errorf("not detected: %q", b[:min(len(b), 24)])
		}
	}
	for _, b := range no {
		if Detect(bytes.NewReader(b), int64(len(b))) {
			t.Errorf("detected: %q", b)
		}
	}
}
