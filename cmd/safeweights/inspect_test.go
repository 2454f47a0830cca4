package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/safeweights/safeweights/sign"
)

// A signature time outside years 0-9999 is valid; inspect --json prints its
// stored integer and leaves out the RFC 3339 form it cannot write.
func TestInspectJSONFarTimestamp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.swt")
	writeSmall(t, path)
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	const far = int64(1) << 40 // year 36812
	if err := sign.Sign(context.Background(), path, priv, sign.WithTimestamp(time.Unix(far, 0))); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"inspect", "--json", path}, {"inspect", path}} {
		var out, errb bytes.Buffer
		if code := run(&env{stdin: &bytes.Buffer{}, stdout: &out, stderr: &errb}, args); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		if args[1] != "--json" {
			continue
		}
		var doc struct {
			Tensors    []tensorInfo
			Signatures []map[string]any
		}
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		if len(doc.Tensors) != 1 || len(doc.Signatures) != 1 {
			t.Fatalf("got %+v", doc)
		}
		s := doc.Signatures[0]
		if _, ok := s["timestamp"]; ok || s["timestamp_unix"] != float64(far) {
			t.Fatalf("signature %v", s)
		}
	}
}
