package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/auto"
	"github.com/safeweights/safeweights/decode"
)

func init() {
	var (
		jsonOut, strict, optimizer, force bool
		reportPath                        string
		modelID, indexKey                 string // shards.go
	)
	c := &command{
		name:    "convert",
		args:    "IN OUT [--report FILE.json] [--strict] [--include-optimizer] [--force] [--json] [--model-id ID] [--key KEY]",
		summary: "convert BSON.jl, JLD2 or safetensors to .swt, or .swt to safetensors",
		help: `Convert reads IN, whose format is recognised by its content (BSON.jl, JLD2,
safetensors or .swt; never by its name), and writes OUT: a safetensors file
when OUT ends in .safetensors, a .swt file otherwise. Code in the source
(Julia closures, lowered code) is never run: it is dropped and listed in the
report, as are optimiser state, GPU arrays without data and other non-weights.
OUT appears only when the conversion succeeds.

A sharded safetensors checkpoint, given by its model.safetensors.index.json,
is converted into the directory OUT: one .swt file per shard and
OUT/model.swtidx, the shard index that names each by its header digest
(docs/SLICES.md), for the model --model-id, signed with --key when given
(else sign it later with 'safeweights sign OUT/model.swtidx --key KEY').`,
		example: `  safeweights convert model.bson model.swt
  safeweights convert --strict --report report.json checkpoint.jld2 model.swt
  safeweights convert model.safetensors model.swt
  safeweights convert model.swt model.safetensors
  safeweights convert --model-id acme/llm@1 --key alice.key ckpt/model.safetensors.index.json out/`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&jsonOut, "json", false, "print the conversion report as JSON")
			fs.StringVar(&reportPath, "report", "", "write the conversion report as JSON to `file`")
			fs.BoolVar(&strict, "strict", false, "fail if the source contains serialized code")
			fs.BoolVar(&force, "force", false, "replace OUT if it exists")
			fs.BoolVar(&optimizer, "include-optimizer", false, `keep optimiser state, under the "optimizer." prefix`)
			fs.StringVar(&modelID, "model-id", "", "sharded safetensors: the model `id` of the shard index (default: IN's directory name)")
			fs.StringVar(&indexKey, "key", "", "sharded safetensors: sign the shard index with this private `key`")
		},
	}
	c.run = func(e *env, args []string) error {
		pos, done, err := parseOrHelp(e, c, newFlags(c), args, 2, 2)
		if done {
			return err
		}
		in, out := pos[0], pos[1]
		if in == "-" || out == "-" {
			return usageErrorf("convert: IN and OUT must be files").withHint("conversion maps the source and renames the output into place; standard input and output cannot do that")
		}
		if isURL(in) { // remote.go
			if _, err := os.Lstat(out); err == nil && !force {
				return usageErrorf("convert: %s already exists", clean(out)).withHint("add --force to replace it")
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			b := e.newBar("convert", 0)
			var opts []convert.Option
			if b != nil {
				opts = append(opts, convert.WithProgress(b.set))
			}
			err := exportRemote(ctx, in, out, opts...)
			b.finish()
			if err != nil {
				return err
			}
			if jsonOut {
				return writeJSON(e.stdout, map[string]string{"source": in, "output": out, "source_format": "safeweights", "output_format": "safetensors"})
			}
			fmt.Fprintf(e.stdout, "exported %s to safetensors %s\n", clean(in), clean(out))
			return nil
		}
		if isSafetensorsIndex(in) { // shards.go
			return convertShardsIndexed(e, in, out, modelID, indexKey, jsonOut)
		}
		if _, err := os.Lstat(out); err == nil && !force {
			return usageErrorf("convert: %s already exists", clean(out)).withHint("add --force to replace it")
		}
		// Interrupted, the conversion stops between tensors and removes
		// its temporary file: nothing is left at OUT.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		b := e.newBar("convert", 0)
		rep, err := auto.Convert(ctx, in, out, convertOptions(strict, optimizer, b)...)
		b.finish()
		if err != nil {
			return err
		}
		if rep == nil { // an export from .swt: nothing is dropped
			if jsonOut {
				return writeJSON(e.stdout, map[string]string{"source": in, "output": out, "source_format": "safeweights", "output_format": "safetensors"})
			}
			fmt.Fprintf(e.stdout, "exported %s to safetensors %s\n", clean(in), clean(out))
			return nil
		}
		if reportPath != "" {
			var b bytes.Buffer
			if err := writeJSON(&b, rep); err != nil {
				return err
			}
			if err := os.WriteFile(reportPath, b.Bytes(), 0o644); err != nil {
				return fmt.Errorf("writing the report: %w", err)
			}
		}
		if jsonOut {
			return writeJSON(e.stdout, rep)
		}
		printReport(e.stdout, rep)
		return nil
	}
	register(c)
}

// convertOptions are the converter options of the command line, with
// progress drawn on b.
func convertOptions(strict, optimizer bool, b *bar) []convert.Option {
	// A .swt source is read unmapped, through decode's checked reads:
	// the exporter copies tensor bytes outside decode's fault guard.
	opts := []convert.Option{convert.WithDecodeOptions(decode.WithoutMmap())}
	if strict {
		opts = append(opts, convert.WithStrict())
	}
	if optimizer {
		opts = append(opts, convert.WithIncludeOptimizer())
	}
	if b != nil {
		opts = append(opts, convert.WithProgress(b.set))
	}
	return opts
}

func printReport(w io.Writer, r *convert.Report) {
	var total int64
	for _, t := range r.Tensors {
		total += t.Bytes
	}
	fmt.Fprintf(w, "converted %s (%s) to %s: %d tensors, %s\n", clean(r.Source), r.SourceFormat, clean(r.Output), len(r.Tensors), humanBytes(total))
	for _, t := range r.Tensors {
		fmt.Fprintf(w, "  %-40s %-8s %-16s %10s\n", clean(t.Name), t.DType, shapeString(t.Shape), humanBytes(t.Bytes))
	}
	if len(r.Dropped) > 0 {
		kinds := map[string]int{}
		for _, d := range r.Dropped {
			kinds[d.Kind]++
		}
		names := make([]string, 0, len(kinds))
		for k := range kinds {
			names = append(names, k)
		}
		sort.Strings(names)
		fmt.Fprintf(w, "dropped %d items:", len(r.Dropped))
		for _, k := range names {
			fmt.Fprintf(w, " %s %d", k, kinds[k])
		}
		fmt.Fprintln(w, " (see --report for each)")
	}
	if r.HasCode {
		fmt.Fprintln(w, "note: the source contains serialized code; it was not run and is not in the output")
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", clean(warn))
	}
}
