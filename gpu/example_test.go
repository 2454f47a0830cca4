package gpu_test

import (
	"context"
	"fmt"
	"log"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/gpu"
	"github.com/safeweights/safeweights/sign"
	"github.com/safeweights/safeweights/source/remote"
	"github.com/safeweights/safeweights/tp"
)

// Load a signed model into the memory of GPU 0, checking every chunk digest
// on the way. It needs a CUDA driver, so it is compiled but not run.
func ExampleLoad() {
	trusted, err := sign.LoadKeyRing("trusted-keys/")
	if err != nil {
		log.Fatal(err)
	}
	f, err := decode.Open("model.swt", decode.WithPolicy(sign.Require(trusted)), decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	m, err := gpu.Load(context.Background(), f, gpu.WithDevice(0), gpu.WithVerify())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	if t, ok := m.Tensor("model.layers.1.weight"); ok {
		fmt.Printf("%s on the device at %#x, %d bytes\n", t.Name, t.Ptr, t.Size)
	}
}

// Load rank 3 of a tensor-parallel group of 8 onto GPU 3: each weight split
// as the layout file says, only the chunks its slice touches read from the
// object store, each hashed in the pinned buffer it is copied from. It needs
// a CUDA driver, so it is compiled but not run.
func ExampleLoadPlan() {
	ctx := context.Background()
	f, err := remote.OpenFile(ctx, "s3://models/llama/model.swt")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	layout, err := tp.ByPatterns([]tp.Rule{
		{Pattern: "layers.*.o_proj.weight", Dim: -2}, // the last dimension
		{Pattern: "*norm*", Dim: tp.Replicated},
	}, tp.Rows)
	if err != nil {
		log.Fatal(err)
	}
	plan, err := tp.NewPlan(f, 3, 8, layout, tp.WithDivisible())
	if err != nil {
		log.Fatal(err)
	}
	m, err := gpu.LoadPlan(ctx, f, plan, gpu.WithDevice(3))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	if t, ok := m.Tensor("lm_head.weight"); ok {
		fmt.Printf("%s [%v]: %v on the device at %#x\n", t.Name, t.Slice, t.Shape, t.Ptr)
	}
}
