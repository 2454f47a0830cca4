package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/safeweights/safeweights/convert"
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
		fmt.Fprintf(e.stdout, "safeweights %s\nformat %s, producer %q, converters %s\n%s %s/%s\n",
			buildVersion(), formatVersion, encode.DefaultProducer, convert.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
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
		device         int
		verify, check  bool
		dryRun         bool
		jsonOut        bool
		trusted, paths string
		repeat         int
	)
	c := &command{
		name:    "load",
		args:    "FILE [--device N] [--verify] [--check] [--path P] [--repeat R] [--trusted KEYS] [--dry-run] [--json]",
		summary: "load a .swt file into GPU memory and report the throughput",
		help: `Load copies every tensor of FILE to a CUDA device, the way a program using
the gpu package would, and prints how long it took and the throughput.
With --verify every chunk digest is checked while the bytes stream to the
device; with --trusted the file must also carry a signature by a trusted key,
checked before any tensor is copied. It needs the CUDA driver (libcuda);
without one it fails with exit status 3.`,
		example: `  safeweights load model.swt
  safeweights load --device 1 --verify --json model.swt
  safeweights load --trusted alice.key.pub --verify model.swt`,
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&device, "device", 0, "CUDA device `ordinal`")
			fs.BoolVar(&verify, "verify", false, "check every chunk digest while loading")
			fs.BoolVar(&check, "check", false, "copy every tensor back and compare it with the file (a test of the loader)")
			fs.StringVar(&trusted, "trusted", "", "require a signature by one of these trusted public keys (`file or dir`)")
			fs.StringVar(&paths, "path", "auto", "how bytes reach the device: auto, mapped, direct or buffered")
			fs.BoolVar(&jsonOut, "json", false, "print the load statistics as JSON, one line per run")
			fs.BoolVar(&dryRun, "dry-run", false, "open and check FILE (header, --trusted policy) without a GPU, and say what would be loaded")
			fs.IntVar(&repeat, "repeat", 1, "load the file this many `times` in one process (for measurements)")
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
			dopts = append(dopts, decode.WithPolicy(sign.Require(kr)), decode.WithVerify(decode.VerifyLazy))
		}
		if pos[0] == "-" {
			return usageErrorf("load: FILE must be a file").withHint("the loader maps the file; standard input cannot be mapped")
		}
		if repeat < 1 {
			return usageErrorf("load: --repeat must be at least 1")
		}
		f, err := decode.Open(pos[0], dopts...)
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
		opts := []gpu.Option{gpu.WithDevice(device), gpu.WithPath(p)}
		if verify {
			opts = append(opts, gpu.WithVerify())
		}
		// Each run loads the whole file and frees it again, in one process,
		// so that repeated measurements share the driver's start-up cost.
		for run := range repeat {
			sp := e.newSpinner("load")
			m, err := gpu.Load(context.Background(), f, opts...)
			sp.finish()
			if err != nil {
				return err
			}
			last := run == repeat-1
			if check && last {
				if err := m.Check(context.Background(), f); err != nil {
					m.Close()
					return err
				}
			}
			sum := m.Summary(pos[0], false)
			sum.Checked = check && last
			m.Close()
			if jsonOut {
				if err := writeJSONLine(e.stdout, sum); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(e.stdout, "loaded %s: %d tensors, %s to device %d (%s)\n", clean(pos[0]), f.NumTensors(), humanBytes(sum.Bytes), sum.Device, clean(sum.DeviceName))
			fmt.Fprintf(e.stdout, "path %s", sum.Path)
			if sum.Note != "" {
				fmt.Fprintf(e.stdout, " (%s)", clean(sum.Note))
			}
			fmt.Fprintf(e.stdout, "; setup %.3fs, load %.3fs, %.2f GB/s; digests checked: %v; copied back and compared: %v\n",
				sum.SetupSeconds, sum.Seconds, sum.GBps, sum.Verified, sum.Checked)
		}
		return nil
	}
	register(c)
}

func init() {
	var size string
	c := &command{
		name:    "bench-gpu-write",
		args:    "DIR [--size 4GiB]",
		summary: "write the synthetic model of the GPU benchmark",
		help: `Bench-gpu-write writes DIR/bench-<size>.swt: fp16 tensors of 8192 x 8192
(128 MiB each) with deterministic contents, the same model that
bench/gpu/bench_gpu.py writes as .safetensors. It prints the path.`,
		example: `  safeweights bench-gpu-write /data --size 4GiB`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&size, "size", "4GiB", "model `size`: a whole number of GiB, such as 4GiB or 16GiB")
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
		sp := e.newSpinner("write")
		path, err := gpubench.WriteDir(pos[0], n<<30)
		sp.finish()
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, path)
		return nil
	}
	register(c)
}

// satAdd adds two non-negative sizes, saturating at the largest int64.
func satAdd(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}
