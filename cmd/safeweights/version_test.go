package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/bson"
	"github.com/safeweights/safeweights/convert/jld2"
	"github.com/safeweights/safeweights/convert/safetensors"
)

// runCLI runs one command line and returns its standard output.
func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(&env{stdin: &bytes.Buffer{}, stdout: &out, stderr: &errb}, args); code != 0 {
		t.Fatalf("safeweights %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

// Each converter's name and version is the same in the provenance written
// into a converted file, the conversion report and 'safeweights version'.
func TestConverterVersionsAgree(t *testing.T) {
	dir := t.TempDir()
	version := runCLI(t, "version")
	fromBSON := filepath.Join(dir, "from-bson.swt")
	exported := filepath.Join(dir, "exported.safetensors")
	cases := []struct {
		src, dst, want string
		before         func()
	}{
		{"sample/mlp.bson", fromBSON, bson.Converter, nil},
		{"../../convert/jld2/testdata/float16-bool.h5", filepath.Join(dir, "from-jld2.swt"), jld2.Converter, nil},
		{exported, filepath.Join(dir, "from-safetensors.swt"), safetensors.Converter,
			func() { runCLI(t, "convert", fromBSON, exported) }},
	}
	for _, c := range cases {
		if c.before != nil {
			c.before()
		}
		var rep convert.Report
		if err := json.Unmarshal([]byte(runCLI(t, "convert", "--json", c.src, c.dst)), &rep); err != nil {
			t.Fatal(err)
		}
		var info struct {
			Provenance struct {
				Converter string `json:"converter"`
			} `json:"provenance"`
		}
		if err := json.Unmarshal([]byte(runCLI(t, "inspect", "--json", c.dst)), &info); err != nil {
			t.Fatal(err)
		}
		if rep.Converter != c.want || info.Provenance.Converter != c.want {
			t.Errorf("%s: report %q, provenance %q, package %q", c.src, rep.Converter, info.Provenance.Converter, c.want)
		}
		if !strings.Contains(version, "\nconverter "+c.want+"\n") {
			t.Errorf("'safeweights version' does not list %q:\n%s", c.want, version)
		}
	}
}
