package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/format"
)

func withFake(f *fakeDev) Option {
	return func(c *config) error { c.dev = f; return nil }
}

func loadView(ctx context.Context, v *fileView, opts ...Option) (*Model, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return load(ctx, v, cfg)
}

// checkModel asserts that every tensor of m holds its file bytes and, in the
// fake, that every device byte of a tensor was written exactly once.
func checkModel(t *testing.T, f *fakeDev, v *fileView, m *Model) {
	t.Helper()
	if err := m.check(context.Background(), v); err != nil {
		t.Fatalf("device bytes: %v", err)
	}
	for _, lt := range m.Tensors {
		if lt.Size == 0 {
			continue
		}
		a, off, ok := f.find(devPtr(lt.Ptr), lt.Size)
		if !ok {
			t.Fatalf("%s: not inside an allocation", lt.Name)
		}
		for i, w := range a.writes[off : off+lt.Size] {
			if w != 1 {
				t.Fatalf("%s: byte %d written %d times", lt.Name, i, w)
			}
		}
	}
}

func TestLoadPaths(t *testing.T) {
	for _, path := range []Path{Mapped, Buffered} {
		for _, per := range []bool{false, true} {
			for _, verify := range []bool{false, true} {
				for _, win := range []int64{4096, 5 * 4096, 1 << 20} {
					name := fmt.Sprintf("%v/per=%v/verify=%v/window=%d", path, per, verify, win)
					t.Run(name, func(t *testing.T) {
						v := buildView(5, oddSpecs(1024), 64, 1024)
						f := newFakeDev()
						opts := []Option{withFake(f), WithPath(path), WithWindowSize(win), WithDepth(3), WithStreams(2)}
						if per {
							opts = append(opts, WithAllocPerTensor())
						}
						if verify {
							opts = append(opts, WithVerify(), WithHashers(2))
						}
						m, err := loadView(context.Background(), v, opts...)
						if err != nil {
							t.Fatal(err)
						}
						if m.Stats.Path != path || m.Stats.Verified != verify {
							t.Errorf("stats %+v", m.Stats)
						}
						if len(m.Tensors) != len(v.tensors) {
							t.Fatalf("%d tensors loaded of %d", len(m.Tensors), len(v.tensors))
						}
						checkModel(t, f, v, m)
						f.assertClean(t, len(m.Allocations))
						if err := m.Close(); err != nil {
							t.Fatal(err)
						}
						f.assertClean(t, 0)
						if path == Mapped && f.regCount < m.Stats.Windows {
							t.Errorf("%d registrations for %d windows", f.regCount, m.Stats.Windows)
						}
					})
				}
			}
		}
	}
}

func TestLoadChosenTensors(t *testing.T) {
	v := buildView(6, oddSpecs(4096), 4096, 4096)
	f := newFakeDev()
	m, err := loadView(context.Background(), v, withFake(f), WithPath(Buffered), WithTensors("tail", "page+1", "zipped"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if len(m.Tensors) != 3 || m.Tensors[0].Name != "page+1" || m.Tensors[2].Name != "tail" {
		t.Fatalf("loaded %+v", m.Tensors)
	}
	if lt, ok := m.Tensor("zipped"); !ok || lt.Compression != format.Zstd {
		t.Fatal("compressed tensor missing")
	}
	checkModel(t, f, v, m)

	_, err = loadView(context.Background(), v, withFake(newFakeDev()), WithTensors("nope"))
	if !errors.Is(err, format.ErrNotFound) {
		t.Fatalf("unknown tensor: got %v", err)
	}
}

func TestLoadDigestMismatch(t *testing.T) {
	for _, path := range []Path{Mapped, Buffered} {
		for _, victim := range []struct {
			tensor string
			at     int64 // stored byte to flip
		}{{"big", 5*1024 + 3}, {"one", 0}, {"zipped", 1}, {"tail", 62}} {
			t.Run(fmt.Sprintf("%v/%s", path, victim.tensor), func(t *testing.T) {
				v := buildView(7, oddSpecs(1024), 64, 1024)
				var ti int
				for i, tt := range v.tensors {
					if tt.name == victim.tensor {
						ti = i
					}
				}
				v.mapping[v.tensors[ti].offset+victim.at] ^= 0x40
				f := newFakeDev()
				m, err := loadView(context.Background(), v, withFake(f), WithPath(path), WithVerify(), WithWindowSize(8192), WithDepth(2))
				if err == nil {
					m.Close()
					t.Fatal("corrupt tensor loaded")
				}
				var de *DigestError
				if !errors.As(err, &de) || !errors.Is(err, format.ErrDigest) {
					t.Fatalf("got %v, want a *DigestError", err)
				}
				if de.Tensor != victim.tensor || de.Chunk != int(victim.at/1024) {
					t.Fatalf("mismatch reported in %q chunk %d, want %q chunk %d", de.Tensor, de.Chunk, victim.tensor, victim.at/1024)
				}
				f.assertClean(t, 0)
			})
		}
	}
}

func TestLoadWithoutVerifyIgnoresDigests(t *testing.T) {
	v := buildView(8, oddSpecs(1024), 64, 1024)
	v.mapping[v.tensors[1].offset] ^= 1
	f := newFakeDev()
	m, err := loadView(context.Background(), v, withFake(f), WithPath(Mapped))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The device holds the file as it is, corruption included.
	var got [1]byte
	unbind, _ := f.bind()
	defer unbind()
	if err := m.dev.copyToHost(got[:], devPtr(m.Tensors[1].Ptr)); err != nil || got[0] != v.mapping[v.tensors[1].offset] {
		t.Fatal("device byte is not the file byte")
	}
}

func TestLoadCancel(t *testing.T) {
	v := buildView(9, oddSpecs(1024), 64, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := newFakeDev()
	if _, err := loadView(ctx, v, withFake(f), WithPath(Mapped)); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled before: got %v", err)
	}
	f.assertClean(t, 0)

	for _, path := range []Path{Mapped, Buffered} {
		for _, at := range []string{"register", "copyAsync", "wait", "hostAlloc"} {
			t.Run(fmt.Sprintf("%v/%s", path, at), func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				f := newFakeDev()
				f.hook = func(op string, n int) {
					if op == at && n == 3 {
						cancel()
					}
				}
				m, err := loadView(ctx, v, withFake(f), WithPath(path), WithWindowSize(4096), WithVerify())
				if err == nil {
					// The operation may not run three times on this path.
					m.Close()
					if f.calls[at] >= 3 {
						t.Fatal("load succeeded after cancellation")
					}
					return
				}
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("got %v, want context.Canceled", err)
				}
				f.assertClean(t, 0)
			})
		}
	}
}

func TestLoadDeviceFailures(t *testing.T) {
	for _, path := range []Path{Mapped, Buffered} {
		for _, op := range []string{"alloc", "register", "unregister", "hostAlloc", "copyAsync", "newEvent", "record", "wait", "newStream", "bind", "syncStream"} {
			for _, n := range []int{1, 2, 4} {
				t.Run(fmt.Sprintf("%v/%s#%d", path, op, n), func(t *testing.T) {
					v := buildView(10, oddSpecs(1024), 64, 1024)
					f := newFakeDev()
					f.failAt[op] = n
					m, err := loadView(context.Background(), v, withFake(f), WithPath(path), WithWindowSize(4096), WithDepth(2), WithAllocPerTensor())
					if err == nil {
						defer m.Close()
						if f.calls[op] >= n && !(path == Mapped && op == "register" && n == 1) {
							t.Fatalf("load succeeded though %s #%d failed", op, n)
						}
						checkModel(t, f, v, m)
						return
					}
					if !errors.Is(err, errFake) {
						t.Fatalf("got %v, want the device's error", err)
					}
					if op == "syncStream" {
						// A copy may still be pending: the memory it
						// reads and writes is kept (see
						// TestLoadFailedWaitKeepsMemoryUntilIdle).
						f.mu.Lock()
						defer f.mu.Unlock()
						for _, v := range f.violations {
							t.Error("fake device:", v)
						}
						return
					}
					f.assertClean(t, 0)
				})
			}
		}
	}
}

func TestLoadMappedFallsBackWhenRegistrationFails(t *testing.T) {
	// The first register call is the probe: failing it means the driver
	// cannot register read-only memory here.
	v := buildView(11, oddSpecs(1024), 64, 1024)
	f := newFakeDev()
	f.failAt["register"] = 1
	m, err := loadView(context.Background(), v, withFake(f), WithPath(Mapped))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Stats.Path != Buffered || m.Stats.Note == "" {
		t.Fatalf("stats %+v, want a noted fallback to buffered", m.Stats)
	}
	checkModel(t, f, v, m)
}

func TestLoadEmpty(t *testing.T) {
	v := buildView(12, []spec{{"e", 0, false}, {"f", 0, false}}, 64, 1024)
	f := newFakeDev()
	m, err := loadView(context.Background(), v, withFake(f))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 2 || m.Tensors[0].Ptr != 0 || len(m.Allocations) != 0 {
		t.Fatalf("got %+v", m)
	}
	m.Close()
	f.assertClean(t, 0)
}

func TestLoadWithCallerStream(t *testing.T) {
	v := buildView(13, oddSpecs(1024), 64, 1024)
	f := newFakeDev()
	unbind, _ := f.bind() // the caller's stream, made with its context current
	defer unbind()
	s, _ := f.newStream()
	m, err := loadView(context.Background(), v, withFake(f), WithStream(uintptr(s)), WithPath(Mapped), WithWindowSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	checkModel(t, f, v, m)
	if f.calls["newStream"] != 1 {
		t.Errorf("Load created %d streams of its own", f.calls["newStream"]-1)
	}
	if _, ok := f.streams[s]; !ok {
		t.Error("Load destroyed the caller's stream")
	}
	m.Close()
	f.destroyStream(s)
	unbind()
	unbind = func() {}
	f.assertClean(t, 0)
}

func TestLoadNoDriver(t *testing.T) {
	v := buildView(14, oddSpecs(1024), 64, 1024)
	_, err := loadView(context.Background(), v, WithLibrary(filepath.Join(t.TempDir(), "libcuda.so.1")))
	if !errors.Is(err, ErrNoDriver) {
		t.Fatalf("got %v, want ErrNoDriver", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Option{WithDevice(-1), WithWorkers(0), WithStreams(0), WithDepth(0),
		WithWindowSize(100), WithWindowSize(MaxWindowSize + 1), WithHashers(0), WithResidency(1.5), WithPath(Path(9))} {
		if _, err := newConfig([]Option{o}); err == nil {
			t.Error("an out-of-range option was accepted")
		}
	}
	for _, p := range []Path{Auto, Mapped, Direct, Buffered} {
		if q, ok := ParsePath(p.String()); !ok || q != p {
			t.Errorf("ParsePath(%q) = %v", p.String(), q)
		}
	}
	if b, _ := Mapped.MarshalText(); !bytes.Equal(b, []byte("mapped")) {
		t.Error("MarshalText")
	}
}

func TestLoadFailedWaitKeepsMemoryUntilIdle(t *testing.T) {
	// A failed wait leaves its copies pending in the fake: the window may
	// be released only after its stream is synchronised, and when that
	// fails too, never (and the device memory is not freed under it).
	for _, path := range []Path{Mapped, Buffered} {
		for _, syncFails := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/syncFails=%v", path, syncFails), func(t *testing.T) {
				v := buildView(16, oddSpecs(1024), 64, 1024)
				f := newFakeDev()
				f.failAt["wait"] = 2
				if syncFails {
					f.failAt["syncStream"] = 1
				}
				_, err := loadView(context.Background(), v, withFake(f), WithPath(path), WithWindowSize(4096), WithDepth(2), WithStreams(1))
				if !errors.Is(err, errFake) {
					t.Fatalf("got %v, want the device's error", err)
				}
				f.mu.Lock()
				defer f.mu.Unlock()
				for _, v := range f.violations {
					t.Error("fake device:", v)
				}
				if !syncFails && (len(f.regs) != 0 || len(f.hosts) != 0 || len(f.allocs) != 0) {
					t.Errorf("left %d registrations, %d pinned buffers, %d allocations", len(f.regs), len(f.hosts), len(f.allocs))
				}
				if syncFails && len(f.allocs) == 0 {
					t.Error("device memory freed while a copy into it may be pending")
				}
			})
		}
	}
}

func TestLoadRefusesOversizedCompressedFirst(t *testing.T) {
	v := buildView(17, oddSpecs(1024), 64, 1024)
	f := newFakeDev()
	_, err := loadView(context.Background(), v, withFake(f), WithLimits(format.Limits{MaxDecompressedSize: 9999}))
	if !errors.Is(err, format.ErrLimit) {
		t.Fatalf("got %v, want ErrLimit", err)
	}
	if f.calls["alloc"] != 0 || f.calls["hostAlloc"] != 0 {
		t.Fatalf("memory allocated before the limit was checked: %v", f.calls)
	}
	if _, err := loadView(context.Background(), v, withFake(newFakeDev()), WithLimits(format.Limits{MaxDecompressedSize: 10000})); err != nil {
		t.Fatalf("a tensor at the limit: %v", err)
	}
}

func TestCloseReleasesContextWhenBindFails(t *testing.T) {
	v := buildView(18, oddSpecs(1024), 64, 1024)
	f := newFakeDev()
	m, err := loadView(context.Background(), v, withFake(f), WithPath(Mapped))
	if err != nil {
		t.Fatal(err)
	}
	released := 0
	m.closer = func() error { released++; return nil }
	f.failAt["bind"] = f.calls["bind"] + 1
	if err := m.Close(); !errors.Is(err, errFake) {
		t.Fatalf("Close: got %v, want the bind error", err)
	}
	if released != 1 {
		t.Fatalf("context released %d times, want 1", released)
	}
}

func TestLoadTimes(t *testing.T) {
	for _, path := range []Path{Mapped, Buffered} {
		v := buildView(19, oddSpecs(1024), 64, 1024)
		f := newFakeDev()
		m, err := loadView(context.Background(), v, withFake(f), WithPath(path), WithVerify(), WithWindowSize(4096))
		if err != nil {
			t.Fatal(err)
		}
		tm := m.Stats.Times
		staged := tm.Read
		if path == Mapped {
			staged = min(tm.Register, tm.Unregister)
		}
		if staged <= 0 || tm.Hash <= 0 || tm.CopyQueue <= 0 || tm.CopyWait <= 0 || tm.Decompress <= 0 || tm.Staging <= 0 {
			t.Errorf("%v: a kind of work went unrecorded: %+v", path, tm)
		}
		m.Close()
	}
}

func TestFakeRefusesCallsWithoutContext(t *testing.T) {
	// The check that catches a driver call from a goroutine that did not
	// bind, such as an unregister from a hashing goroutine.
	f := newFakeDev()
	done := make(chan error)
	go func() { _, err := f.alloc(10); done <- err }()
	if err := <-done; !errors.Is(err, errNoContext) || len(f.violations) != 1 {
		t.Fatalf("unbound call: got %v, %d violations", err, len(f.violations))
	}
}
