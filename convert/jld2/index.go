package jld2

import (
	"math/bits"

	"github.com/safeweights/safeweights/convert"
)

// chunkOrder maps the element numbers of the implicit, fixed array and
// extensible array chunk indices to chunks. HDF5 numbers chunks row-major
// over the chunk grid of the maximum dimensions, with an extensible
// array's one unlimited dimension moved first (rule C1). Numbers that
// fall outside the dataset's current extent belong to no chunk.
type chunkOrder struct {
	grid   []uint64 // chunks per dimension in the current extent
	order  []int    // dimensions, slowest first
	stride []uint64 // element-number stride of order[k]
	// limit is the first element number past the current extent.
	limit uint64
	// count is the number of elements of a bounded index (no unlimited
	// dimension): the product of the maximum grid.
	count uint64
}

const unlimited = ^uint64(0)

// newChunkOrder builds the numbering for a dataset; unlim is the
// unlimited dimension moved first, or -1.
func newChunkOrder(space dataspace, chunk, grid []uint64, unlim int, off int64) (*chunkOrder, error) {
	r := len(grid)
	o := &chunkOrder{grid: grid, order: make([]int, 0, r), stride: make([]uint64, r)}
	if unlim >= 0 {
		o.order = append(o.order, unlim)
	}
	for i := 0; i < r; i++ {
		if i != unlim {
			o.order = append(o.order, i)
		}
	}
	maxgrid := make([]uint64, r)
	for i := range grid {
		m := space.dims[i]
		if space.maxdims != nil {
			m = space.maxdims[i]
		}
		switch {
		case i == unlim:
			if m != unlimited {
				return nil, errAt(convert.ErrMalformed, off, "extensible array chunk index over dimension %d, which is not unlimited", i)
			}
			continue
		case m == unlimited:
			return nil, errAt(convert.ErrMalformed, off, "unlimited dimension %d under a chunk index that cannot grow", i)
		case m < space.dims[i]:
			return nil, errAt(convert.ErrMalformed, off, "dimension %d of %d over its maximum %d", i, space.dims[i], m)
		}
		maxgrid[i] = m / chunk[i]
		if m%chunk[i] != 0 {
			maxgrid[i]++
		}
	}
	s := uint64(1)
	for k := r - 1; k >= 0; k-- {
		o.stride[k] = s
		if k == 0 && unlim >= 0 {
			break
		}
		var hi uint64
		hi, s = bits.Mul64(s, maxgrid[o.order[k]])
		if hi != 0 {
			return nil, errAt(convert.ErrMalformed, off, "chunk grid of the maximum dimensions overflows")
		}
	}
	o.count = s
	hi, lim := bits.Mul64(grid[o.order[0]], o.stride[0])
	if hi != 0 {
		return nil, errAt(convert.ErrMalformed, off, "chunk grid overflows")
	}
	o.limit = lim
	return o, nil
}

// place returns the row-major index in the current chunk grid of element
// number e, and false when e lies outside the current extent.
func (o *chunkOrder) place(e uint64) (uint64, bool) {
	if e >= o.limit {
		return 0, false
	}
	var coord [maxRank + 1]uint64
	for k, d := range o.order {
		c := e / o.stride[k]
		e %= o.stride[k]
		if c >= o.grid[d] {
			return 0, false
		}
		coord[d] = c
	}
	var idx uint64
	for i, g := range o.grid {
		idx = idx*g + coord[i]
	}
	return idx, true
}

// unlimitedDim returns the one unlimited dimension of a dataspace.
func unlimitedDim(space dataspace) (int, bool) {
	u := -1
	for i, m := range space.maxdims {
		if m == unlimited {
			if u >= 0 {
				return -1, false
			}
			u = i
		}
	}
	return u, u >= 0
}

// entryReader decodes the chunk entries of the fixed and extensible array
// indices: an address, and for filtered chunks the stored size (esize-12
// bytes) and the filter mask.
type entryReader struct {
	esize      int
	filtered   bool
	chunkBytes uint64
	order      *chunkOrder
	refs       []chunkRef
	max        int
}

func newEntryReader(esize int, filtered bool, chunkBytes uint64, order *chunkOrder, max int, off int64) (*entryReader, error) {
	if filtered {
		if esize < 13 || esize > 20 {
			return nil, errAt(convert.ErrMalformed, off, "chunk index entry of %d bytes", esize)
		}
	} else if esize != 8 {
		return nil, errAt(convert.ErrMalformed, off, "chunk index entry of %d bytes", esize)
	}
	return &entryReader{esize: esize, filtered: filtered, chunkBytes: chunkBytes, order: order, max: max}, nil
}

// read decodes the entries of element numbers first, first+1, ... in c.
// An entry without an address is a chunk never written; a written chunk
// outside the current extent is malformed (HDF5 removes those when a
// dataset shrinks).
func (r *entryReader) read(c *cursor, first, n uint64) {
	for i := uint64(0); i < n && c.err == nil; i++ {
		ref := chunkRef{addr: c.u64(), size: r.chunkBytes}
		if r.filtered {
			ref.size = c.uN(r.esize - 12)
			ref.mask = c.u32()
		}
		if c.err != nil || ref.addr == undefAddr {
			continue
		}
		idx, ok := r.order.place(first + i)
		if !ok {
			c.fail(convert.ErrMalformed, "chunk %d stored outside the dataset", first+i)
			return
		}
		if len(r.refs) >= r.max {
			c.fail(convert.ErrLimit, "more than %d chunks", r.max)
			return
		}
		ref.index = idx
		r.refs = append(r.refs, ref)
	}
}

// checksummed returns the n bytes at addr of a chunk index block whose
// last 4 bytes are the lookup3 checksum of the others (rule H3), and
// counts them as parsed bytes.
func (f *file) checksummed(addr, n uint64, sig, what string) (*cursor, error) {
	b, off, err := f.at(addr, n, what)
	if err != nil {
		return nil, err
	}
	if err := f.countObject(off); err != nil {
		return nil, err
	}
	if err := f.work(len(b), off); err != nil {
		return nil, err
	}
	if len(b) < 10 || string(b[:4]) != sig || b[4] != 0 {
		return nil, errAt(convert.ErrMalformed, off, "no %s signature", what)
	}
	if lookup3(b[:len(b)-4]) != le64u32(b[len(b)-4:]) {
		return nil, errAt(convert.ErrMalformed, off+int64(len(b))-4, "%s checksum mismatch", what)
	}
	c := newCursor(b[:len(b)-4], off, what)
	c.skip(5)
	return c, nil
}

// extensibleArray reads an extensible array chunk index (rule C1): the
// header (EAHD), the index block (EAIB) with the first elements and the
// addresses of the first data blocks and of the secondary blocks (EASB),
// which hold the addresses of the other data blocks (EADB).
func (f *file) extensibleArray(addr uint64, l *layout, filtered bool, order *chunkOrder, chunkBytes uint64) ([]chunkRef, error) {
	c, err := f.checksummed(addr, 72, "EAHD", "extensible array header")
	if err != nil {
		return nil, err
	}
	hoff := c.off
	client := c.u8()
	esize, maxBits, idxElmts, minElmts, minPtrs, pageBits := int(c.u8()), c.u8(), uint64(c.u8()), c.u8(), c.u8(), c.u8()
	c.skip(6 * 8) // statistics
	iblock := c.u64()
	if c.err != nil {
		return nil, c.err
	}
	if (client == 1) != filtered || client > 1 {
		return nil, errAt(convert.ErrMalformed, hoff, "extensible array client %d disagrees with the filter pipeline", client)
	}
	if [5]byte{maxBits, byte(idxElmts), minPtrs, minElmts, pageBits} != l.ea {
		return nil, errAt(convert.ErrMalformed, hoff, "extensible array parameters differ from the data layout's")
	}
	if maxBits == 0 || maxBits > 64 || pageBits > 32 || minElmts == 0 || minElmts&(minElmts-1) != 0 ||
		minPtrs < 2 || minPtrs&(minPtrs-1) != 0 || bits.TrailingZeros8(minElmts) > int(maxBits) {
		return nil, errAt(convert.ErrMalformed, hoff, "extensible array parameters %v", l.ea)
	}
	er, err := newEntryReader(esize, filtered, chunkBytes, order, f.lim.MaxChunks, hoff)
	if err != nil {
		return nil, err
	}
	// Super block u holds 2^(u/2) data blocks of 2^((u+1)/2) * minElmts
	// elements; the index block holds the data block addresses of the
	// first 2*log2(minPtrs) super blocks and the secondary block
	// addresses of the others.
	nsblks := 1 + int(maxBits) - bits.TrailingZeros8(minElmts)
	direct := 2 * bits.TrailingZeros8(minPtrs)
	if direct > nsblks {
		return nil, errAt(convert.ErrMalformed, hoff, "extensible array of %d super blocks, %d in the index block", nsblks, direct)
	}
	ndblkAddrs := 2 * (uint64(minPtrs) - 1)
	nsblkAddrs := uint64(nsblks - direct)
	offSize := int(maxBits+7) / 8
	size := 6 + 8 + idxElmts*uint64(esize) + 8*(ndblkAddrs+nsblkAddrs) + 4
	ic, err := f.checksummed(iblock, size, "EAIB", "extensible array index block")
	if err != nil {
		return nil, err
	}
	if ic.u8() != client || ic.u64() != addr {
		return nil, errAt(convert.ErrMalformed, ic.off, "extensible array index block of another array")
	}
	er.read(ic, 0, idxElmts)
	dblks := make([]uint64, ndblkAddrs)
	for i := range dblks {
		dblks[i] = ic.u64()
	}
	sblks := make([]uint64, nsblkAddrs)
	for i := range sblks {
		sblks[i] = ic.u64()
	}
	if ic.err != nil {
		return nil, ic.err
	}
	pageN := uint64(1) << pageBits
	start := idxElmts // element number of the first element of super block u
	used := 0         // data block addresses of the index block used so far
	for u := 0; u < nsblks && start < order.limit; u++ {
		ndblks := uint64(1) << (u / 2)
		dn := uint64(minElmts) << ((u + 1) / 2)
		span := mustMul(ndblks, dn)
		if dn > pageN {
			return nil, errAt(convert.ErrUnsupported, hoff, "extensible array data blocks in pages (over %d chunks)", start)
		}
		var addrs []uint64
		if u < direct {
			addrs = dblks[used : used+int(ndblks)]
			used += int(ndblks)
		} else if a := sblks[u-direct]; a != undefAddr {
			sc, err := f.checksummed(a, 6+8+uint64(offSize)+8*ndblks+4, "EASB", "extensible array secondary block")
			if err != nil {
				return nil, err
			}
			if sc.u8() != client || sc.u64() != addr || sc.uN(offSize) != start-idxElmts {
				return nil, errAt(convert.ErrMalformed, sc.off, "extensible array secondary block out of place")
			}
			addrs = make([]uint64, ndblks)
			for i := range addrs {
				addrs[i] = sc.u64()
			}
			if sc.err != nil {
				return nil, sc.err
			}
		}
		for i, a := range addrs {
			first := start + uint64(i)*dn
			if a == undefAddr || first >= order.limit {
				continue
			}
			dc, err := f.checksummed(a, 6+8+uint64(offSize)+dn*uint64(esize)+4, "EADB", "extensible array data block")
			if err != nil {
				return nil, err
			}
			// The block offset is not checked: HDF5 writes it from the
			// block's number in the whole index block, not in its super
			// block, for the data blocks the index block lists.
			if dc.u8() != client || dc.u64() != addr {
				return nil, errAt(convert.ErrMalformed, dc.off, "extensible array data block of another array")
			}
			dc.skip(offSize)
			er.read(dc, first, dn)
			if dc.err != nil {
				return nil, dc.err
			}
		}
		if start+span < start {
			break
		}
		start += span
	}
	return er.refs, nil
}

// btree2 reads a version 2 B-tree chunk index (rule C1): a header (BTHD)
// naming the root, internal nodes (BTIN) with records and child pointers,
// leaves (BTLF) with records. Each record is a chunk: its address, for
// filtered chunks its stored size and filter mask, and its scaled offset
// (the chunk's coordinates in the grid).
func (f *file) btree2(addr uint64, filtered bool, grid []uint64, chunkBytes uint64) ([]chunkRef, error) {
	c, err := f.checksummed(addr, 38, "BTHD", "version 2 B-tree header")
	if err != nil {
		return nil, err
	}
	hoff := c.off
	typ := c.u8()
	nodeSize, recSize, depth := uint64(c.u32()), int(c.u16()), int(c.u16())
	c.skip(2)
	root, rootN := c.u64(), uint64(c.u16())
	if c.err != nil {
		return nil, c.err
	}
	rank := len(grid)
	want, csl := uint8(10), 0
	if filtered {
		want, csl = 11, recSize-12-8*rank
	}
	if typ != want {
		return nil, errAt(convert.ErrMalformed, hoff, "version 2 B-tree of record type %d for %s chunks", typ, map[bool]string{true: "filtered", false: "unfiltered"}[filtered])
	}
	if (filtered && (csl < 1 || csl > 8)) || (!filtered && recSize != 8+8*rank) {
		return nil, errAt(convert.ErrMalformed, hoff, "version 2 B-tree records of %d bytes", recSize)
	}
	if depth > f.lim.MaxDepth {
		return nil, errAt(convert.ErrLimit, hoff, "version 2 B-tree deeper than the limit")
	}
	if nodeSize < 10 || nodeSize > 1<<32 {
		return nil, errAt(convert.ErrMalformed, hoff, "version 2 B-tree node size %d", nodeSize)
	}
	// Node capacities: a leaf holds (nodeSize-10)/recSize records; an
	// internal node at depth d also holds a child pointer per record and
	// one more: an address, the child's record count (as many bytes as
	// the leaf capacity needs) and, below depth 2, the count of records
	// under the child (as many bytes as the subtree's capacity needs).
	maxN := make([]uint64, depth+1)
	cum := make([]uint64, depth+1)
	cumSize := make([]int, depth+1)
	maxN[0] = (nodeSize - 10) / uint64(recSize)
	cum[0] = maxN[0]
	if maxN[0] == 0 {
		return nil, errAt(convert.ErrMalformed, hoff, "version 2 B-tree nodes of %d bytes hold no record", nodeSize)
	}
	nrecSize := encSize(maxN[0])
	for d := 1; d <= depth; d++ {
		ptr := 8 + nrecSize
		if d > 1 {
			ptr += cumSize[d-1]
		}
		maxN[d] = (nodeSize - 10) / uint64(recSize+ptr)
		hi, lo := bits.Mul64(maxN[d]+1, cum[d-1])
		lo, carry := bits.Add64(lo, maxN[d], 0)
		if hi != 0 || carry != 0 {
			lo = ^uint64(0)
		}
		cum[d], cumSize[d] = lo, encSize(lo)
	}
	var refs []chunkRef
	seen := map[uint64]bool{}
	var walk func(a, n uint64, d int) error
	walk = func(a, n uint64, d int) error {
		if seen[a] {
			return errAt(convert.ErrMalformed, -1, "version 2 B-tree node %d reached twice", a)
		}
		seen[a] = true
		if n > maxN[d] {
			return errAt(convert.ErrMalformed, -1, "version 2 B-tree node of %d records (at most %d)", n, maxN[d])
		}
		size := 6 + n*uint64(recSize) + 4
		sig, what := "BTLF", "version 2 B-tree leaf"
		ptr := 0
		if d > 0 {
			ptr = 8 + nrecSize
			if d > 1 {
				ptr += cumSize[d-1]
			}
			size += (n + 1) * uint64(ptr)
			sig, what = "BTIN", "version 2 B-tree internal node"
		}
		nc, err := f.checksummed(a, size, sig, what)
		if err != nil {
			return err
		}
		if nc.u8() != typ {
			return errAt(convert.ErrMalformed, nc.off, "%s of another record type", what)
		}
		for i := uint64(0); i < n && nc.err == nil; i++ {
			r := chunkRef{addr: nc.u64(), size: chunkBytes}
			if filtered {
				r.size = nc.uN(csl)
				r.mask = nc.u32()
			}
			for k := 0; k < rank; k++ {
				s := nc.u64()
				if s >= grid[k] {
					nc.fail(convert.ErrMalformed, "chunk outside the dataset")
				}
				r.index = r.index*grid[k] + s
			}
			if len(refs) >= f.lim.MaxChunks {
				return errAt(convert.ErrLimit, nc.pos(), "more than %d chunks", f.lim.MaxChunks)
			}
			refs = append(refs, r)
		}
		if nc.err != nil {
			return nc.err
		}
		for i := uint64(0); d > 0 && i <= n; i++ {
			child, cn := nc.u64(), nc.uN(nrecSize)
			if d > 1 {
				nc.skip(cumSize[d-1])
			}
			if nc.err != nil {
				return nc.err
			}
			if err := walk(child, cn, d-1); err != nil {
				return err
			}
		}
		return nil
	}
	if rootN == 0 || root == undefAddr {
		return nil, nil
	}
	if err := walk(root, rootN, depth); err != nil {
		return nil, err
	}
	return refs, nil
}

// encSize is the number of bytes HDF5 uses to store counts up to n.
func encSize(n uint64) int {
	if n == 0 {
		return 1
	}
	return (bits.Len64(n)-1)/8 + 1
}
