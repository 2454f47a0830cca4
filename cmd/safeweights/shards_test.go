package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/shard"
	"github.com/safeweights/safeweights/sign"
)

// mkshards DIR N KEY writes a model of N shards into DIR, each with a
// 64 x 32 F32 tensor "layers.I.weight" (element j of row r: r*32+j, as a
// float) and a bias, and DIR/model.swtidx signed by the private key file
// KEY (model id "test/model@1").
func cmdMkshards(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: mkshards DIR N KEY")
	}
	dir := ts.MkAbs(args[0])
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	ts.Check(os.MkdirAll(dir, 0o755))
	var paths []string
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("model-%05d-of-%05d.swt", i+1, n))
		w, err := encode.Create(p, encode.WithChunkSize(1024), encode.WithAlignment(64))
		ts.Check(err)
		data := make([]byte, 64*32*4)
		for k := range 64 * 32 {
			putF32(data[4*k:], float32(k))
		}
		ts.Check(w.Add(fmt.Sprintf("layers.%d.weight", i), format.F32, []int64{64, 32}, data))
		ts.Check(w.Add(fmt.Sprintf("layers.%d.bias", i), format.F32, []int64{32}, data[:128]))
		ts.Check(w.Close())
		paths = append(paths, p)
	}
	idx, err := shard.Build("test/model@1", paths)
	ts.Check(err)
	pem, err := os.ReadFile(ts.MkAbs(args[2]))
	ts.Check(err)
	key, err := sign.ParsePrivateKey(pem, nil)
	ts.Check(err)
	ts.Check(idx.Sign(key, "test", time.Unix(1764633600, 0)))
	ts.Check(shard.WriteFile(filepath.Join(dir, "model"+shard.Ext), idx))
}

func putF32(b []byte, f float32) {
	u := math.Float32bits(f)
	b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
}

// replacein FILE OLD NEW replaces the first OLD in FILE with NEW.
func cmdReplaceIn(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replacein FILE OLD NEW")
	}
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	s := string(b)
	if !strings.Contains(s, args[1]) {
		ts.Fatalf("%s does not contain %q", args[0], args[1])
	}
	ts.Check(os.WriteFile(p, []byte(strings.Replace(s, args[1], args[2], 1)), 0o644))
}
