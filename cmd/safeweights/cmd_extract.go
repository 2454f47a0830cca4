package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/safeweights/safeweights/convert/npy"
	"github.com/safeweights/safeweights/decode"
)

func init() {
	var out, all, sliceSpec, trusted string
	c := &command{
		name:    "extract",
		args:    "FILE NAME [--slice SPEC] [--trusted KEYS] -o, --output OUT.npy | FILE --all DIR",
		summary: "write tensors of a .swt file as NumPy .npy files",
		help: `Extract writes one tensor (NAME, to OUT.npy; "-o -" writes to standard
output) or every tensor (--all DIR) of a .swt file as NumPy .npy files.
Digests are checked before any byte is written.

With --all, file names are made from tensor names only after sanitising:
path separators, "..", drive letters, device names and control characters
cannot leave DIR or name a device, and names that collide get a hash suffix.
DIR/index.json maps each file back to its tensor name.

NumPy has no BF16 or F8 types: those tensors are written as unsigned
integers of the same width (view them with ml_dtypes), and a note says so.

--slice SPEC writes only a slice of NAME, in NumPy's syntax ("0:128,:",
":,5:9", "-1"; no steps): only the digest chunks the slice touches are
read, and each is verified. FILE may also be a shard index (.swtidx): the
tensor is read from its shard, which is checked against the index first.
With --trusted a trusted signature (of the file, or of the index) is
required before any byte is written.`,
		example: `  safeweights extract model.swt model.layers.1.weight -o w1.npy
  safeweights extract model.swt model.layers.1.bias -o - | python3 -c 'import numpy,sys,io; print(numpy.load(io.BytesIO(sys.stdin.buffer.read())))'
  safeweights extract model.swt --all weights/
  safeweights extract model.swt embed.weight --slice 0:1024,: -o part.npy
  safeweights extract model.swtidx lm_head.weight --slice :,0:4096 --trusted alice.pub -o head.npy`,
		flags: func(fs *flag.FlagSet) {
			outputFlag(fs, &out, "output `file` for one tensor (\"-\": standard output)")
			fs.StringVar(&all, "all", "", "write every tensor into `dir`")
			fs.StringVar(&sliceSpec, "slice", "", "write only this slice of NAME, in NumPy `syntax` (0:128,:)") // slice.go
			fs.StringVar(&trusted, "trusted", "", "require a signature by one of these public keys (a PEM `file` or directory)")
		},
	}
	c.run = func(e *env, args []string) error {
		pos, done, err := parseOrHelp(e, c, newFlags(c), args, 1, 2)
		if done {
			return err
		}
		switch {
		case all != "" && (len(pos) != 1 || out != ""):
			return usageErrorf("extract: --all takes FILE only, without NAME or -o").withHint("usage: safeweights extract " + c.args)
		case all == "" && (len(pos) != 2 || out == ""):
			return usageErrorf("extract: need FILE NAME -o OUT.npy, or FILE --all DIR").withHint("usage: safeweights extract " + c.args)
		case all != "" && sliceSpec != "":
			return usageErrorf("extract: --slice takes one tensor, not --all").withHint("usage: safeweights extract " + c.args)
		}
		if isShardIndex(pos[0]) { // shards.go
			return extractIndex(e, pos[0], pos[len(pos)-1], out, all, sliceSpec, trusted)
		}
		dopts, err := extractOptions(trusted, pos[0]) // slice.go
		if err != nil {
			return err
		}
		f, err := openSWT(e, pos[0], false, dopts...)
		if err != nil {
			return err
		}
		defer f.Close()
		if all == "" {
			t, err := f.Tensor(pos[1])
			if err != nil {
				return err
			}
			if sliceSpec != "" { // slice.go
				return extractSlice(e, t, sliceSpec, out)
			}
			data, err := t.Bytes()
			if err != nil {
				return err
			}
			noteInexact(e, t)
			if testHookRead != nil {
				testHookRead()
			}
			if out == "-" {
				var b bytes.Buffer
				if err := npy.Write(&b, t.DType, t.Shape, data); err != nil {
					return err
				}
				_, err = e.stdout.Write(b.Bytes())
				return err
			}
			return npy.WriteFile(out, t.DType, t.Shape, data)
		}
		if err := os.MkdirAll(all, 0o755); err != nil {
			return err
		}
		var names []string
		for t := range f.All() {
			names = append(names, t.Name)
		}
		files := npy.FileNames(names, ".npy")
		index := make(map[string]string, len(files))
		pb := e.newCountBar("extract", int64(len(files))) // drawn only on a terminal
		defer pb.finish()
		for i := range files {
			// FileNames promises plain local names; check anyway, since a
			// name that escaped DIR would write anywhere.
			if !filepath.IsLocal(files[i]) || filepath.Base(files[i]) != files[i] || files[i] == "index.json" {
				return failf("extract: tensor %s maps to the unsafe file name %q", clean(names[i]), files[i])
			}
			t := f.TensorAt(i)
			data, err := t.Bytes()
			if err != nil {
				return err
			}
			noteInexact(e, t)
			if testHookRead != nil {
				testHookRead()
			}
			if err := npy.WriteFile(filepath.Join(all, files[i]), t.DType, t.Shape, data); err != nil {
				return err
			}
			index[files[i]] = t.Name
			pb.set(int64(i+1), int64(len(files)))
		}
		var b bytes.Buffer
		if err := writeJSON(&b, index); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(all, "index.json"), b.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %d tensors to %s (index.json maps file names to tensor names)\n", len(files), clean(all))
		return nil
	}
	register(c)
}

func noteInexact(e *env, t *decode.Tensor) {
	descr, exact, err := npy.Descr(t.DType)
	if err != nil || exact {
		return
	}
	fmt.Fprintf(e.stderr, "note: %s is %s, which NumPy lacks: written as %s (view it with ml_dtypes)\n", clean(t.Name), t.DType, descr)
}
