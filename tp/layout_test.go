package tp_test

import (
	"errors"
	"testing"

	"github.com/safeweights/safeweights/tp"
)

func TestParseLayout(t *testing.T) {
	l, err := tp.ParseLayout([]byte(`{"default": "columns", "rules": [
		{"pattern": "*.o_proj.weight", "split": "last"},
		{"pattern": "*norm*", "split": "replicated"},
		{"pattern": "lm_head.weight", "split": 0},
		{"pattern": "layers.?.mlp.*", "split": 1},
		{"pattern": "*", "split": "first"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		shape []int64
		want  int
	}{
		{"layers.0.attn.o_proj.weight", []int64{8, 4, 2}, 2},
		{"layers.0.input_norm.weight", []int64{8}, tp.Replicated},
		{"lm_head.weight", []int64{100, 8}, 0},
		{"layers.3.mlp.up", []int64{8, 32}, 1},
		{"layers.12.mlp.up", []int64{8, 32}, 0}, // '?' is one character: the catch-all
		{"embed", []int64{100, 8}, 0},
	} {
		if got := l(c.name, c.shape); got != c.want {
			t.Errorf("%s %v: dimension %d, want %d", c.name, c.shape, got, c.want)
		}
	}

	def, err := tp.ParseLayout([]byte(`{"rules": []}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := def("w", []int64{4, 4}); got != 0 {
		t.Errorf("default layout: dimension %d, want rows (0)", got)
	}

	for _, bad := range []string{
		`{"default": "diagonal"}`,
		`{"rules": [{"pattern": "[", "split": 0}]}`,
		`{"rules": [{"pattern": "", "split": 0}]}`,
		`{"rules": [{"pattern": "*", "split": -3}]}`,
		`{"rules": [{"pattern": "*", "split": 64}]}`,
		`{"rules": [{"pattern": "*", "split": "middle"}]}`,
		`{"rules": [{"pattern": "*", "split": 1.5}]}`,
		`{"rules": [{"pattern": "*", "dim": 0}]}`,
		`{"rules": []} {}`,
		`[]`,
		``,
	} {
		if _, err := tp.ParseLayout([]byte(bad)); !errors.Is(err, tp.ErrPlan) {
			t.Errorf("%s: got %v, want ErrPlan", bad, err)
		}
	}
	if _, err := tp.ParseLayout(make([]byte, 2<<20)); !errors.Is(err, tp.ErrPlan) {
		t.Errorf("a 2 MiB file: got %v, want ErrPlan", err)
	}
}

// FuzzParseLayout: any bytes give a layout or ErrPlan, never a panic, and a
// layout returns a dimension for any name.
func FuzzParseLayout(f *testing.F) {
	f.Add([]byte(`{"default": "columns", "rules": [{"pattern": "*.o_proj.weight", "split": "last"}, {"pattern": "*norm*", "split": "replicated"}]}`))
	f.Add([]byte(`{"rules": [{"pattern": "[a-", "split": 0}]}`))
	f.Add([]byte(`{"rules": [{"pattern": "*", "split": 63}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := tp.ParseLayout(data)
		if err != nil {
			if !errors.Is(err, tp.ErrPlan) {
				t.Fatalf("%v: not ErrPlan", err)
			}
			return
		}
		for _, name := range []string{"", "w", "layers.0.o_proj.weight", "a/b"} {
			if d := l(name, []int64{2, 3}); d < tp.Replicated-1 || d > 63 {
				t.Fatalf("%q: dimension %d", name, d)
			}
		}
	})
}
