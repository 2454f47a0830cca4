package bson

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func FuzzRead(f *testing.F) {
	f.Add(synthDense())
	f.Add(anonFile())
	f.Add(encode(D{{"model", dense(cuArray(), cuArray(), fn("NNlib", "relu"))}}))
	f.Add(encode(D{{"x", br(1)}, {"_backrefs", A{tup(br(2)), tup(br(1))}}}))
	f.Add(encode(D{{"nt", strct(dt(path("Core", "NamedTuple"), tup(sym("a")), dt(path("Core", "Tuple"))), f32arr(3, 1))}}))
	f.Add(deepList(100))
	if dir := fixtureDirOrEmpty(); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*.bson"))
		for _, p := range files {
			if st, err := os.Stat(p); err == nil && st.Size() < 300<<10 {
				if b, err := os.ReadFile(p); err == nil {
					f.Add(b)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Read(data, Options{Limits: Limits{MaxValues: 1 << 16}})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not a *bson.Error: %v", err, err)
			}
			return
		}
		names := map[string]bool{}
		for _, x := range m.Tensors {
			if !within(x.Data, data) {
				t.Fatalf("%s does not alias the input", x.Name)
			}
			n := int64(x.DType.Size())
			for _, d := range x.Shape {
				n *= d
			}
			if n != int64(len(x.Data)) {
				t.Fatalf("%s: %d bytes for shape %v of %v", x.Name, len(x.Data), x.Shape, x.DType)
			}
			for _, a := range append([]string{x.Name}, x.Aliases...) {
				if names[a] {
					t.Fatalf("name %s twice", a)
				}
				names[a] = true
			}
		}
	})
}

func fixtureDirOrEmpty() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			fx := filepath.Join(dir, "..", "shared", "fixtures", "flux-bson")
			if _, err := os.Stat(fx); err == nil {
				return fx
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
