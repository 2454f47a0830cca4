package gpu

import (
	"sync/atomic"
	"time"
)

// span accumulates the time goroutines spend in one kind of work.
type span struct{ ns atomic.Int64 }

func (s *span) add(since time.Time) { s.ns.Add(int64(time.Since(since))) }

func (s *span) get() time.Duration { return time.Duration(s.ns.Load()) }

// timers are the spans of one Load, summed over the goroutines doing each
// kind of work: with several goroutines a span can exceed the wall time.
type timers struct {
	register, unregister, read, hash, copyQueue, copyWait, decompress span
}

// Times says where the time of a Load went. Each field is summed over the
// goroutines doing that work, so with several of them a field can exceed
// Stats.Load; a field that dominates names the bottleneck.
type Times struct {
	// Staging is the time spent before the timed load: choosing the path,
	// probing registration and O_DIRECT, allocating pinned buffers.
	Staging time.Duration `json:"staging_ns"`
	// Register and Unregister: cuMemHostRegister and cuMemHostUnregister
	// of windows of the mapping (the mapped path).
	Register   time.Duration `json:"register_ns"`
	Unregister time.Duration `json:"unregister_ns"`
	// Read: reading windows into pinned buffers (the read paths).
	Read time.Duration `json:"read_ns"`
	// Hash: checking chunk digests (WithVerify).
	Hash time.Duration `json:"hash_ns"`
	// CopyQueue is the time to queue the asynchronous copies, CopyWait the
	// time spent waiting for them to complete.
	CopyQueue time.Duration `json:"copy_queue_ns"`
	CopyWait  time.Duration `json:"copy_wait_ns"`
	// Decompress: decoding compressed tensors into pinned memory.
	Decompress time.Duration `json:"decompress_ns"`
}

func (t *timers) times() Times {
	return Times{
		Register: t.register.get(), Unregister: t.unregister.get(), Read: t.read.get(),
		Hash: t.hash.get(), CopyQueue: t.copyQueue.get(), CopyWait: t.copyWait.get(),
		Decompress: t.decompress.get(),
	}
}
