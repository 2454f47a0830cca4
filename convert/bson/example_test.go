package bson_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/safeweights/safeweights/convert/bson"
)

// Convert a Flux checkpoint saved with BSON.@save: here a one-layer
// Chain(Dense(2 => 3, relu)) built byte for byte as BSON.jl writes it.
// Nothing from the file runs; relu is recorded by name.
func ExampleConvert() {
	dir, _ := os.MkdirTemp("", "bson-example")
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "model.bson")
	if err := os.WriteFile(src, denseChain(2, 3), 0o644); err != nil {
		log.Fatal(err)
	}

	rep, err := bson.Convert(context.Background(), src, filepath.Join(dir, "model.swt"))
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range rep.Tensors {
		fmt.Println(t.Name, t.DType, t.Shape)
	}
	fmt.Println("code found:", rep.HasCode)
	// Output:
	// model.layers.1.weight F32 [2 3]
	// model.layers.1.bias F32 [3]
	// code found: false
}

// denseChain is `model = Chain(Dense(in => out, relu))` as BSON.jl saves it.
func denseChain(in, out int) []byte {
	relu := datatype("NNlib", "#relu")
	arrayType := func(rank int64) []byte {
		return datatype("Core", "Array", datatype("Core", "Float32"), rank)
	}
	params := bsoncore.NewArrayBuilder().AppendDocument(relu).AppendDocument(arrayType(2)).AppendDocument(arrayType(1)).Build()
	denseType := bsoncore.NewDocumentBuilder().
		AppendString("tag", "datatype").
		AppendArray("params", params).
		AppendArray("name", names("Flux", "Dense")).
		Build()
	fields := bsoncore.NewArrayBuilder().
		AppendDocument(array(make([]float32, in*out), out, in)). // Julia's (out, in)
		AppendDocument(array(make([]float32, out), out)).
		AppendDocument(object(relu, bsoncore.NewArrayBuilder().Build())).
		Build()
	layers := bsoncore.NewDocumentBuilder().
		AppendString("tag", "tuple").
		AppendArray("data", bsoncore.NewArrayBuilder().AppendDocument(object(denseType, fields)).Build()).
		Build()
	chain := object(datatype("Flux", "Chain", datatype("Core", "Tuple")), bsoncore.NewArrayBuilder().AppendDocument(layers).Build())
	return bsoncore.NewDocumentBuilder().AppendDocument("model", chain).Build()
}

func names(parts ...string) []byte {
	a := bsoncore.NewArrayBuilder()
	for _, p := range parts {
		a.AppendString(p)
	}
	return a.Build()
}

// datatype is {tag: "datatype", name, params}; a param is a nested
// datatype or an Int64.
func datatype(module, name string, params ...any) []byte {
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
		AppendArray("name", names(module, name)).
		Build()
}

func object(typ, data []byte) []byte {
	return bsoncore.NewDocumentBuilder().AppendString("tag", "struct").AppendDocument("type", typ).AppendArray("data", data).Build()
}

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
		AppendDocument("type", datatype("Core", "Float32")).
		AppendArray("size", size.Build()).
		AppendBinary("data", 0, data).
		Build()
}
