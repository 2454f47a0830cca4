package jld2

import (
	"encoding/json"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/bson"
)

// topLevel returns the values under the root's top-level names: BSON.jl's
// root is a dict of (symbol, value) tuples, JLD2's a group whose fields
// are its links (CONVERSION.md 4.3, "equivalent").
func topLevel(root *convert.Node) map[string]*convert.Node {
	out := map[string]*convert.Node{}
	for _, it := range root.Items {
		if it.Kind == "tuple" && len(it.Items) == 2 && it.Items[0].Kind == "symbol" {
			out[it.Items[0].Value] = it.Items[1]
		}
	}
	for _, f := range root.Fields {
		out[f.Name] = f.Node
	}
	return out
}

// normalise clears what legitimately differs between the formats
// (CONVERSION.md 4.3): the type of arrays, scalars and nothing (the dtype
// says it), the dropped mark of a function and the type of an anonymous
// one.
func normalise(n *convert.Node) *convert.Node {
	if n == nil {
		return nil
	}
	c := *n
	switch c.Kind {
	case "array", "scalar", "nothing":
		c.Type = ""
	case "function":
		c.Dropped = ""
		if c.Anonymous {
			c.Type, c.Function = "", ""
		}
	}
	c.Items = make([]*convert.Node, len(n.Items))
	for i, it := range n.Items {
		c.Items[i] = normalise(it)
	}
	c.Fields = make([]convert.Field, len(n.Fields))
	for i, f := range n.Fields {
		c.Fields[i] = convert.Field{Name: f.Name, Node: normalise(f.Node)}
	}
	return &c
}

func equivalent(t *testing.T, a, b *convert.Node) {
	t.Helper()
	ta, tb := topLevel(a), topLevel(b)
	if len(ta) != len(tb) {
		t.Fatalf("top-level names %d and %d", len(ta), len(tb))
	}
	for name, na := range ta {
		nb, ok := tb[name]
		if !ok {
			t.Fatalf("%s only in one", name)
		}
		ja, _ := json.Marshal(normalise(na))
		jb, _ := json.Marshal(normalise(nb))
		if string(ja) != string(jb) {
			t.Errorf("%s differs:\nbson %s\njld2 %s", name, ja, jb)
		}
	}
}

// TestStructureSameFromBothFormats: one model saved by BSON.jl and by JLD2
// gets equivalent structures: functions by name and in place, the same
// fields in the same order, the same tensor names.
func TestStructureSameFromBothFormats(t *testing.T) {
	anon := append(denseModel()[:2:2], sLayer{kind: "anon"}, sLayer{kind: "func", act: "identity"})
	for name, layers := range map[string][]sLayer{"dense": denseModel(), "conv": convModel(), "anonymous": anon} {
		t.Run(name, func(t *testing.T) {
			mb, err := bson.Read(chainBSON(layers))
			if err != nil {
				t.Fatal(err)
			}
			mj, err := Read(chainJLD2(layers))
			if err != nil {
				t.Fatal(err)
			}
			equivalent(t, mb.Structure, mj.Structure)
			// JLD2 0.5 and later name every field, those without data
			// included: the same structure.
			m5, err := Read(chainJLD2v(layers, true))
			if err != nil {
				t.Fatal(err)
			}
			equivalent(t, mb.Structure, m5.Structure)
			items := chainItems(t, mj, "model")
			if len(items) != len(layers) {
				t.Fatalf("%d layers, want %d", len(items), len(layers))
			}
			for i, l := range layers {
				it := items[i]
				switch l.kind {
				case "func":
					if it.Kind != "function" || it.Function != l.act {
						t.Errorf("layer %d: %+v, want function %s", i+1, it, l.act)
					}
				case "anon":
					if it.Kind != "function" || !it.Anonymous {
						t.Errorf("layer %d: %+v, want an anonymous function", i+1, it)
					}
				case "dense", "conv":
					if s := fieldOf(it, "σ"); s == nil || s.Function != l.act {
						t.Errorf("layer %d: σ %+v, want %s", i+1, s, l.act)
					}
				}
			}
		})
	}
}
