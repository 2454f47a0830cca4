package main

import (
	"os"
	"strconv"
	"testing"

	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// TestClimemFile writes the many-tensor file of bench/climem.sh when
// SAFEWEIGHTS_CLIMEM_OUT names it: SAFEWEIGHTS_CLIMEM_N (default 1,048,576)
// empty F32 tensors of shape [0] with short names (the most tensors the
// default 64 MiB header limit allows). Skipped otherwise.
func TestClimemFile(t *testing.T) {
	out := os.Getenv("SAFEWEIGHTS_CLIMEM_OUT")
	if out == "" {
		t.Skip("SAFEWEIGHTS_CLIMEM_OUT not set (bench/climem.sh sets it)")
	}
	n := 1 << 20
	if s := os.Getenv("SAFEWEIGHTS_CLIMEM_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	w, err := encode.Create(out, encode.WithAlignment(64))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Add(strconv.FormatInt(int64(i), 36), format.F32, []int64{0}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
