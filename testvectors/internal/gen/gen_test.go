package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/testvectors"
)

// TestUpToDate fails when core/ differs from what the generator writes now:
// run `go generate ./testvectors` and commit the result.
func TestUpToDate(t *testing.T) {
	files, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "core")
	have, err := filepath.Glob(filepath.Join(dir, "*"+testvectors.Suffix))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range have {
		if _, ok := files[filepath.Base(p)]; !ok {
			t.Errorf("%s is not generated any more", p)
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's output", name)
		}
	}
	if t.Failed() {
		t.Log("run `go generate ./testvectors`")
	}
}

// TestRoundTripKeys checks that every vector parses back to what the
// generator meant.
func TestRoundTripKeys(t *testing.T) {
	for _, v := range vectors() {
		b := v.data()
		c, err := testvectors.Parse(v.name, render(v, b))
		if err != nil {
			t.Fatal(err)
		}
		if c.Kind != v.expect || c.Rule != v.rule || c.Full != v.full || c.Limits != v.limits || !bytes.Equal(c.Data, b) {
			t.Errorf("%s: parsed as %+v", v.name, c)
		}
	}
}
