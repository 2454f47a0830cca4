// Command swtbench runs the safeweights benchmarks side by side with their
// peers in one process and prints the results and the ratios that
// docs/BENCHMARKS.md records. Sizes come from environment variables (see
// bench/run.sh); every file it writes lives in a temporary directory that it
// removes.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/safeweights/safeweights/bench"
	"github.com/safeweights/safeweights/decode"
)

func main() {
	testing.Init()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "swtbench:", err)
		os.Exit(1)
	}
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// size parses 4GiB, 256MiB, 4096 and the like.
func size(key, def string) int64 {
	s := env(key, def)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "swtbench: %s=%q is not a size\n", key, env(key, def))
		os.Exit(2)
	}
	return n * mult
}

func ints(key, def string) []int64 {
	var out []int64
	for _, f := range strings.Split(env(key, def), ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "swtbench: %s=%q is not a list of positive integers\n", key, env(key, def))
			os.Exit(2)
		}
		out = append(out, n)
	}
	return out
}

// measure runs fn as a testing.B benchmark for benchtime (a duration or Nx).
func measure(benchtime string, fn func(*testing.B)) testing.BenchmarkResult {
	flag.Set("test.benchtime", benchtime)
	return testing.Benchmark(fn)
}

func line(name string, r testing.BenchmarkResult) {
	extra := ""
	if r.Bytes > 0 {
		extra = fmt.Sprintf("  %8.0f MB/s", mbps(r))
	}
	if r.MemAllocs > 0 {
		extra += fmt.Sprintf("  %10d B/op  %8d allocs/op", r.AllocedBytesPerOp(), r.AllocsPerOp())
	}
	fmt.Printf("%-44s %8d x %14s/op%s\n", name, r.N, dur(r.NsPerOp()), extra)
}

func mbps(r testing.BenchmarkResult) float64 {
	return float64(r.Bytes) * float64(r.N) / r.T.Seconds() / 1e6
}

func dur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.2fµs", float64(ns)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(ns)/1e3)
	default:
		return fmt.Sprintf("%.1fms", float64(ns)/1e6)
	}
}

func ratio(name string, x float64, goal string) {
	fmt.Printf("RATIO %-48s %8.2f   %s\n", name, x, goal)
}

func run() error {
	var (
		counts    = ints("SWT_BENCH_TENSORS", "10,1000,100000")
		shape     = ints("SWT_BENCH_SHAPE", "64,64")
		openSmall = size("SWT_BENCH_OPEN_SMALL", "4MiB")
		openBig   = size("SWT_BENCH_OPEN_BIG", "4GiB")
		model     = size("SWT_BENCH_MODEL", "4GiB")
		tensor    = size("SWT_BENCH_TENSOR", "256MiB")
		benchtime = env("SWT_BENCH_TIME", "300ms")
		bigtime   = env("SWT_BENCH_BIGTIME", "1x")
		only      = env("SWT_BENCH_ONLY", "open,size,encode,verify")
	)
	dir, err := os.MkdirTemp(env("SWT_BENCH_DIR", ""), "swtbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("swtbench: %s %s/%s GOMAXPROCS=%d, dir %s, %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.GOMAXPROCS(0), dir, time.Now().UTC().Format(time.RFC3339))

	if strings.Contains(only, "open") {
		fmt.Printf("\n== open and validate the header (F32 tensors of shape %v, data a hole)\n", shape)
		for _, n := range counts {
			l := bench.Layout{Count: int(n), Shape: shape}
			swt := filepath.Join(dir, "h.swt")
			st := filepath.Join(dir, "h.safetensors")
			gg := filepath.Join(dir, "h.gguf")
			if err := bench.WriteSWT(swt, l, 1<<20); err != nil {
				return err
			}
			if err := bench.WriteSafetensors(st, l); err != nil {
				return err
			}
			if err := bench.WriteGGUF(gg, l); err != nil {
				return err
			}
			rs := measure(benchtime, bench.OpenSWT(swt))
			line(fmt.Sprintf("open/n=%d/safeweights", n), rs)
			rt := measure(benchtime, bench.OpenSafetensors(st))
			line(fmt.Sprintf("open/n=%d/safetensors", n), rt)
			rg := measure(benchtime, bench.OpenGGUF(gg))
			line(fmt.Sprintf("open/n=%d/gguf", n), rg)
			ratio(fmt.Sprintf("open n=%d: safetensors / safeweights", n), float64(rt.NsPerOp())/float64(rs.NsPerOp()), ">= 20 at n >= 1000")
			ratio(fmt.Sprintf("open n=%d: gguf-parser / safeweights", n), float64(rg.NsPerOp())/float64(rs.NsPerOp()), "")
			for _, p := range []string{swt, st, gg} {
				os.Remove(p)
			}
		}
	}

	if strings.Contains(only, "size") {
		fmt.Printf("\n== open cost against data size (16 tensors, 1 MiB chunks, data a hole)\n")
		var res [2]testing.BenchmarkResult
		for i, total := range []int64{openSmall, openBig} {
			l := bench.Layout{Count: 16, Shape: []int64{total / 16 / 4}}
			p := filepath.Join(dir, "s.swt")
			if err := bench.WriteSWT(p, l, 1<<20); err != nil {
				return err
			}
			res[i] = measure(benchtime, bench.OpenSWT(p))
			line(fmt.Sprintf("open/data=%dMiB", total>>20), res[i])
			os.Remove(p)
		}
		ratio(fmt.Sprintf("open %dMiB / open %dMiB", openBig>>20, openSmall>>20),
			float64(res[1].NsPerOp())/float64(res[0].NsPerOp()), "<= 2")
	}

	if !strings.Contains(only, "encode") && !strings.Contains(only, "verify") {
		return nil
	}
	src := make([]byte, min(tensor, model))
	bench.Pattern(src, 1)
	if strings.Contains(only, "encode") {
		fmt.Printf("\n== encode %d MiB as %d MiB tensors to %s (Create, Add, Close with fsync)\n", model>>20, len(src)>>20, dir)
		re := measure(bigtime, bench.Encode(dir, src, model))
		line("encode", re)
		rw := measure(bigtime, bench.WriteSync(dir, src, model))
		line("write+fsync (disk ceiling)", rw)
		ratio("encode GB/s", mbps(re)/1e3, ">= 1")
		ratio("encode / plain write+fsync", mbps(re)/mbps(rw), "")
	}
	if strings.Contains(only, "verify") {
		fmt.Printf("\n== verify %d MiB (warm page cache, mmap), %d workers\n", model>>20, runtime.GOMAXPROCS(0))
		path, err := bench.EncodeModel(dir, src, model)
		if err != nil {
			return err
		}
		defer os.Remove(path)
		f, err := decode.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w := runtime.GOMAXPROCS(0)
		// Touch every page once so that all three read the page cache alike.
		measure("1x", bench.BLAKE3Whole(f))
		rv := measure(bigtime, bench.Verify(f, 0))
		line("Verify", rv)
		rc := measure(bigtime, bench.BLAKE3Chunks(f, w))
		line(fmt.Sprintf("blake3.Sum256 per 1 MiB chunk, %d goroutines", w), rc)
		rw := measure(bigtime, bench.BLAKE3Whole(f))
		line("blake3.Sum256 of the whole region", rw)
		r1 := measure(bigtime, bench.BLAKE3Chunks(f, 1))
		line("blake3.Sum256 per 1 MiB chunk, 1 goroutine", r1)
		ratio("Verify / blake3 per-chunk all cores", mbps(rv)/mbps(rc), ">= 0.85")
		ratio("Verify / blake3 one call", mbps(rv)/mbps(rw), ">= 0.85")
		ratio("blake3 all cores / 1 goroutine", mbps(rc)/mbps(r1), "")
	}
	return nil
}
