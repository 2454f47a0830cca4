package format

import (
	"math/bits"

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
	return rootSum(subtree(b, 0))
}

// blake3Parallel returns blake3.Sum256(b) computed on up to parts
// goroutines: the tree is cut at its top levels (the left subtree holds the
// largest power of two of BLAKE3 chunks that leaves the right one
// non-empty) and each part is walked sequentially.
func blake3Parallel(b []byte, parts int) [DigestSize]byte {
	return rootSum(parallelSubtree(b, 0, parts))
}

func parallelSubtree(b []byte, counter uint64, parts int) guts.Node {
	const minPart = 2 * guts.MaxSIMD * guts.ChunkSize
	if parts < 2 || len(b) < 2*minPart {
		return subtree(b, counter)
	}
	chunks := uint64(len(b)+guts.ChunkSize-1) / guts.ChunkSize
	left := uint64(1) << (bits.Len64(chunks-1) - 1)
	lb := int(left * guts.ChunkSize)
	var l guts.Node
	done := make(chan struct{})
	go func() {
		l = parallelSubtree(b[:lb], counter, parts/2)
		close(done)
	}()
	r := parallelSubtree(b[lb:], counter+left, parts-parts/2)
	<-done
	return guts.ParentNode(guts.ChainingValue(l), guts.ChainingValue(r), &guts.IV, 0)
}

func rootSum(n guts.Node) [DigestSize]byte {
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	var sum [DigestSize]byte
	copy(sum[:], out[:])
	return sum
}

// subtree returns the unfinished root node of the BLAKE3 subtree over b,
// whose first chunk has the given counter. counter is a multiple of a
// power of two at least as large as b's chunk count, as it is for every
// subtree of the BLAKE3 tree, so merges counted from b's start are the
// tree's own.
func subtree(b []byte, counter uint64) guts.Node {
	const group = guts.MaxSIMD * guts.ChunkSize
	// At most one subtree per level: 64 levels cover any input.
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
	var local uint64 // BLAKE3 chunks consumed
	// Whole groups of 16 chunks, while more than a group remains: the last
	// chunk is finished below, with the root flag where it applies.
	for len(b) > group {
		n := guts.CompressBuffer((*[group]byte)(b[:group]), group, &guts.IV, counter+local, 0)
		local += guts.MaxSIMD
		push(guts.ChainingValue(n), local/guts.MaxSIMD)
		b = b[group:]
	}
	// The rest, one chunk at a time. A group boundary is never crossed by
	// these merges: at most 15 chunks are pushed before the last.
	for len(b) > guts.ChunkSize {
		n := guts.CompressChunk(b[:guts.ChunkSize], &guts.IV, counter+local, 0)
		local++
		push(guts.ChainingValue(n), local)
		b = b[guts.ChunkSize:]
	}
	n := guts.CompressChunk(b, &guts.IV, counter+local, 0)
	for depth > 0 {
		depth--
		n = guts.ParentNode(stack[depth], guts.ChainingValue(n), &guts.IV, 0)
	}
	return n
}
