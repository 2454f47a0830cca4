package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/safeweights/safeweights/convert/auto"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/gpu"
	"github.com/safeweights/safeweights/gpu/gpubench"
	"github.com/safeweights/safeweights/sign"
)

// formatVersion is the version of the file format this build writes.
const formatVersion = "1.0"

func init() {
	c := &command{
		name:    "version",
		args:    "",
		summary: "print the versions of safeweights and its file format",
		help:    "Version prints the program's version, the file format version it writes and the Go version it was built with.",
		example: "  safeweights version",
	}
	c.run = func(e *env, args []string) error {
		_, done, err := parseOrHelp(e, c, newFlags(c), args, 0, 0)
		if done {
			return err
		}
		fmt.Fprintf(e.stdout, "safeweights %s\nformat %s, producer %q\n", buildVersion(), formatVersion, encode.DefaultProducer)
		// The names that provenance and conversion reports record.
		for _, conv := range auto.Converters() {
			fmt.Fprintf(e.stdout, "converter %s\n", conv)
		}
		fmt.Fprintf(e.stdout, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
	register(c)
}

// buildVersion is the module version, with the VCS revision and a dirty
// flag when the build recorded them; "devel" when nothing is known.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", dirty"
			}
		}
	}
	if rev != "" {
		v += " (" + rev + dirty + ")"
	}
	return v
}

func init() {
	var (
		device                              int
		verify, check                       bool
		dryRun                              bool
		jsonOut                             bool
		trusted, paths                      string
		repeat                              int
		windows, depths, streamsF, workersF string
		tpRank, tpWorld                     int
		tpLayout                            string
	)
	c := &command{
		name:    "load",
		args:    "FILE [--device N] [--verify] [--check] [--path P] [--tp-rank R --tp-world W [--tp-layout L]] [--repeat R] [--window S,...] [--depth N,...] [--streams N,...] [--workers N,...] [--trusted KEYS] [--dry-run] [--json]",
		summary: "load a .swt file into GPU memory and report the throughput",
		help: `Load copies every tensor of FILE to a CUDA device, the way a program using
the gpu package would, and prints how long it took and the throughput.
With --verify every chunk digest is checked while the bytes stream to the
device; with --trusted the file must also carry a signature by a trusted key,
checked before any tensor is copied. It needs the CUDA driver (libcuda);
without one it fails with exit status 3.

--window, --depth, --streams and --workers take comma-separated lists: the
loader runs every combination (each --repeat times) in one process and
prints one result per run, so a sweep shares the driver's start-up cost.
The JSON result says how resident the file was in the page cache before
the run and where the time went (registering, reading, hashing, copying).

With --tp-rank and --tp-world only that rank's share of a tensor-parallel
group goes to the device: each tensor split along its first dimension
(--tp-layout rows) or its last (columns; vectors are then replicated), as
numpy.array_split splits it, or as a layout file FILE.json says per name
pattern (docs/SLICES.md). Only the chunks each slice touches are read,
and every one is hashed in the pinned buffer it is copied from, whatever
--verify says. FILE may also be a shard index, loaded whole or by rank.`,
		example: `  safeweights load model.swt
  safeweights load --device 1 --verify --json model.swt
  safeweights load --trusted alice.key.pub --verify model.swt
  safeweights load --tp-rank 3 --tp-world 8 --device 3 s3://models/llama/index.json`,
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&device, "device", 0, "CUDA device `ordinal`")
			fs.BoolVar(&verify, "verify", false, "check every chunk digest while loading")
			fs.BoolVar(&check, "check", false, "copy every tensor back and compare it with the file (a test of the loader)")
			fs.StringVar(&trusted, "trusted", "", "require a signature by one of these trusted public keys (`file or dir`)")
			fs.StringVar(&paths, "path", "auto", "how bytes reach the device: auto, mapped, direct or buffered")
			fs.BoolVar(&jsonOut, "json", false, "print the load statistics as JSON, one line per run")
			fs.BoolVar(&dryRun, "dry-run", false, "open and check FILE (header, --trusted policy) without a GPU, and say what would be loaded")
			fs.IntVar(&repeat, "repeat", 1, "load the file this many `times` in one process (for measurements)")
			fs.StringVar(&windows, "window", "", "window `sizes` to sweep, such as 8MiB,32MiB (default 32MiB)")
			fs.StringVar(&depths, "depth", "", "windows in flight to sweep, such as 4,8 (default 8)")
			fs.StringVar(&streamsF, "streams", "", "copy streams to sweep, such as 1,2,4 (default 2)")
			fs.StringVar(&workersF, "workers", "", "staging goroutines to sweep (default: by path)")
			fs.IntVar(&tpRank, "tp-rank", 0, "load only this `rank`'s slices of a tensor-parallel group (with --tp-world)")
			fs.IntVar(&tpWorld, "tp-world", 0, "the tensor-parallel group's `size`")
			fs.StringVar(&tpLayout, "tp-layout", "rows", "split tensors along their first dimension (rows), their last (columns), or per a layout `file` FILE.json")
		},
	}
	c.run = func(e *env, args []string) error {
		pos, done, err := parseOrHelp(e, c, newFlags(c), args, 1, 1)
		if done {
			return err
		}
		p, ok := gpu.ParsePath(paths)
		if !ok {
			return usageErrorf("load: unknown --path %q", paths).withHint("use auto, mapped, direct or buffered")
		}
		var dopts []decode.Option
		if trusted != "" {
			kr, err := sign.LoadKeyRing(trusted)
			if err != nil {
				return err
			}
			// The loader checks data digests itself under --verify; the
			// policy checks the header signature before any tensor is seen.
			p, err := requirePolicy(kr, pos[0]) // remote.go
			if err != nil {
				return err
			}
			dopts = append(dopts, decode.WithPolicy(p), decode.WithVerify(decode.VerifyLazy))
		}
		if pos[0] == "-" {
			return usageErrorf("load: FILE must be a file").withHint("the loader maps the file; standard input cannot be mapped")
		}
		if repeat < 1 {
			return usageErrorf("load: --repeat must be at least 1")
		}
		sweep, err := loadSweep(windows, depths, streamsF, workersF)
		if err != nil {
			return err
		}
		layout, err := parseTPFlags(tpRank, tpWorld, tpLayout)
		if err != nil {
			return err
		}
		if layout != nil || isShardIndex(pos[0]) {
			return loadSlices(e, pos[0], trusted, dopts, tpRank, max(tpWorld, 1), layout, loadFlags{
				device: device, path: p, verify: verify, check: check, dryRun: dryRun, jsonOut: jsonOut, repeat: repeat, sweep: sweep,
			})
		}
		f, err := openSWT(e, pos[0], false, dopts...)
		if err != nil {
			return err
		}
		defer f.Close()
		if dryRun {
			var total int64
			for t := range f.All() {
				total = satAdd(total, t.Length)
			}
			fmt.Fprintf(e.stdout, "would load %s: %d tensors, %s (dry run: no device used)\n", clean(pos[0]), f.NumTensors(), humanBytes(total))
			return nil
		}
		base := []gpu.Option{gpu.WithDevice(device), gpu.WithPath(p)}
		if verify {
			base = append(base, gpu.WithVerify())
		}
		for ci, conf := range sweep {
			opts := append(append([]gpu.Option{}, base...), conf.opts...)
			// Each run loads the whole file and frees it again, in one
			// process, so that repeated measurements share the driver's
			// start-up cost.
			for run := range repeat {
				b := e.newBar("load", 0)
				m, err := gpu.Load(context.Background(), f, append(opts, gpu.WithProgress(b.set))...)
				b.finish()
				if err != nil {
					return err
				}
				last := run == repeat-1 && ci == len(sweep)-1
				if check && last {
					if err := m.Check(context.Background(), f); err != nil {
						m.Close()
						return err
					}
				}
				sum := m.Summary(pos[0], false)
				sum.Checked = check && last
				if err := m.Close(); err != nil {
					return err
				}
				if jsonOut {
					if err := writeJSONLine(e.stdout, loadResult{Summary: sum, Config: conf.desc}); err != nil {
						return err
					}
					continue
				}
				printLoad(e, pos[0], f.NumTensors(), sum, conf.desc, len(sweep) > 1)
			}
		}
		return nil
	}
	register(c)
}

func init() {
	var size, shape string
	c := &command{
		name:    "bench-gpu-write",
		args:    "DIR [--size 4GiB] [--shape 8192x8192]",
		summary: "write the synthetic model of the GPU benchmark",
		help: `Bench-gpu-write writes DIR/bench-<size>.swt: fp16 tensors of 8192 x 8192
(128 MiB each) with deterministic contents, the same model that
bench/gpu/bench_gpu.py writes as .safetensors. It prints the path.
--shape keeps the number of tensors of --size but makes each tensor
smaller: the tiny models of the benchmark's dry run (DRYRUN=1).`,
		example: `  safeweights bench-gpu-write /data --size 4GiB`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&size, "size", "4GiB", "model `size`: a whole number of GiB, such as 4GiB or 16GiB")
			fs.StringVar(&shape, "shape", "8192x8192", "tensor `shape` ROWSxCOLS (smaller ones for dry runs)")
		},
	}
	c.run = func(e *env, args []string) error {
		pos, done, err := parseOrHelp(e, c, newFlags(c), args, 1, 1)
		if done {
			return err
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(size, "GiB"), 10, 64)
		if err != nil || n < 1 || n > 1024 {
			return usageErrorf("bench-gpu-write: --size %q is not a whole number of GiB in [1, 1024]", size)
		}
		var rows, cols int
		if _, err := fmt.Sscanf(shape, "%dx%d", &rows, &cols); err != nil || rows < 1 || cols < 1 || rows > gpubench.Rows || cols > gpubench.Cols || rows*cols%4 != 0 {
			return usageErrorf("bench-gpu-write: --shape %q is not ROWSxCOLS within 8192x8192 with ROWS*COLS a multiple of 4", shape)
		}
		sp := e.newSpinner("write")
		var path string
		if rows == gpubench.Rows && cols == gpubench.Cols {
			path, err = gpubench.WriteDir(pos[0], n<<30)
		} else {
			count, _ := gpubench.Count(n << 30)
			path = filepath.Join(pos[0], gpubench.FileName(n<<30))
			err = gpubench.Write(path, count, rows, cols)
		}
		sp.finish()
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, path)
		return nil
	}
	register(c)
}

// loadResult is one line of load --json: the summary and the configuration
// of the sweep it ran with.
type loadResult struct {
	gpu.Summary
	Config string `json:"config"`
	// Rank and World: the tensor-parallel share loaded, if any.
	Rank  *int `json:"tp_rank,omitempty"`
	World int  `json:"tp_world,omitempty"`
}

type loadConf struct {
	desc string
	opts []gpu.Option
}

// loadSweep returns every combination of the listed settings; an empty list
// keeps the loader's default.
func loadSweep(windows, depths, streams, workers string) ([]loadConf, error) {
	confs := []loadConf{{desc: "default"}}
	axis := func(flagName, list string, parse func(string) (gpu.Option, error)) error {
		if list == "" {
			return nil
		}
		var next []loadConf
		for _, v := range strings.Split(list, ",") {
			o, err := parse(strings.TrimSpace(v))
			if err != nil {
				return usageErrorf("load: --%s %q: %v", flagName, v, err)
			}
			for _, c := range confs {
				d := flagName + "=" + strings.TrimSpace(v)
				if c.desc != "default" {
					d = c.desc + " " + d
				}
				next = append(next, loadConf{desc: d, opts: append(append([]gpu.Option{}, c.opts...), o)})
			}
		}
		confs = next
		return nil
	}
	intOpt := func(mk func(int) gpu.Option) func(string) (gpu.Option, error) {
		return func(v string) (gpu.Option, error) {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, err
			}
			o := mk(n)
			if err := gpu.ValidateOptions(o); err != nil {
				return nil, err
			}
			return o, nil
		}
	}
	if err := axis("window", windows, func(v string) (gpu.Option, error) {
		n, err := parseByteSize(v)
		if err != nil {
			return nil, err
		}
		o := gpu.WithWindowSize(n)
		if err := gpu.ValidateOptions(o); err != nil {
			return nil, err
		}
		return o, nil
	}); err != nil {
		return nil, err
	}
	if err := axis("depth", depths, intOpt(gpu.WithDepth)); err != nil {
		return nil, err
	}
	if err := axis("streams", streams, intOpt(gpu.WithStreams)); err != nil {
		return nil, err
	}
	if err := axis("workers", workers, intOpt(gpu.WithWorkers)); err != nil {
		return nil, err
	}
	return confs, nil
}

// parseByteSize reads a size such as 4096, 512KiB, 8MiB or 1GiB.
func parseByteSize(v string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		s string
		m int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(v, u.s) {
			v, mult = strings.TrimSuffix(v, u.s), u.m
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > 1<<40/mult {
		return 0, fmt.Errorf("not a size such as 8MiB")
	}
	return n * mult, nil
}

// satAdd adds two non-negative sizes, saturating at the largest int64.
func satAdd(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}
