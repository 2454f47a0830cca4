package jld2

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/convert"
)

func readFixture(t *testing.T, name string) *convert.Model {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func chainItems(t *testing.T, m *convert.Model, top string) []*convert.Node {
	t.Helper()
	for _, f := range m.Structure.Fields {
		if f.Name == top && f.Node.Type == "Flux.Chain" && len(f.Node.Fields) == 1 {
			return f.Node.Fields[0].Node.Items
		}
	}
	t.Fatalf("no Chain under %s", top)
	return nil
}

func fieldOf(n *convert.Node, name string) *convert.Node {
	for _, f := range n.Fields {
		if f.Name == name {
			return f.Node
		}
	}
	return nil
}

// tensorsBelow lists the tensor names in a subtree.
func tensorsBelow(n *convert.Node, out []string) []string {
	if n == nil {
		return out
	}
	if n.Tensor != "" {
		out = append(out, n.Tensor)
	}
	for _, it := range n.Items {
		out = tensorsBelow(it, out)
	}
	for _, f := range n.Fields {
		out = tensorsBelow(f.Node, out)
	}
	return out
}

// TestChainFunctionsInPlace: files written before JLD2 0.5 omit fields
// without data; a Chain's function layers (flatten, softmax) take their
// place again, so that item i is Julia's layer i, and each Dense or Conv
// has its activation as its σ field, as from BSON (CONVERSION.md 4).
func TestChainFunctionsInPlace(t *testing.T) {
	cases := []struct {
		file, top string
		// layer i: a function name, or the activation of a layer with
		// weights after "σ=", or "" for a layer without either.
		want []string
	}{
		{"flux_model_chain_conv_meanpool_hwdr.jld2", "model", []string{"σ=relu", "", "σ=relu", "", "σ=relu", "σ=relu", "flatten", "σ=relu", "σ=σ", "softmax"}},
		{"flux_model_chain_dense_vavrines.jld2", "nn", []string{"σ=tanh", "σ=tanh", "σ=tanh", "σ=tanh", "σ=identity"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			m := readFixture(t, c.file)
			items := chainItems(t, m, c.top)
			if len(items) != len(c.want) {
				t.Fatalf("%d layers, want %d", len(items), len(c.want))
			}
			for i, it := range items {
				prefix := c.top + ".layers." + strconv.Itoa(i+1)
				for _, tn := range tensorsBelow(it, nil) {
					if !strings.HasPrefix(tn, prefix+".") {
						t.Errorf("layer %d holds tensor %s", i+1, tn)
					}
				}
				got := ""
				switch {
				case it.Kind == "function":
					got = it.Function
				case fieldOf(it, "σ") != nil:
					s := fieldOf(it, "σ")
					if s.Kind != "function" {
						t.Errorf("layer %d: σ is a %s", i+1, s.Kind)
					}
					got = "σ=" + s.Function
					if want := []string{"σ", "weight", "bias"}; it.Type == "Flux.Conv" && !slices.Equal(fieldNames(it)[:3], want) {
						t.Errorf("layer %d: Conv fields %v, want %v first", i+1, fieldNames(it), want)
					}
				}
				if got != c.want[i] {
					t.Errorf("layer %d: %q, want %q", i+1, got, c.want[i])
				}
			}
			for _, d := range m.Report.Dropped {
				if d.Kind == convert.DropFunction && strings.Contains(d.Detail, "type parameter") {
					t.Errorf("function reported only as text: %+v", d)
				}
			}
		})
	}
}

func fieldNames(n *convert.Node) []string {
	var out []string
	for _, f := range n.Fields {
		out = append(out, f.Name)
	}
	return out
}

func TestIsAnonymous(t *testing.T) {
	for name, want := range map[string]bool{
		"NNlib.#relu": false, "Base.#tanh": false, "typeof(tanh)": false, "Flux.#flatten": false,
		"Main.#1#2": true, "Main.#3": true, "Main.#f#5": true, `Main.var"#7#8"`: true, "#": true,
	} {
		if got := isAnonymous(name); got != want {
			t.Errorf("isAnonymous(%q) = %v, want %v", name, got, want)
		}
	}
}
