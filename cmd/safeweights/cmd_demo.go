package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	_ "embed"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/safeweights/safeweights/convert/auto"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/sign"
)

// sample is a Flux Chain(Dense(4 => 8, relu), Dense(8 => 2)) as BSON.jl
// saves it, written by ./internal/gensample.
//
//go:generate go run ./internal/gensample -o sample/mlp.bson
//go:embed sample/mlp.bson
var sample []byte

func init() {
	var dir string
	c := &command{
		name:    "demo",
		args:    "[--dir DIR]",
		summary: "run the whole pipeline on a built-in Flux checkpoint",
		help: `Demo shows what safeweights does, on a small Flux model saved with BSON.jl
that is built into the program: it converts the checkpoint to .swt without
running any Julia code, signs the result with a freshly generated key,
verifies it against that key, inspects it, and loads the tensors under a
policy that requires the signature, printing a few weights and the model's
output on one input. Everything happens in a temporary directory that is
removed afterwards, unless --dir names a directory to keep the files in.`,
		example: "  safeweights demo\n  safeweights demo --dir demo-files",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dir, "dir", "", "keep the files in `dir` instead of a temporary directory")
		},
	}
	c.run = func(e *env, args []string) error {
		_, done, err := parseOrHelp(e, c, newFlags(c), args, 0, 0)
		if done {
			return err
		}
		keep := dir != ""
		if !keep {
			tmp, err := os.MkdirTemp("", "safeweights-demo-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := demo(e, dir); err != nil {
			return err
		}
		if keep {
			fmt.Fprintf(e.stdout, "\nfiles kept in %s\n", clean(dir))
		} else {
			fmt.Fprintln(e.stdout, "\ndone; the temporary files were removed (keep them with --dir DIR)")
		}
		return nil
	}
	register(c)
}

func demo(e *env, dir string) error {
	w := e.stdout
	step := func(n int, s string) { fmt.Fprintf(w, "\n== %d. %s\n", n, s) }
	src := filepath.Join(dir, "mlp.bson")
	swt := filepath.Join(dir, "mlp.swt")
	key := filepath.Join(dir, "demo.key")

	step(1, "a Flux checkpoint saved with BSON.@save (built in)")
	if err := os.WriteFile(src, sample, 0o644); err != nil {
		return err
	}
	fmtIn, err := auto.DetectFile(src)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "wrote %s (%d bytes); recognised by content as %s\n", src, len(sample), fmtIn)

	step(2, "convert to .swt (no Julia code is run; functions are recorded by name, code is dropped)")
	rep, err := auto.Convert(context.Background(), src, swt)
	if err != nil {
		return err
	}
	printReport(w, rep)

	step(3, "generate an Ed25519 key and sign the file")
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	pubPEM, err := sign.MarshalPublicKey(pub)
	if err != nil {
		return err
	}
	if err := os.WriteFile(key+".pub", pubPEM, 0o644); err != nil {
		return err
	}
	if err := sign.Sign(context.Background(), swt, priv, sign.WithComment("safeweights demo")); err != nil {
		return err
	}
	fmt.Fprintf(w, "key id %s, public key in %s\nsigned %s\n", sign.KeyIDOf(pub).Short(), key+".pub", swt)

	step(4, "verify the signature and every digest against the trusted public key")
	kr, err := sign.LoadKeyRing(key + ".pub")
	if err != nil {
		return err
	}
	f, err := decode.Open(swt)
	if err != nil {
		return err
	}
	res, err := sign.Verify(context.Background(), f, kr)
	f.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "signature by a trusted key: %v; every data digest checked: %v\n", res.HeaderVerified, res.DataVerified)

	step(5, "inspect the header (no tensor bytes read)")
	fi, err := decode.Inspect(swt)
	if err != nil {
		return err
	}
	printInfo(w, describe(fi, swt), fi)
	fi.Close()

	step(6, "load under a policy that requires the signature; each tensor is read once and hashed where it lands")
	f, err = decode.Open(swt, decode.WithPolicy(sign.Require(kr)), decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		return err
	}
	defer f.Close()
	var layers [][]float32
	for t := range f.All() {
		v, err := decode.View[float32](t)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%-22s %-5s %-7s %s\n", t.Name, t.DType, shapeString(t.Shape), firstValues(v, 4))
		layers = append(layers, v)
	}
	if len(layers) == 4 {
		// Julia stores a Dense(in => out) weight as out x in, column-major;
		// the converter keeps the bytes and reverses the shape to in x out,
		// row-major, so y[j] = sum_i x[i] * W[i*out+j] + b[j].
		x := []float32{1, 0.5, -0.5, -1}
		h := dense(x, layers[0], layers[1], true)
		y := dense(h, layers[2], layers[3], false)
		fmt.Fprintf(w, "model(%v) = %s\n", x, firstValues(y, 2))
	}
	return nil
}

func dense(x, wt, b []float32, relu bool) []float32 {
	out := len(b)
	if out == 0 || len(wt) != len(x)*out {
		return nil
	}
	y := make([]float32, out)
	for j := range y {
		s := b[j]
		for i := range x {
			s += x[i] * wt[i*out+j]
		}
		if relu && s < 0 {
			s = 0
		}
		y[j] = s
	}
	return y
}

func firstValues(v []float32, n int) string {
	s := "["
	for i, x := range v {
		if i == n {
			s += fmt.Sprintf(", ... (%d values)", len(v))
			break
		}
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.4f", x)
	}
	return s + "]"
}
