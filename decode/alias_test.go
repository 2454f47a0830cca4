package decode_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

func TestTensorResolvesAliases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tied.swt")
	w, err := encode.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	add := func(name, aliases string) {
		var o []encode.TensorOption
		if aliases != "" {
			o = append(o, encode.Attribute("aliases", aliases))
		}
		if err := w.Add(name, format.U8, []int64{1}, []byte{byte(len(name))}, o...); err != nil {
			t.Fatal(err)
		}
	}
	add("embed.weight", `["lm_head.weight","shared"]`)
	add("other", `["shared","other2","embed.weight"]`) // "shared" claimed twice; a real name
	add("bad", `not json`)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for alias, want := range map[string]string{"lm_head.weight": "embed.weight", "other2": "other", "embed.weight": "embed.weight"} {
		tn, err := f.Tensor(alias)
		if err != nil || tn.Name != want {
			t.Errorf("Tensor(%q) = %v, %v; want %s", alias, tn, err, want)
		}
	}
	for _, name := range []string{"shared", "nothing", "not json"} {
		if _, err := f.Tensor(name); !errors.Is(err, format.ErrNotFound) {
			t.Errorf("Tensor(%q): %v, want not found", name, err)
		}
	}
}
