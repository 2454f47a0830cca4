package gpu_test

import (
	"context"
	"fmt"
	"log"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/gpu"
	"github.com/safeweights/safeweights/sign"
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
