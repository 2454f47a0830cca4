// Command gensample writes the demo sample of safeweights demo: a small Flux
// model, Chain(Dense(4 => 8, relu), Dense(8 => 2)), laid out as BSON.jl writes
// `BSON.@save "mlp.bson" model`. The weights are a fixed pseudo-random
// sequence, so the output is the same on every run.
//
// Run it from the module root with:
//
//	go run ./cmd/safeweights/internal/gensample -o cmd/safeweights/sample/mlp.bson
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func main() {
	out := flag.String("o", "mlp.bson", "output file")
	flag.Parse()
	if err := os.WriteFile(*out, Sample(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gensample:", err)
		os.Exit(1)
	}
}

// Sample returns the bytes of the sample checkpoint.
func Sample() []byte {
	rng := uint64(0x5eed)
	next := func() float32 {
		// xorshift64*: a fixed sequence, nothing random about the output.
		rng ^= rng >> 12
		rng ^= rng << 25
		rng ^= rng >> 27
		v := rng * 2685821657736338717
		return float32(int64(v>>40)-(1<<23)) / float32(1<<23) // in [-1, 1)
	}
	dense := func(in, out int, act string) []byte {
		w := make([]float32, in*out)
		for i := range w {
			w[i] = next() / float32(math.Sqrt(float64(in)))
		}
		b := make([]float32, out)
		for i := range b {
			b[i] = next() / 10
		}
		fn := []string{"NNlib", "#" + act}
		if act == "identity" {
			fn = []string{"Main", "Base", "#identity"}
		}
		params := bsoncore.NewArrayBuilder().
			AppendDocument(datatype(fn)).
			AppendDocument(datatype([]string{"Core", "Array"}, datatype([]string{"Core", "Float32"}), int64(2))).
			AppendDocument(datatype([]string{"Core", "Array"}, datatype([]string{"Core", "Float32"}), int64(1))).
			Build()
		fields := bsoncore.NewArrayBuilder().
			// Julia is column-major: a Dense(in => out) weight has size (out, in).
			AppendDocument(array(w, out, in)).
			AppendDocument(array(b, out)).
			AppendDocument(structDoc(datatype(fn), bsoncore.NewArrayBuilder().Build())).
			Build()
		typ := bsoncore.NewDocumentBuilder().
			AppendString("tag", "datatype").
			AppendArray("params", params).
			AppendArray("name", names([]string{"Flux", "Dense"})).
			Build()
		return structDoc(typ, fields)
	}
	layers := bsoncore.NewDocumentBuilder().
		AppendString("tag", "tuple").
		AppendArray("data", bsoncore.NewArrayBuilder().
			AppendDocument(dense(4, 8, "relu")).
			AppendDocument(dense(8, 2, "identity")).
			Build()).
		Build()
	chain := structDoc(datatype([]string{"Flux", "Chain"}, datatype([]string{"Core", "Tuple"})),
		bsoncore.NewArrayBuilder().AppendDocument(layers).Build())
	return bsoncore.NewDocumentBuilder().AppendDocument("model", chain).Build()
}

func names(parts []string) []byte {
	a := bsoncore.NewArrayBuilder()
	for _, p := range parts {
		a.AppendString(p)
	}
	return a.Build()
}

// datatype is BSON.jl's {tag: "datatype", params, name}; a param is a
// nested datatype document or an Int64.
func datatype(name []string, params ...any) []byte {
	p := bsoncore.NewArrayBuilder()
	for _, x := range params {
		switch x := x.(type) {
		case []byte:
			p.AppendDocument(x)
		case int64:
			p.AppendInt64(x)
		}
	}
	return bsoncore.NewDocumentBuilder().
		AppendString("tag", "datatype").
		AppendArray("params", p.Build()).
		AppendArray("name", names(name)).
		Build()
}

func structDoc(typ, data []byte) []byte {
	return bsoncore.NewDocumentBuilder().
		AppendString("tag", "struct").
		AppendDocument("type", typ).
		AppendArray("data", data).
		Build()
}

// array is BSON.jl's {tag: "array", type, size, data} for a Float32 array
// of Julia size dims, data in column-major order.
func array(v []float32, dims ...int) []byte {
	size := bsoncore.NewArrayBuilder()
	for _, d := range dims {
		size.AppendInt64(int64(d))
	}
	data := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
	}
	return bsoncore.NewDocumentBuilder().
		AppendString("tag", "array").
		AppendDocument("type", datatype([]string{"Core", "Float32"})).
		AppendArray("size", size.Build()).
		AppendBinary("data", 0, data).
		Build()
}
