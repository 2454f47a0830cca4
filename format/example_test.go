package format_test

import (
	"errors"
	"fmt"

	"github.com/safeweights/safeweights/format"
)

// Element types by their spec names.
func ExampleParseDType() {
	dt, ok := format.ParseDType("BF16")
	fmt.Println(dt, ok, dt.Size())
	// Output: BF16 true 2
}

// A refusal carries a failure kind, the spec rule, and where; errors.Is
// tests the kind and KindOf names it, as the test vectors do.
func ExampleKindOf() {
	err := fmt.Errorf("loading: %w", format.Errorf(format.ErrDigest, "R26", 4096, "tensor \"w\" chunk 0", "stored bytes do not match the header"))
	fmt.Println(errors.Is(err, format.ErrDigest), format.KindOf(err).Name())
	var fe *format.FormatError
	if errors.As(err, &fe) {
		fmt.Println(fe.Rule, fe.Offset)
	}
	// Output:
	// true digest
	// R26 4096
}

// The limits a reader applies are options with documented defaults.
func ExampleDefaultLimits() {
	lim := format.DefaultLimits()
	lim.MaxTensors = 10
	fmt.Println(lim.Validate() == nil)
	// Output: true
}
