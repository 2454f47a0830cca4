package structure_test

import (
	"fmt"
	"log"

	"github.com/safeweights/safeweights/convert/structure"
)

// Walk a Chain's layers as a loader does: by type, from an allow-list,
// with functions by name in their places.
func ExampleParse() {
	// What f.Metadata()[convert.MetaStructure] holds for model = Chain(Dense(3 => 2, tanh), softmax).
	js := `{"kind":"dict","items":[{"kind":"tuple","items":[{"kind":"symbol","value":"model"},
	{"kind":"struct","type":"Flux.Chain","fields":[{"name":"layers","node":{"kind":"tuple","type":"Core.Tuple","items":[
	 {"kind":"struct","type":"Flux.Dense","fields":[
	  {"name":"weight","node":{"kind":"array","type":"Array","tensor":"model.layers.1.weight","dtype":"F32"}},
	  {"name":"bias","node":{"kind":"array","type":"Array","tensor":"model.layers.1.bias","dtype":"F32"}},
	  {"name":"σ","node":{"kind":"function","type":"Base.#tanh","function":"tanh"}}]},
	 {"kind":"function","type":"NNlib.#softmax","function":"softmax"}]}}]}]}]}`
	root, err := structure.Parse([]byte(js))
	if err != nil {
		log.Fatal(err)
	}
	chain := root.Items[0].Items[1]
	for i, l := range chain.Fields[0].Node.Items {
		switch l.Kind {
		case "function":
			fmt.Printf("layer %d: %s\n", i+1, l.Function)
		case "struct":
			fmt.Printf("layer %d: %s", i+1, l.Type)
			for _, f := range l.Fields {
				if f.Node.Tensor != "" {
					fmt.Printf(" %s=%s", f.Name, f.Node.Tensor)
				} else if f.Node.Kind == "function" {
					fmt.Printf(" %s=%s", f.Name, f.Node.Function)
				}
			}
			fmt.Println()
		}
	}
	// Output:
	// layer 1: Flux.Dense weight=model.layers.1.weight bias=model.layers.1.bias σ=tanh
	// layer 2: softmax
}
