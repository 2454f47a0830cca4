package structure_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/bson"
	"github.com/safeweights/safeweights/convert/jld2"
	"github.com/safeweights/safeweights/convert/structure"
	"github.com/safeweights/safeweights/internal/fixtures"
)

// fixtureStructures converts every fixture (of at most maxSize bytes, when
// not zero) that converts and returns its structure's JSON by file name.
func fixtureStructures(tb testing.TB, maxSize int64) map[string][]byte {
	out := map[string][]byte{}
	for _, sub := range []string{"flux-bson", "flux-jld2", "new/flux-bson", "new/flux-jld2"} {
		dir := fixtures.Dir(sub)
		if dir == "" {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, p := range files {
			if st, err := os.Stat(p); err != nil || maxSize > 0 && st.Size() > maxSize {
				continue
			}
			var m *convert.Model
			var err error
			switch filepath.Ext(p) {
			case ".bson":
				data, rerr := os.ReadFile(p)
				if rerr != nil {
					tb.Fatal(rerr)
				}
				m, err = bson.Read(data)
			case ".jld2":
				data, rerr := os.ReadFile(p)
				if rerr != nil {
					tb.Fatal(rerr)
				}
				m, err = jld2.Read(data)
			default:
				continue
			}
			if err != nil || m.Structure == nil {
				continue // GPU arrays, not BSON at all: no structure
			}
			js, err := json.Marshal(m.Structure)
			if err != nil {
				tb.Fatal(err)
			}
			out[filepath.Base(p)] = js
		}
	}
	return out
}

// TestFixturesParse: every structure the converters write on the fixtures
// parses, validates against spec/structure.schema.json, and reads back to
// the same JSON.
func TestFixturesParse(t *testing.T) {
	all := fixtureStructures(t, 0)
	if len(all) == 0 {
		t.Skip("no fixtures")
	}
	schema := loadSchema(t)
	for name, js := range all {
		n, err := structure.Parse(js)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		again, _ := json.Marshal(n)
		if !bytes.Equal(again, js) {
			t.Errorf("%s: does not read back the same", name)
		}
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			t.Fatal(err)
		}
		if err := schema.validate(v, "$"); err != nil {
			t.Errorf("%s: schema: %v", name, err)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	deep := strings.Repeat(`{"kind":"tuple","items":[`, 3000) + `{"kind":"nothing"}` + strings.Repeat(`]}`, 3000)
	cases := map[string]struct {
		js   string
		lim  structure.Limits
		want error
	}{
		"not-json":            {`{"kind":`, structure.Limits{}, structure.ErrMalformed},
		"trailing-data":       {`{"kind":"nothing"} {}`, structure.Limits{}, structure.ErrMalformed},
		"unknown-member":      {`{"kind":"nothing","code":"rm -rf"}`, structure.Limits{}, structure.ErrMalformed},
		"duplicate-member":    {`{"kind":"array","tensor":"a","tensor":"b"}`, structure.Limits{}, structure.ErrMalformed},
		"duplicate-nested":    {`{"kind":"struct","fields":[{"name":"a","node":{"kind":"nothing","kind":"array"}}]}`, structure.Limits{}, structure.ErrMalformed},
		"unknown-kind":        {`{"kind":"closure"}`, structure.Limits{}, structure.ErrMalformed},
		"no-kind":             {`{"type":"Flux.Dense"}`, structure.Limits{}, structure.ErrMalformed},
		"ref-without-kind":    {`{"ref":"model.layers.1"}`, structure.Limits{}, structure.ErrMalformed},
		"ref-with-more":       {`{"kind":"ref","ref":"a","tensor":"w"}`, structure.Limits{}, structure.ErrMalformed},
		"null-field-node":     {`{"kind":"struct","fields":[{"name":"a","node":null}]}`, structure.Limits{}, structure.ErrMalformed},
		"null-item":           {`{"kind":"tuple","items":[null]}`, structure.Limits{}, structure.ErrMalformed},
		"unnamed-field":       {`{"kind":"struct","fields":[{"name":"","node":{"kind":"nothing"}}]}`, structure.Limits{}, structure.ErrMalformed},
		"fields-on-array":     {`{"kind":"array","fields":[{"name":"a","node":{"kind":"nothing"}}]}`, structure.Limits{}, structure.ErrMalformed},
		"items-on-struct":     {`{"kind":"struct","items":[{"kind":"nothing"}]}`, structure.Limits{}, structure.ErrMalformed},
		"tensor-on-scalar":    {`{"kind":"scalar","tensor":"w"}`, structure.Limits{}, structure.ErrMalformed},
		"named-anonymous":     {`{"kind":"function","function":"relu","anonymous":true}`, structure.Limits{}, structure.ErrMalformed},
		"unknown-dtype":       {`{"kind":"scalar","value":"1","dtype":"F128"}`, structure.Limits{}, structure.ErrMalformed},
		"unknown-drop":        {`{"kind":"dropped","dropped":"secret"}`, structure.Limits{}, structure.ErrMalformed},
		"dropped-without-why": {`{"kind":"dropped"}`, structure.Limits{}, structure.ErrMalformed},
		"too-deep":            {deep, structure.Limits{}, structure.ErrLimit},
		"too-many-nodes":      {`{"kind":"tuple","items":[{"kind":"nothing"},{"kind":"nothing"},{"kind":"nothing"}]}`, structure.Limits{MaxNodes: 2}, structure.ErrLimit},
		"too-big":             {`{"kind":"nothing"}`, structure.Limits{MaxBytes: 8}, structure.ErrLimit},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := structure.ParseLimits([]byte(c.js), c.lim)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			var e *structure.Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not a *structure.Error", err)
			}
		})
	}
	if _, err := structure.ParseLimits([]byte(`{"kind":"nothing"}`), structure.Limits{MaxDepth: -1}); err == nil {
		t.Fatal("a negative limit was accepted")
	}
}

func TestParseAccepts(t *testing.T) {
	for _, js := range []string{
		`{"kind":"nothing"}`,
		`{"kind":"ref","ref":"model.layers.1"}`,
		`{"kind":"ref"}`,
		`{"kind":"struct","type":"Flux.Dense","ref":"model.layers.1"}`,
		`{"kind":"struct","type":"Flux.Dense","fields":[{"name":"weight","node":{"kind":"array","type":"Core.Array","tensor":"model.weight","dtype":"F32"}},{"name":"bias","node":{"kind":"scalar","value":"false","dtype":"BOOL"}},{"name":"σ","node":{"kind":"function","type":"NNlib.#relu","function":"relu"}}]}`,
		`{"kind":"tuple","items":[{"kind":"function","type":"Main.#3#4","anonymous":true,"dropped":"code"},{"kind":"string","value":"{\"kind\":[[[["}]}`,
	} {
		if _, err := structure.Parse([]byte(js)); err != nil {
			t.Errorf("%s: %v", js, err)
		}
	}
}

// FuzzParse: whatever Parse accepts is within its limits and reads back
// to itself: marshalled again, it parses to the same JSON.
func FuzzParse(f *testing.F) {
	// Small fixtures only: each fuzzing process converts them again.
	for _, js := range fixtureStructures(f, 32<<10) {
		f.Add(js)
	}
	f.Add([]byte(`{"kind":"tuple","items":[{"kind":"nothing"},{"kind":"ref","ref":"a"}]}`))
	f.Add([]byte(`{"kind":"struct","fields":[{"name":"a","node":{"kind":"array","tensor":"a","dtype":"F32"}}]}`))
	lim := structure.Limits{MaxDepth: 64, MaxNodes: 256}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := structure.ParseLimits(data, lim)
		if err != nil {
			var e *structure.Error
			if !errors.As(err, &e) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		js, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		n2, err := structure.ParseLimits(js, lim)
		if err != nil {
			t.Fatalf("re-marshalled structure refused: %v", err)
		}
		js2, _ := json.Marshal(n2)
		if !bytes.Equal(js, js2) {
			t.Fatalf("not stable:\n%s\n%s", js, js2)
		}
	})
}

// chains returns every Flux.Chain's layers node in a tree.
func chains(n *convert.Node, out []*convert.Node) []*convert.Node {
	if n == nil {
		return out
	}
	if n.Kind == "struct" && n.Type == "Flux.Chain" && len(n.Fields) == 1 && n.Fields[0].Name == "layers" {
		out = append(out, n.Fields[0].Node)
	}
	for _, it := range n.Items {
		out = chains(it, out)
	}
	for _, f := range n.Fields {
		out = chains(f.Node, out)
	}
	return out
}

func tensors(n *convert.Node, out []string) []string {
	if n == nil {
		return out
	}
	if n.Tensor != "" {
		out = append(out, n.Tensor)
	}
	for _, it := range n.Items {
		out = tensors(it, out)
	}
	for _, f := range n.Fields {
		out = tensors(f.Node, out)
	}
	return out
}

// TestFixtureChainPositions: in every Chain of every fixture, from either
// format, item i is Julia's layer i: the tensors below it are named
// ….layers.<i>.… (CONVERSION.md S1). Every Chain of a fixture is in a
// tuple; its function layers are function nodes.
func TestFixtureChainPositions(t *testing.T) {
	all := fixtureStructures(t, 0)
	if len(all) == 0 {
		t.Skip("no fixtures")
	}
	seen := 0
	for name, js := range all {
		root, err := structure.Parse(js)
		if err != nil {
			t.Fatal(err)
		}
		for _, layers := range chains(root, nil) {
			seen++
			for i, it := range layers.Items {
				part := ".layers." + strconv.Itoa(i+1) + "."
				for _, tn := range tensors(it, nil) {
					if !strings.Contains(tn, part) {
						t.Errorf("%s: Chain item %d holds %s", name, i+1, tn)
					}
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no Chain in the fixtures")
	}
}
