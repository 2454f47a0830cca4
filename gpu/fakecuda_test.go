//go:build linux && (amd64 || arm64)

package gpu

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ebitengine/purego"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/tp"
)

// The tests in this file load the real binding (gpu/internal/cuda, through
// purego) against a fake libcuda.so.1 built from internal/fakecuda/fake.c
// with the C compiler, where there is one. The fake enforces the driver
// API's rules (per-thread current context, async-copy lifetimes,
// registration rules) and counts leaks; see the comment at its top.

// fakeDriver is the built library and its control functions.
type fakeDriver struct {
	path  string
	log   string
	fail  func(name string, n int64)
	calls func(name string) uint64
	stats func(out *[9]uint64)
	reset func()
	set   func(name string, v int64)
}

// fakeStats are the fake's counters (fakecuda_stats).
type fakeStats struct {
	violations, allocs, regs, pinned, streams, events, ctxRefs, pending, pageable uint64
}

// restart forgets the fake's state and log, as a new process would start.
func (d *fakeDriver) restart() {
	d.reset()
	_ = os.Truncate(d.log, 0)
}

func (d *fakeDriver) read() fakeStats {
	var o [9]uint64
	d.stats(&o)
	return fakeStats{o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[8]}
}

var fakeLib struct {
	once sync.Once
	dir  string
	drv  *fakeDriver
	err  error
	skip string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fakeLib.dir != "" {
		os.RemoveAll(fakeLib.dir)
	}
	os.Exit(code)
}

// fakeCUDA builds the fake driver once per test binary, or skips the test
// where no C compiler exists.
func fakeCUDA(t *testing.T) *fakeDriver {
	t.Helper()
	fakeLib.once.Do(func() {
		cc := os.Getenv("CC")
		if cc == "" {
			for _, c := range []string{"cc", "gcc"} {
				if _, err := exec.LookPath(c); err == nil {
					cc = c
					break
				}
			}
		}
		if cc == "" {
			fakeLib.skip = "no C compiler (cc or gcc) to build the fake CUDA driver"
			return
		}
		dir, err := os.MkdirTemp("", "fakecuda")
		if err != nil {
			fakeLib.err = err
			return
		}
		fakeLib.dir = dir
		lib := filepath.Join(dir, "libcuda.so.1")
		out, err := exec.Command(cc, "-O1", "-Wall", "-shared", "-fPIC", "-o", lib, filepath.Join("internal", "fakecuda", "fake.c"), "-lpthread").CombinedOutput()
		if err != nil {
			fakeLib.err = fmt.Errorf("building the fake driver: %v\n%s", err, out)
			return
		}
		h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err != nil {
			fakeLib.err = err
			return
		}
		d := &fakeDriver{path: lib, log: filepath.Join(dir, "fake.log")}
		purego.RegisterLibFunc(&d.fail, h, "fakecuda_fail")
		purego.RegisterLibFunc(&d.calls, h, "fakecuda_calls")
		purego.RegisterLibFunc(&d.stats, h, "fakecuda_stats")
		purego.RegisterLibFunc(&d.reset, h, "fakecuda_reset")
		purego.RegisterLibFunc(&d.set, h, "fakecuda_set")
		var setLog func(string)
		purego.RegisterLibFunc(&setLog, h, "fakecuda_log")
		setLog(d.log)
		// Registrations must cover whole pages: the loader rounds them.
		d.set("strict_align", 1)
		fakeLib.drv = d
	})
	if fakeLib.skip != "" {
		t.Skip(fakeLib.skip)
	}
	if fakeLib.err != nil {
		t.Fatal(fakeLib.err)
	}
	return fakeLib.drv
}

// logTail returns the last lines of the fake's log, for a failure message.
func (d *fakeDriver) logTail() string {
	b, _ := os.ReadFile(d.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var keep []string
	for _, l := range lines {
		if strings.Contains(l, "VIOLATION") || strings.Contains(l, "warning") {
			keep = append(keep, l)
		}
	}
	if len(keep) > 10 {
		keep = keep[len(keep)-10:]
	}
	return strings.Join(keep, "\n")
}

// driverCalls are the driver functions the loader binds and calls.
var driverCalls = []string{
	"cuDeviceGet", "cuDeviceGetName", "cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRelease_v2",
	"cuCtxSetCurrent", "cuCtxGetCurrent", "cuMemAlloc_v2", "cuMemFree_v2",
	"cuMemHostRegister_v2", "cuMemHostUnregister", "cuMemHostAlloc", "cuMemFreeHost",
	"cuMemcpyHtoDAsync_v2", "cuMemcpyDtoH_v2", "cuStreamCreate", "cuStreamDestroy_v2",
	"cuStreamSynchronize", "cuEventCreate", "cuEventRecord", "cuEventSynchronize", "cuEventDestroy_v2",
}

// writeFakeFile writes a .swt with raw tensors of odd sizes spanning many
// windows, an empty one and a compressed one.
func writeFakeFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.swt")
	w, err := encode.Create(path, encode.WithAlignment(4096), encode.WithChunkSize(16<<10))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	add := func(name string, n int, opts ...encode.TensorOption) {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32() & 0x1F)
		}
		if err := w.Add(name, format.U8, []int64{int64(n)}, b, opts...); err != nil {
			t.Fatal(err)
		}
	}
	add("a", 5)
	add("b", 300001)
	add("empty", 0)
	add("z", 70000, encode.Compress(1))
	add("c", 4096)
	add("d", 500003)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

type fakeRun struct {
	path   Path
	verify bool
	per    bool
}

func (r fakeRun) String() string {
	return fmt.Sprintf("%v/verify=%v/per=%v", r.path, r.verify, r.per)
}

func (r fakeRun) options(lib string) []Option {
	o := []Option{WithLibrary(lib), WithPath(r.path), WithWindowSize(128 << 10), WithDepth(3), WithStreams(2), WithWorkers(2), WithHashers(2)}
	if r.verify {
		o = append(o, WithVerify())
	}
	if r.per {
		o = append(o, WithAllocPerTensor())
	}
	return o
}

// loadCheckClose loads f, compares the device bytes with the file (copied
// back through the driver) and closes the model; it returns the first error.
func loadCheckClose(f *decode.File, opts []Option) (*Stats, error) {
	m, err := Load(context.Background(), f, opts...)
	if err != nil {
		return nil, err
	}
	st := m.Stats
	err = m.Check(context.Background(), f)
	return &st, cmpOr(err, m.Close())
}

var fakeRuns = []fakeRun{
	{Mapped, false, false}, {Mapped, true, false}, {Mapped, true, true},
	{Direct, false, false}, {Direct, true, false},
	{Buffered, false, false}, {Buffered, true, true},
	{Auto, false, false}, {Auto, true, false},
}

func TestFakeCUDALoadPaths(t *testing.T) {
	d := fakeCUDA(t)
	path := writeFakeFile(t)
	for _, r := range fakeRuns {
		t.Run(r.String(), func(t *testing.T) {
			f, err := decode.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			d.restart()
			st, err := loadCheckClose(f, r.options(d.path))
			if err != nil {
				t.Fatalf("%v\n%s", err, d.logTail())
			}
			if r.path != Auto && st.Path != r.path && st.Note == "" {
				t.Errorf("path %v without a note, want %v", st.Path, r.path)
			}
			if got := d.read(); got != (fakeStats{}) {
				t.Fatalf("fake driver after the load: %+v\n%s", got, d.logTail())
			}
		})
	}
}

// leakOf is what a failure of each driver call leaves behind by necessity:
// memory or a handle whose release failed, or (a failed synchronisation)
// the memory that a copy may still be using.
func leakOK(name string, s fakeStats) bool {
	one := func(n uint64) bool { return n <= 1 }
	rest := s
	switch name {
	case "cuMemFree_v2":
		rest.allocs = 0
		return one(s.allocs) && rest == fakeStats{}
	case "cuMemFreeHost":
		rest.pinned = 0
		return one(s.pinned) && rest == fakeStats{}
	case "cuStreamDestroy_v2":
		rest.streams = 0
		return one(s.streams) && rest == fakeStats{}
	case "cuEventDestroy_v2":
		rest.events = 0
		return one(s.events) && rest == fakeStats{}
	case "cuMemHostUnregister":
		rest.regs = 0
		return one(s.regs) && rest == fakeStats{}
	case "cuDevicePrimaryCtxRelease_v2":
		rest.ctxRefs = 0
		return one(s.ctxRefs) && rest == fakeStats{}
	case "cuCtxGetCurrent", "cuCtxSetCurrent":
		// Model.Close could not bind to free the device memory; it
		// still released the primary context, which frees it.
		rest.allocs = 0
		return rest == fakeStats{}
	case "cuStreamSynchronize":
		// A compressed tensor's copy could not be waited for: its
		// pinned buffer and the device memory stay, with the copy.
		rest.allocs, rest.pinned, rest.pending = 0, 0, 0
		return one(s.pinned) && rest == fakeStats{}
	}
	return s == fakeStats{}
}

func TestFakeCUDAFaultInjection(t *testing.T) {
	d := fakeCUDA(t)
	path := writeFakeFile(t)
	for _, r := range fakeRuns {
		t.Run(r.String(), func(t *testing.T) {
			f, err := decode.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			injectFaults(t, d, func() error {
				_, err := loadCheckClose(f, r.options(d.path))
				return err
			}, func(calls int64) []int64 {
				all := make([]int64, calls)
				for i := range all {
					all[i] = int64(i) + 1
				}
				return all
			})
			d.restart()
		})
	}
}

// TestFakeCUDALoadPlan: tensor-parallel loads through the real binding
// leave the fake driver clean, hold the plan's bytes, and fail cleanly
// wherever a driver call fails.
func TestFakeCUDALoadPlan(t *testing.T) {
	d := fakeCUDA(t)
	path, _ := writeTPFile(t, 16<<10)
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts := []Option{WithLibrary(d.path), WithWindowSize(4096), WithWorkers(2), WithStreams(2)}
	run := func(rank int, extra ...Option) error {
		plan, err := tp.NewPlan(f, rank, 3, tp.Columns)
		if err != nil {
			return err
		}
		m, err := LoadPlan(context.Background(), f, plan, append(append([]Option{}, opts...), extra...)...)
		if err != nil {
			return err
		}
		return cmpOr(m.CheckSource(context.Background(), f), m.Close())
	}
	for rank := range 3 {
		for _, per := range []bool{false, true} {
			d.restart()
			var extra []Option
			if per {
				extra = append(extra, WithAllocPerTensor())
			}
			if err := run(rank, extra...); err != nil {
				t.Fatalf("rank %d: %v\n%s", rank, err, d.logTail())
			}
			if got := d.read(); got != (fakeStats{}) {
				t.Fatalf("rank %d: fake driver after the load: %+v\n%s", rank, got, d.logTail())
			}
		}
	}
	// The first calls, one in the middle and the last: every function
	// fails once in each phase of the load.
	injectFaults(t, d, func() error { return run(1) }, func(calls int64) []int64 {
		return slices.Compact([]int64{min(1, calls), min(2, calls), min(3, calls), max(calls/2, min(3, calls)), calls})
	})
}

// injectFaults runs run once cleanly to count the calls of each driver
// function, then again with call n of each function failing, for each n
// that which returns for its count: the driver must be left with no
// violation and no leak but what leakOK allows, and an error must be the
// driver's.
func injectFaults(t *testing.T, d *fakeDriver, run func() error, which func(calls int64) []int64) {
	t.Helper()
	d.restart()
	before := make(map[string]uint64, len(driverCalls))
	for _, c := range driverCalls {
		before[c] = d.calls(c)
	}
	if err := run(); err != nil {
		t.Fatalf("clean run: %v\n%s", err, d.logTail())
	}
	counts := make(map[string]int64, len(driverCalls))
	for _, c := range driverCalls {
		counts[c] = int64(d.calls(c) - before[c])
	}
	faulted := 0
	for _, c := range driverCalls {
		for _, n := range which(counts[c]) {
			if n < 1 {
				continue
			}
			faulted++
			d.restart()
			d.fail(c, n)
			err := run()
			d.fail("", 0)
			s := d.read()
			if s.violations != 0 || !leakOK(c, s) {
				t.Fatalf("%s #%d failing (load: %v): fake driver %+v\n%s", c, n, err, s, d.logTail())
			}
			if err != nil && !errors.As(err, new(*DriverError)) {
				t.Fatalf("%s #%d failing: got %v, want a *DriverError", c, n, err)
			}
		}
	}
	if faulted == 0 {
		t.Fatal("the clean run made no driver call to fail")
	}
	t.Logf("%d runs with one driver call failing", faulted)
	d.restart()
}

// TestFakeCUDAConcurrentRanks: a server that loads every rank of a group
// from one process, one goroutine per rank, through the real binding: each
// rank's bytes are right and the driver is left clean.
func TestFakeCUDAConcurrentRanks(t *testing.T) {
	d := fakeCUDA(t)
	path, _ := writeTPFile(t, 16<<10)
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d.restart()
	const world = 4
	errs := make([]error, world)
	var wg sync.WaitGroup
	for rank := range world {
		wg.Go(func() {
			plan, err := tp.NewPlan(f, rank, world, tp.Rows)
			if err != nil {
				errs[rank] = err
				return
			}
			m, err := LoadPlan(context.Background(), f, plan, WithLibrary(d.path), WithWindowSize(4096), WithWorkers(2))
			if err != nil {
				errs[rank] = err
				return
			}
			errs[rank] = cmpOr(m.CheckSource(context.Background(), f), m.Close())
		})
	}
	wg.Wait()
	for rank, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v\n%s", rank, err, d.logTail())
		}
	}
	if got := d.read(); got != (fakeStats{}) {
		t.Fatalf("fake driver after the loads: %+v\n%s", got, d.logTail())
	}
}
