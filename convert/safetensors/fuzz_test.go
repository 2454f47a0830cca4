package safetensors

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/safeweights/safeweights/convert"
)

func mathFloat32bits(f float32) uint32 { return math.Float32bits(f) }

// FuzzRead feeds arbitrary bytes to Read. A rejected file gets a typed
// error; an accepted one agrees with the header-only reader and survives a
// rewrite unchanged in names, dtypes, shapes, bytes and metadata.
func FuzzRead(f *testing.F) {
	for _, c := range hostileFiles() {
		if len(c.file) < 1<<16 {
			f.Add(c.file)
		}
	}
	for seed := uint64(0); seed < 3; seed++ {
		var buf bytes.Buffer
		if err := Write(&buf, allDTypeTensors(seed), map[string]string{"format": "pt"}); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(rawFile(`{"__metadata__":null,"a\ud83d\ude00":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}`, []byte{7}))
	f.Fuzz(func(t *testing.T, file []byte) {
		lim := Limits{MaxTensors: 1 << 12}
		opts := WithLimits(lim)
		m, err := Read(file, opts)
		_, herr := ReadHeader(bytes.NewReader(file), int64(len(file)), lim)
		if (err == nil) != (herr == nil) {
			t.Fatalf("Read: %v; ReadHeader: %v", err, herr)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not *Error: %v", err, err)
			}
			if !errors.Is(err, convert.ErrMalformed) && !errors.Is(err, convert.ErrLimit) &&
				!errors.Is(err, convert.ErrUnsupported) {
				t.Fatalf("%v wraps none of the convert errors", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := Write(&buf, m.Tensors, m.Metadata); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		m2, err := Read(buf.Bytes(), opts)
		if err != nil {
			t.Fatalf("reading the rewrite: %v", err)
		}
		compareTensors(t, m.Tensors, m2.Tensors)
		if len(m.Metadata) != len(m2.Metadata) {
			t.Fatal("metadata changed")
		}
		for k, v := range m.Metadata {
			if m2.Metadata[k] != v {
				t.Fatal("metadata changed")
			}
		}
	})
}
