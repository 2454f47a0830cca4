package gpu

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"unsafe"
)

// fakeDev is a device in host memory that checks how the pipeline uses it.
// Copies queued on a stream run only when an event recorded after them is
// waited for (or the stream is synchronised), so a window released too early
// is caught: its copy then reads memory that is no longer staged. Every
// buffer has canary bytes on both sides.
type fakeDev struct {
	mu         sync.Mutex
	allocs     map[devPtr]*fakeAlloc
	next       devPtr
	hosts      map[uintptr]*fakeHost
	regs       map[uintptr]int64 // registered ranges: start -> length
	regCount   int
	streams    map[stream]*fakeStream
	nStreams   int
	events     map[event]fakeEvent
	nEvents    int
	violations []string
	calls      map[string]int
	failAt     map[string]int // fail the nth call of an operation
	hook       func(op string, n int)
	bound      int
	// cur counts the binds current on each OS thread: the driver's
	// context is per thread, so a call from a goroutine that did not bind
	// (and so has no thread of its own with the context current) fails.
	cur map[int]int
}

type fakeAlloc struct {
	mem    []byte // canary, n bytes, canary
	n      int64
	writes []uint8
}

type fakeHost struct{ mem, b []byte }

type fakeOp struct {
	dst  devPtr
	src  []byte
	addr uintptr
}

type fakeStream struct {
	ops      []fakeOp
	issued   int // ops queued so far
	executed int // ops run so far
}

type fakeEvent struct {
	s   stream
	pos int
}

const canary = 64

var (
	errFake      = errors.New("fake device failure")
	errNoContext = errors.New("fake device: no current context (CUDA_ERROR_INVALID_CONTEXT)")
)

func newFakeDev() *fakeDev {
	return &fakeDev{
		allocs: map[devPtr]*fakeAlloc{}, next: 1 << 40,
		hosts: map[uintptr]*fakeHost{}, regs: map[uintptr]int64{},
		streams: map[stream]*fakeStream{}, events: map[event]fakeEvent{},
		calls: map[string]int{}, failAt: map[string]int{}, cur: map[int]int{},
	}
}

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

func (f *fakeDev) violate(format string, args ...any) {
	f.violations = append(f.violations, fmt.Sprintf(format, args...))
}

// call counts op and reports whether it should fail. f.mu is held.
func (f *fakeDev) call(op string) error {
	f.calls[op]++
	n := f.calls[op]
	if f.hook != nil {
		f.hook(op, n)
	}
	if f.failAt[op] == n {
		return fmt.Errorf("%s: %w", op, errFake)
	}
	return nil
}

func fillCanary(b []byte) {
	for i := range b {
		b[i] = 0xCA
	}
}

func canaryOK(b []byte) bool {
	for _, c := range b {
		if c != 0xCA {
			return false
		}
	}
	return true
}

// ctx fails a call made on a thread without a current context, as the
// driver does (CUDA_ERROR_INVALID_CONTEXT), and records it. f.mu is held.
func (f *fakeDev) ctx(op string) error {
	if f.cur[gettid()] > 0 {
		return nil
	}
	f.violate("%s on thread %d, which has no current context", op, gettid())
	return fmt.Errorf("%s: %w", op, errNoContext)
}

func (f *fakeDev) bind() (func(), error) {
	runtime.LockOSThread()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("bind"); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	f.bound++
	tid := gettid()
	f.cur[tid]++
	return func() {
		f.mu.Lock()
		f.bound--
		if gettid() != tid {
			f.violate("unbind on thread %d of a bind on thread %d", gettid(), tid)
		}
		if f.cur[tid]--; f.cur[tid] == 0 {
			delete(f.cur, tid)
		}
		f.mu.Unlock()
		runtime.UnlockOSThread()
	}, nil
}

func (f *fakeDev) alloc(n int64) (devPtr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("alloc"); err != nil {
		return 0, err
	}
	if err := f.call("alloc"); err != nil {
		return 0, err
	}
	a := &fakeAlloc{mem: make([]byte, n+2*canary), n: n, writes: make([]uint8, n)}
	fillCanary(a.mem[:canary])
	fillCanary(a.mem[canary+n:])
	p := f.next
	f.next += devPtr(n + 1<<20)
	f.allocs[p] = a
	return p, nil
}

func (f *fakeDev) free(p devPtr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("free"); err != nil {
		return err
	}
	a, ok := f.allocs[p]
	if !ok {
		f.violate("free of unknown pointer %#x", p)
		return errFake
	}
	if !canaryOK(a.mem[:canary]) || !canaryOK(a.mem[canary+a.n:]) {
		f.violate("device allocation %#x: canary overwritten", p)
	}
	delete(f.allocs, p)
	return f.call("free")
}

// find returns the allocation holding [p, p+n).
func (f *fakeDev) find(p devPtr, n int64) (*fakeAlloc, int64, bool) {
	for base, a := range f.allocs {
		if p >= base && int64(p-base)+n <= a.n {
			return a, int64(p - base), true
		}
	}
	return nil, 0, false
}

// staged reports whether [a, a+n) lies in a registered range or pinned buffer.
func (f *fakeDev) staged(a uintptr, n int) bool {
	for s, l := range f.regs {
		if a >= s && a+uintptr(n) <= s+uintptr(l) {
			return true
		}
	}
	for s, h := range f.hosts {
		if a >= s && a+uintptr(n) <= s+uintptr(len(h.b)) {
			return true
		}
	}
	return false
}

// pendingIn reports whether a queued, unexecuted copy reads from [a, a+n).
func (f *fakeDev) pendingIn(a uintptr, n int) bool {
	for _, s := range f.streams {
		for _, op := range s.ops {
			if op.addr < a+uintptr(n) && a < op.addr+uintptr(len(op.src)) {
				return true
			}
		}
	}
	return false
}

func (f *fakeDev) register(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("register"); err != nil {
		return err
	}
	if err := f.call("register"); err != nil {
		return err
	}
	a := addr(b)
	for s, l := range f.regs {
		if a < s+uintptr(l) && s < a+uintptr(len(b)) {
			f.violate("register [%#x, +%d) overlaps a registered range", a, len(b))
			return errFake
		}
	}
	f.regs[a] = int64(len(b))
	f.regCount++
	return nil
}

func (f *fakeDev) unregister(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("unregister"); err != nil {
		return err
	}
	a := addr(b)
	l, ok := f.regs[a]
	if !ok {
		f.violate("unregister of an unregistered range")
		return errFake
	}
	if f.pendingIn(a, int(l)) {
		f.violate("unregister while a copy from the range is pending")
	}
	delete(f.regs, a)
	return f.call("unregister")
}

func (f *fakeDev) hostAlloc(n int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("hostAlloc"); err != nil {
		return nil, err
	}
	if err := f.call("hostAlloc"); err != nil {
		return nil, err
	}
	mem := make([]byte, n+4096+2*canary)
	fillCanary(mem)
	lo := canary
	for (addr(mem)+uintptr(lo))%4096 != 0 {
		lo++
	}
	b := mem[lo : lo+int(n) : lo+int(n)]
	clear(b)
	f.hosts[addr(b)] = &fakeHost{mem: mem, b: b}
	return b, nil
}

func (f *fakeDev) hostFree(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("hostFree"); err != nil {
		return err
	}
	a := addr(b)
	h, ok := f.hosts[a]
	if !ok {
		f.violate("hostFree of unknown memory")
		return errFake
	}
	if f.pendingIn(a, len(h.b)) {
		f.violate("hostFree while a copy from it is pending")
	}
	lo := int(a - addr(h.mem))
	if !canaryOK(h.mem[lo-canary:lo]) || !canaryOK(h.mem[lo+len(h.b):lo+len(h.b)+canary]) {
		f.violate("pinned buffer: canary overwritten")
	}
	delete(f.hosts, a)
	return f.call("hostFree")
}

func (f *fakeDev) newStream() (stream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("newStream"); err != nil {
		return 0, err
	}
	if err := f.call("newStream"); err != nil {
		return 0, err
	}
	f.nStreams++
	s := stream(f.nStreams)
	f.streams[s] = &fakeStream{}
	return s, nil
}

func (f *fakeDev) destroyStream(s stream) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("destroyStream"); err != nil {
		return err
	}
	st, ok := f.streams[s]
	if !ok {
		f.violate("destroy of unknown stream")
		return errFake
	}
	f.run(st, st.issued) // the driver completes queued work first
	delete(f.streams, s)
	return f.call("destroyStream")
}

// run executes the ops of st up to sequence number upto.
func (f *fakeDev) run(st *fakeStream, upto int) {
	for st.executed < upto && len(st.ops) > 0 {
		op := st.ops[0]
		st.ops = st.ops[1:]
		st.executed++
		if !f.staged(op.addr, len(op.src)) {
			f.violate("copy ran from memory that is no longer staged")
		}
		a, off, ok := f.find(op.dst, int64(len(op.src)))
		if !ok {
			f.violate("copy outside any allocation")
			continue
		}
		copy(a.mem[canary+off:], op.src)
		for i := range op.src {
			if a.writes[off+int64(i)] < 255 {
				a.writes[off+int64(i)]++
			}
		}
	}
}

func (f *fakeDev) syncStream(s stream) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("syncStream"); err != nil {
		return err
	}
	st, ok := f.streams[s]
	if !ok {
		return errFake
	}
	if err := f.call("syncStream"); err != nil {
		return err
	}
	f.run(st, st.issued)
	return nil
}

func (f *fakeDev) copyAsync(dst devPtr, src []byte, s stream) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("copyAsync"); err != nil {
		return err
	}
	if err := f.call("copyAsync"); err != nil {
		return err
	}
	st, ok := f.streams[s]
	if !ok {
		f.violate("copy on unknown stream")
		return errFake
	}
	if !f.staged(addr(src), len(src)) {
		f.violate("copy queued from memory that is not staged")
	}
	if _, _, ok := f.find(dst, int64(len(src))); !ok {
		f.violate("copy of %d bytes to %#x overruns its allocation", len(src), dst)
		return errFake
	}
	st.ops = append(st.ops, fakeOp{dst: dst, src: src, addr: addr(src)})
	st.issued++
	return nil
}

func (f *fakeDev) newEvent() (event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("newEvent"); err != nil {
		return 0, err
	}
	if err := f.call("newEvent"); err != nil {
		return 0, err
	}
	f.nEvents++
	e := event(f.nEvents)
	f.events[e] = fakeEvent{pos: -1}
	return e, nil
}

func (f *fakeDev) record(e event, s stream) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("record"); err != nil {
		return err
	}
	if err := f.call("record"); err != nil {
		return err
	}
	st, ok := f.streams[s]
	if !ok {
		return errFake
	}
	f.events[e] = fakeEvent{s: s, pos: st.issued}
	return nil
}

func (f *fakeDev) wait(e event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("wait"); err != nil {
		return err
	}
	ev, ok := f.events[e]
	if !ok {
		f.violate("wait on unknown event")
		return errFake
	}
	// A failed wait leaves the copies pending, as a driver error may.
	if err := f.call("wait"); err != nil {
		return err
	}
	if st, ok := f.streams[ev.s]; ok && ev.pos >= 0 {
		f.run(st, ev.pos)
	}
	return nil
}

func (f *fakeDev) destroyEvent(e event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("destroyEvent"); err != nil {
		return err
	}
	delete(f.events, e)
	return f.call("destroyEvent")
}

func (f *fakeDev) copyToHost(dst []byte, src devPtr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ctx("copyToHost"); err != nil {
		return err
	}
	a, off, ok := f.find(src, int64(len(dst)))
	if !ok {
		return errFake
	}
	copy(dst, a.mem[canary+off:])
	return nil
}

// assertClean fails t if the fake saw a violation or holds anything that the
// loader should have given back (Model memory aside: pass live allocations).
func (f *fakeDev) assertClean(t *testing.T, liveAllocs int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.violations {
		t.Error("fake device:", v)
	}
	if len(f.regs) != 0 {
		t.Errorf("%d ranges left registered", len(f.regs))
	}
	if len(f.hosts) != 0 {
		t.Errorf("%d pinned buffers left allocated", len(f.hosts))
	}
	if len(f.streams) != 0 {
		t.Errorf("%d streams left", len(f.streams))
	}
	if len(f.events) != 0 {
		t.Errorf("%d events left", len(f.events))
	}
	if len(f.allocs) != liveAllocs {
		t.Errorf("%d device allocations live, want %d", len(f.allocs), liveAllocs)
	}
	if f.bound != 0 || len(f.cur) != 0 {
		t.Errorf("%d goroutines left bound, %d threads with a context current", f.bound, len(f.cur))
	}
	for p, a := range f.allocs {
		if !canaryOK(a.mem[:canary]) || !canaryOK(a.mem[canary+a.n:]) {
			t.Errorf("device allocation %#x: canary overwritten", p)
		}
	}
}
