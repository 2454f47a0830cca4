package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/format"
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

// TestDefectConfined checks, for every invalid vector, that the parts of the
// file before the broken rule's part are valid: a header rule's vector has a
// valid preamble and header digest, and a data or trailer rule's vector also
// has a valid header. (The decode tests check the kind and rule a reader
// reports.) The documented exceptions of testvectors/README.md are the
// vectors of R7 and R8, which this does not reach.
func TestDefectConfined(t *testing.T) {
	for _, v := range vectors() {
		if v.expect == nil {
			continue
		}
		r, err := strconv.Atoi(strings.TrimPrefix(v.rule, "R"))
		if err != nil || r < 10 {
			continue // signature steps, or preamble rules
		}
		b := v.data()
		lim := v.limits.WithDefaults()
		p, err := format.ParsePreamble(b, int64(len(b)), lim)
		if err != nil {
			t.Errorf("%s (%s): the preamble is broken too: %v", v.name, v.rule, err)
			continue
		}
		h := b[p.HeaderOffset:p.HeaderEnd()]
		if r > 10 && p.DigestAlgorithm.Sum(h) != p.HeaderDigest {
			t.Errorf("%s (%s): the header digest is wrong too", v.name, v.rule)
		}
		if r >= 25 {
			if _, err := format.ParseHeader(h, &p, lim); err != nil {
				t.Errorf("%s (%s): the header is broken too: %v", v.name, v.rule, err)
			}
		}
	}
}
