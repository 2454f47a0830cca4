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
	"github.com/safeweights/safeweights/format"
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

// best runs each of fns rounds times, interleaved so that a burst of load
// from other processes hits all of them alike, and keeps for each the run
// with the least wall time per op and, separately, the least CPU time.
func best(rounds int, benchtime string, fns ...func(*testing.B)) []result {
	out := make([]result, len(fns))
	for r := 0; r < rounds; r++ {
		for i, fn := range fns {
			res := measure(benchtime, fn)
			if r == 0 || res.NsPerOp() < out[i].NsPerOp() {
				out[i].BenchmarkResult = res
			}
			if c := res.Extra["cpu-ns/op"]; r == 0 || c < out[i].cpu {
				out[i].cpu = c
			}
		}
	}
	return out
}

type result struct {
	testing.BenchmarkResult
	cpu float64 // least CPU ns/op over the rounds
}

func (r result) wall() float64 { return float64(r.NsPerOp()) }

func line(name string, r result) {
	extra := fmt.Sprintf("  cpu %11s/op", dur(int64(r.cpu)))
	if r.Bytes > 0 {
		extra = fmt.Sprintf("  %8.0f MB/s", mbps(r))
	}
	if r.MemAllocs > 0 {
		extra += fmt.Sprintf("  %10d B/op  %8d allocs/op", r.AllocedBytesPerOp(), r.AllocsPerOp())
	}
	fmt.Printf("%-44s %8d x %11s/op%s\n", name, r.N, dur(r.NsPerOp()), extra)
}

func mbps(r result) float64 {
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
	fmt.Printf("RATIO %-52s %8.2f   %s\n", name, x, goal)
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
		rounds    = int(size("SWT_BENCH_ROUNDS", "3"))
		bigRounds = int(size("SWT_BENCH_BIGROUNDS", "2"))
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
			if err := bench.WriteSWT(swt, l, format.DefaultChunkSize); err != nil {
				return err
			}
			if err := bench.WriteSafetensors(st, l); err != nil {
				return err
			}
			if err := bench.WriteGGUF(gg, l); err != nil {
				return err
			}
			r := best(rounds, benchtime, bench.OpenSWT(swt), bench.OpenSafetensors(st), bench.OpenGGUF(gg))
			line(fmt.Sprintf("open/n=%d/safeweights", n), r[0])
			line(fmt.Sprintf("open/n=%d/safetensors", n), r[1])
			line(fmt.Sprintf("open/n=%d/gguf", n), r[2])
			ratio(fmt.Sprintf("open n=%d: safetensors / safeweights (wall)", n), r[1].wall()/r[0].wall(), ">= 20 at n >= 1000")
			ratio(fmt.Sprintf("open n=%d: safetensors / safeweights (cpu)", n), r[1].cpu/r[0].cpu, ">= 20 at n >= 1000")
			ratio(fmt.Sprintf("open n=%d: gguf-parser / safeweights (wall)", n), r[2].wall()/r[0].wall(), "")
			ratio(fmt.Sprintf("open n=%d: gguf-parser / safeweights (cpu)", n), r[2].cpu/r[0].cpu, "")
			for _, p := range []string{swt, st, gg} {
				os.Remove(p)
			}
		}
	}

	if strings.Contains(only, "size") {
		fmt.Printf("\n== open cost against data size (16 tensors, default 4 MiB chunks, data a hole)\n")
		var paths [2]string
		var fns [2]func(*testing.B)
		for i, total := range []int64{openSmall, openBig} {
			l := bench.Layout{Count: 16, Shape: []int64{total / 16 / 4}}
			paths[i] = filepath.Join(dir, fmt.Sprintf("s%d.swt", i))
			if err := bench.WriteSWT(paths[i], l, format.DefaultChunkSize); err != nil {
				return err
			}
			fns[i] = bench.OpenSWT(paths[i])
		}
		r := best(rounds, benchtime, fns[:]...)
		line(fmt.Sprintf("open/data=%dMiB", openSmall>>20), r[0])
		line(fmt.Sprintf("open/data=%dMiB", openBig>>20), r[1])
		ratio(fmt.Sprintf("open %dMiB / open %dMiB (wall)", openBig>>20, openSmall>>20), r[1].wall()/r[0].wall(), "<= 2")
		ratio(fmt.Sprintf("open %dMiB / open %dMiB (cpu)", openBig>>20, openSmall>>20), r[1].cpu/r[0].cpu, "<= 2")
		for _, p := range paths {
			os.Remove(p)
		}
	}

	if !strings.Contains(only, "encode") && !strings.Contains(only, "verify") {
		return nil
	}
	src := make([]byte, min(tensor, model))
	bench.Pattern(src, 1)
	if strings.Contains(only, "encode") {
		// Large tensors, then the same model as 1 MiB tensors: one digest
		// chunk per tensor, where hashing must split a chunk to use the cores.
		for _, src := range [][]byte{src, src[:min(len(src), 1<<20)]} {
			fmt.Printf("\n== encode %d MiB as %d MiB tensors to %s (Create, Add, Close with fsync)\n", model>>20, len(src)>>20, dir)
			w := runtime.GOMAXPROCS(0)
			r := best(bigRounds, bigtime, bench.Encode(dir, src, model), bench.WriteSync(dir, src, model), bench.BLAKE3Memory(src, model, w))
			line("encode", r[0])
			line("write+fsync (disk ceiling)", r[1])
			line(fmt.Sprintf("blake3 of the same 4 MiB chunks from memory, %d goroutines (hash ceiling)", w), r[2])
			ratio("encode GB/s", mbps(r[0])/1e3, "")
			ratio("encode / plain write+fsync", mbps(r[0])/mbps(r[1]), "")
			ratio("encode / blake3 all cores", mbps(r[0])/mbps(r[2]), "")
			ratio("encode / slower of the two", mbps(r[0])/min(mbps(r[1]), mbps(r[2])), ">= 0.8")
		}
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
		r := best(bigRounds, bigtime, bench.Verify(f, 0), bench.BLAKE3Chunks(f, w), bench.BLAKE3Whole(f), bench.BLAKE3Chunks(f, 1))
		line("Verify", r[0])
		line(fmt.Sprintf("blake3.Sum256 per 1 MiB chunk, %d goroutines", w), r[1])
		line("blake3.Sum256 of the whole region", r[2])
		line("blake3.Sum256 per 1 MiB chunk, 1 goroutine", r[3])
		ratio("Verify / blake3 per-chunk all cores", mbps(r[0])/mbps(r[1]), ">= 0.85")
		ratio("Verify / blake3 one call", mbps(r[0])/mbps(r[2]), ">= 0.85")
		ratio("blake3 per-chunk all cores / 1 goroutine", mbps(r[1])/mbps(r[3]), "")
		ratio("Verify cpu / blake3 per-chunk cpu", r[0].cpu/r[1].cpu, "")
	}
	return nil
}
