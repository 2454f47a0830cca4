package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/auto"
	"github.com/safeweights/safeweights/decode"
)

func init() {
	var jsonOut, exitCode bool
	c := &command{
		name:    "diff",
		args:    "A B [--json] [--exit-code]",
		summary: "compare the tensors of two model files of any supported format",
		help: `Diff lists the tensors added (in B only), removed (in A only) and changed
(dtype, shape or data) between two model files. A and B may be of any
supported format (.swt, safetensors, BSON.jl, JLD2): tensor data are compared
by the SHA-256 of their canonical row-major bytes, so a converted file equals
its source. A .swt file's chunk digests are checked as it is read.

Diff exits 0 whether or not the files differ, unless --exit-code is given:
then it exits 1 when they differ.`,
		example: `  safeweights diff model.bson model.swt
  safeweights diff --json old.swt new.swt
  safeweights diff --exit-code a.safetensors b.swt && echo same`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&jsonOut, "json", false, "print JSON")
			fs.BoolVar(&exitCode, "exit-code", false, "exit 1 when the files differ")
		},
	}
	c.run = func(e *env, args []string) error {
		pos, done, err := parseOrHelp(e, c, newFlags(c), args, 2, 2)
		if done {
			return err
		}
		var sums [2]*auto.Summary
		for i, p := range pos {
			if isURL(p) { // remote.go: a .swt file on a server
				sums[i], err = summarizeRemote(p)
			} else {
				sums[i], err = auto.Summarize(context.Background(), p, convert.WithDecodeOptions(decode.WithoutMmap()))
			}
			if err != nil {
				return fmt.Errorf("%s: %w", clean(p), err)
			}
		}
		d := auto.Diff(sums[0], sums[1])
		if jsonOut {
			out := struct {
				A       string `json:"a"`
				AFormat string `json:"a_format"`
				B       string `json:"b"`
				BFormat string `json:"b_format"`
				Equal   bool   `json:"equal"`
				*auto.Difference
			}{pos[0], sums[0].Format, pos[1], sums[1].Format, d.Equal(), d}
			if err := writeJSON(e.stdout, out); err != nil {
				return err
			}
		} else {
			w := e.stdout
			fmt.Fprintf(w, "--- %s (%s)\n+++ %s (%s)\n", clean(pos[0]), sums[0].Format, clean(pos[1]), sums[1].Format)
			for _, t := range d.Removed {
				fmt.Fprintf(w, "- %s %s %s\n", clean(t.Name), t.DType, shapeString(t.Shape))
			}
			for _, t := range d.Added {
				fmt.Fprintf(w, "+ %s %s %s\n", clean(t.Name), t.DType, shapeString(t.Shape))
			}
			for _, ch := range d.Changed {
				fmt.Fprintf(w, "~ %s: %s", clean(ch.Name), strings.Join(ch.What, ", "))
				if ch.A.DType != ch.B.DType || len(ch.What) > 0 && ch.What[0] != "data" {
					fmt.Fprintf(w, " (%s %s -> %s %s)", ch.A.DType, shapeString(ch.A.Shape), ch.B.DType, shapeString(ch.B.Shape))
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "%d added, %d removed, %d changed, %d unchanged\n", len(d.Added), len(d.Removed), len(d.Changed), d.Unchanged)
		}
		if exitCode && !d.Equal() {
			return errSilent(exitInvalid)
		}
		return nil
	}
	register(c)
}
