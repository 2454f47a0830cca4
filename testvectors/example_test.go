package testvectors_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/testvectors"
)

// Run every core vector through a reader: a valid one must open and verify,
// every other must fail with exactly its kind.
func ExampleCore() {
	cases, err := testvectors.Core()
	if err != nil {
		log.Fatal(err)
	}
	wrong := 0
	for _, c := range cases {
		f, err := decode.NewReader(bytes.NewReader(c.Data), int64(len(c.Data)), decode.WithLimits(c.Limits), decode.WithVerify(decode.VerifyEager))
		if err == nil {
			for t := range f.All() { // decode every tensor, as "verify: full" asks
				if _, err = t.Bytes(); err != nil {
					break
				}
			}
			f.Close()
		}
		if (c.Kind == nil) != (err == nil) || (c.Kind != nil && !errors.Is(err, c.Kind)) {
			wrong++
		}
	}
	fmt.Println("vectors with the wrong outcome:", wrong)
	// Output: vectors with the wrong outcome: 0
}
