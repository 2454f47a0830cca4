package format

import (
	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"
)

// seqMax is the largest input that blake3Sum256 hashes on the calling
// goroutine. Above it, blake3.Sum256 spreads one input over all cores.
const seqMax = 64 << 20

// blake3Sum256 returns blake3.Sum256(b), computed on the calling goroutine
// for inputs up to seqMax.
//
// blake3.Sum256 starts a goroutine for every 16 KiB of a larger input:
// 256 for one 4 MiB digest chunk. Encode and Verify already hash many
// chunks at once, one per core, so those goroutines only add scheduling
// and allocation (about 140,000 allocations per GiB hashed). This walks
// the same tree, 16 BLAKE3 chunks at a time through the library's SIMD
// kernel, with the reference implementation's stack of subtree chaining
// values (BLAKE3 paper, section 5.1.2).
func blake3Sum256(b []byte) [DigestSize]byte {
	if len(b) > seqMax {
		return blake3.Sum256(b)
	}
	const group = guts.MaxSIMD * guts.ChunkSize
	// Subtrees of a 64 MiB input: at most one per level, 17 levels.
	var stack [64][8]uint32
	depth := 0
	push := func(cv [8]uint32, total uint64) {
		for total&1 == 0 {
			depth--
			cv = guts.ChainingValue(guts.ParentNode(stack[depth], cv, &guts.IV, 0))
			total >>= 1
		}
		stack[depth] = cv
		depth++
	}
	var counter uint64 // BLAKE3 chunks consumed
	// Whole groups of 16 chunks, while more than a group remains: the last
	// chunk is finished below, with the root flag where it applies.
	for len(b) > group {
		n := guts.CompressBuffer((*[group]byte)(b[:group]), group, &guts.IV, counter, 0)
		counter += guts.MaxSIMD
		push(guts.ChainingValue(n), counter/guts.MaxSIMD)
		b = b[group:]
	}
	// The rest, one chunk at a time. A group boundary is never crossed by
	// these merges: at most 15 chunks are pushed before the last.
	for len(b) > guts.ChunkSize {
		n := guts.CompressChunk(b[:guts.ChunkSize], &guts.IV, counter, 0)
		counter++
		push(guts.ChainingValue(n), counter)
		b = b[guts.ChunkSize:]
	}
	n := guts.CompressChunk(b, &guts.IV, counter, 0)
	for depth > 0 {
		depth--
		n = guts.ParentNode(stack[depth], guts.ChainingValue(n), &guts.IV, 0)
	}
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	var sum [DigestSize]byte
	copy(sum[:], out[:])
	return sum
}
