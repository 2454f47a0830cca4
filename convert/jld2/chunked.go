package jld2

import (
	"bytes"
	"cmp"
	"compress/zlib"
	"errors"
	"io"
	"math/bits"
	"slices"

	"github.com/klauspost/compress/zstd"

	"github.com/safeweights/safeweights/convert"
)

// HDF5 filter identifiers (rule F1).
const (
	filterDeflate  = 1
	filterShuffle  = 2
	filterFletcher = 3
	filterSzip     = 4
	filterNbit     = 5
	filterScale    = 6
	filterLZ4      = 32004
	filterBzip2    = 307
	filterBlosc    = 32001
	filterZstd     = 32015
)

type chunkRef struct {
	addr  uint64
	size  uint64
	mask  uint32
	index uint64 // linear (row-major) index of the chunk in the chunk grid
}

// chunked assembles a chunked dataset of need bytes (rules C1-C5, F1).
func (f *file) chunked(in *info, need uint64) ([]byte, error) {
	l := in.layout
	dims := in.space.dims
	if in.space.kind != spaceSimple || len(l.chunk) != len(dims) {
		return nil, errAt(convert.ErrMalformed, in.off, "chunk rank %d for a dataspace of rank %d", len(l.chunk), len(dims))
	}
	if l.elem != uint64(in.dt.size) {
		return nil, errAt(convert.ErrMalformed, in.off, "chunk element size %d for a datatype of %d bytes", l.elem, in.dt.size)
	}
	for _, fl := range in.filters {
		switch fl.id {
		case filterDeflate, filterZstd, filterShuffle:
		default:
			return nil, errAt(convert.ErrUnsupported, in.off, "filter %s", filterName(fl.id))
		}
	}
	chunkBytes := l.elem
	grid := make([]uint64, len(dims))
	total := uint64(1)
	for i, d := range l.chunk {
		var hi uint64
		hi, chunkBytes = bits.Mul64(chunkBytes, d)
		if hi != 0 || chunkBytes > 1<<32 {
			return nil, errAt(convert.ErrMalformed, in.off, "chunk larger than 4 GiB")
		}
		grid[i] = dims[i] / d
		if dims[i]%d != 0 {
			grid[i]++
		}
		hi, total = bits.Mul64(total, grid[i])
		if hi != 0 || total > uint64(f.lim.MaxChunks) {
			return nil, errAt(convert.ErrLimit, in.off, "more than %d chunks", f.lim.MaxChunks)
		}
	}
	if need == 0 {
		return nil, nil
	}
	var refs []chunkRef
	var err error
	switch l.index {
	case idxSingle:
		if total != 1 {
			return nil, errAt(convert.ErrMalformed, in.off, "single-chunk index for %d chunks", total)
		}
		size := chunkBytes
		if l.flags&filteredSingle != 0 {
			size = l.single.size
		}
		refs = []chunkRef{{addr: l.addr, size: size, mask: l.single.mask}}
	case idxImplicit, idxFixedArray, idxExtensible:
		unlim := -1
		if l.index == idxExtensible {
			var ok bool
			if unlim, ok = unlimitedDim(in.space); !ok {
				return nil, errAt(convert.ErrMalformed, in.off, "extensible array chunk index without exactly one unlimited dimension")
			}
		}
		order, err := newChunkOrder(in.space, l.chunk, grid, unlim, in.off)
		if err != nil {
			return nil, err
		}
		switch l.index {
		case idxImplicit:
			refs, err = f.implicit(in, order, chunkBytes)
		case idxFixedArray:
			refs, err = f.fixedArray(l.addr, len(in.filters) > 0, order, chunkBytes)
		default:
			refs, err = f.extensibleArray(l.addr, l, len(in.filters) > 0, order, chunkBytes)
		}
		if err != nil {
			return nil, err
		}
	case idxBTree1:
		refs, err = f.btree1(l.addr, l, dims, grid)
	case idxBTree2:
		refs, err = f.btree2(l.addr, len(in.filters) > 0, grid, chunkBytes)
	default:
		return nil, errAt(convert.ErrMalformed, in.off, "chunk index type %d", l.index)
	}
	if err != nil {
		return nil, err
	}
	// C4: every chunk of the grid present exactly once, before any memory
	// is committed to the output.
	seen := make([]uint64, (total+63)/64)
	for _, r := range refs {
		if r.index >= total || seen[r.index/64]&(1<<(r.index%64)) != 0 {
			return nil, errAt(convert.ErrMalformed, in.off, "chunk %d listed twice or outside the dataset", r.index)
		}
		seen[r.index/64] |= 1 << (r.index % 64)
	}
	if uint64(len(refs)) != total {
		return nil, errAt(convert.ErrMalformed, in.off, "%d of %d chunks stored (missing chunks are not read)", len(refs), total)
	}
	if err := f.step(len(refs)); err != nil {
		return nil, err
	}
	// C6: chunks do not share storage, so that each stored byte is decoded
	// once; a forged index pointing every chunk at one small compressed
	// chunk would otherwise multiply the work.
	byAddr := slices.Clone(refs)
	slices.SortFunc(byAddr, func(a, b chunkRef) int { return cmp.Compare(a.addr, b.addr) })
	for i, r := range byAddr {
		_, roff, err := f.at(r.addr, r.size, "chunk")
		if err != nil {
			return nil, err
		}
		f.addSpan(roff, r.size)
		if i > 0 && byAddr[i-1].addr+byAddr[i-1].size > r.addr {
			return nil, errAt(convert.ErrMalformed, in.off, "chunks %d and %d share storage", byAddr[i-1].index, r.index)
		}
	}
	// C5: whole chunks are decoded, edge chunks included; that is what
	// counts against the limit.
	f.decoded += int64(total * chunkBytes)
	if f.decoded > f.lim.MaxDecodedBytes {
		return nil, errAt(convert.ErrLimit, in.off, "chunked data over %d bytes in total", f.lim.MaxDecodedBytes)
	}
	d := &unfilterer{chunkBytes: chunkBytes}
	defer d.close()
	var out []byte
	for _, r := range refs {
		raw, roff, err := f.at(r.addr, r.size, "chunk")
		if err != nil {
			return nil, err
		}
		b, err := d.unfilter(raw, roff, in.filters, r.mask)
		if err != nil {
			return nil, err
		}
		if out == nil {
			// Allocated once a chunk has decoded: a file claiming a huge
			// dataset whose chunks do not decode costs nothing.
			out = make([]byte, need)
		}
		copyChunk(out, b, r.index, grid, l.chunk, dims, l.elem)
	}
	return out, nil
}

func mustMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return undefAddr
	}
	return lo
}

// unfilterer undoes the filter pipeline on the chunks of one dataset. Its
// buffers grow as decoded bytes arrive, up to the chunk size, and its
// decompressors are reused from chunk to chunk.
type unfilterer struct {
	chunkBytes uint64
	scratch    [2][]byte
	zlib       io.ReadCloser
	zstd       *zstd.Decoder
}

func (d *unfilterer) close() {
	if d.zlib != nil {
		d.zlib.Close()
	}
	if d.zstd != nil {
		d.zstd.Close()
	}
}

// unfilter undoes the filters on one stored chunk; the result is exactly
// chunkBytes long, and no filter may produce more (rule C5).
func (d *unfilterer) unfilter(raw []byte, off int64, fs []filter, mask uint32) ([]byte, error) {
	cur := raw
	applied := 0
	for i := len(fs) - 1; i >= 0; i-- {
		if i < 32 && mask&(1<<i) != 0 {
			continue
		}
		// Alternate buffers by filters applied, so that input and output
		// never share memory.
		dst := &d.scratch[applied%2]
		applied++
		var err error
		switch fs[i].id {
		case filterDeflate:
			err = d.inflate(dst, cur)
		case filterZstd:
			err = d.unzstd(dst, cur)
		case filterShuffle:
			unshuffle(dst, cur, fs[i], d.chunkBytes)
		}
		if err != nil {
			return nil, errAt(convert.ErrMalformed, off, "chunk does not decode (%s): %v", filterName(fs[i].id), err)
		}
		cur = *dst
	}
	if uint64(len(cur)) != d.chunkBytes {
		return nil, errAt(convert.ErrMalformed, off, "chunk decodes to %d bytes, not %d", len(cur), d.chunkBytes)
	}
	return cur, nil
}

var errTooLong = errors.New("decoded data longer than the chunk")

// readBounded reads r to its end into *buf (reusing its memory), growing
// it as bytes arrive, and fails if r holds more than limit bytes.
func readBounded(buf *[]byte, r io.Reader, limit uint64) error {
	b := (*buf)[:0]
	for {
		if len(b) == cap(b) {
			if uint64(len(b)) >= limit {
				var one [1]byte
				n, err := io.ReadFull(r, one[:])
				*buf = b
				if n > 0 {
					return errTooLong
				}
				if err == io.EOF {
					return nil
				}
				return err
			}
			nb := make([]byte, len(b), min(limit, max(2*uint64(cap(b)), 64<<10)))
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			*buf = b
			return nil
		}
		if err != nil {
			*buf = b
			return err
		}
	}
}

func (d *unfilterer) inflate(dst *[]byte, src []byte) error {
	var err error
	if d.zlib == nil {
		d.zlib, err = zlib.NewReader(bytes.NewReader(src))
	} else {
		err = d.zlib.(zlib.Resetter).Reset(bytes.NewReader(src), nil)
	}
	if err != nil {
		return err
	}
	return readBounded(dst, d.zlib, d.chunkBytes)
}

func (d *unfilterer) unzstd(dst *[]byte, src []byte) error {
	if d.zstd == nil {
		var err error
		d.zstd, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(max(8<<20, d.chunkBytes)),
			zstd.WithDecoderMaxMemory(max(8<<20, d.chunkBytes)))
		if err != nil {
			return err
		}
	}
	if err := d.zstd.Reset(bytes.NewReader(src)); err != nil {
		return err
	}
	return readBounded(dst, d.zstd, d.chunkBytes)
}

// unshuffle undoes HDF5's byte shuffle: the stored bytes hold byte 0 of
// every element, then byte 1 of every element, and so on.
func unshuffle(buf *[]byte, src []byte, fl filter, limit uint64) {
	es := 1
	if len(fl.cd) > 0 && fl.cd[0] > 0 && fl.cd[0] <= 1<<16 {
		es = int(fl.cd[0])
	}
	n := int(min(uint64(len(src)), limit))
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	dst := (*buf)[:n]
	*buf = dst
	if es <= 1 {
		copy(dst, src[:n])
		return
	}
	elems := n / es
	for j := 0; j < es; j++ {
		s := src[j*elems : (j+1)*elems]
		for i, v := range s {
			dst[i*es+j] = v
		}
	}
	copy(dst[elems*es:n], src[elems*es:n])
}

func filterName(id uint16) string {
	switch id {
	case filterDeflate:
		return "deflate"
	case filterShuffle:
		return "shuffle"
	case filterFletcher:
		return "fletcher32"
	case filterSzip:
		return "szip"
	case filterNbit:
		return "nbit"
	case filterScale:
		return "scaleoffset"
	case filterLZ4:
		return "lz4"
	case filterBzip2:
		return "bzip2"
	case filterBlosc:
		return "blosc"
	case filterZstd:
		return "zstd"
	}
	return "id " + itoa(uint64(id))
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// copyChunk copies the part of a full chunk that lies inside the dataset.
func copyChunk(out, chunk []byte, index uint64, grid, cdims, dims []uint64, es uint64) {
	r := len(dims)
	start := make([]uint64, r)
	count := make([]uint64, r)
	rem := index
	for i := r - 1; i >= 0; i-- {
		start[i] = (rem % grid[i]) * cdims[i]
		rem /= grid[i]
		count[i] = min(cdims[i], dims[i]-start[i])
	}
	idx := make([]uint64, r) // position inside the chunk, last dimension excluded
	run := count[r-1] * es
	for {
		var src, dst uint64
		for i := 0; i < r; i++ {
			src = src*cdims[i] + idx[i]
			dst = dst*dims[i] + start[i] + idx[i]
		}
		copy(out[dst*es:dst*es+run], chunk[src*es:src*es+run])
		i := r - 2
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < count[i] {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return
		}
	}
}

// implicit lists the chunks of an implicit index: every chunk of the
// maximum grid stored unfiltered, one after another from the index address.
func (f *file) implicit(in *info, order *chunkOrder, chunkBytes uint64) ([]chunkRef, error) {
	if len(in.filters) > 0 {
		return nil, errAt(convert.ErrMalformed, in.off, "implicit chunk index with filters")
	}
	if _, _, err := f.at(in.layout.addr, mustMul(order.count, chunkBytes), "implicit chunk index"); err != nil {
		return nil, err
	}
	var refs []chunkRef
	for e := uint64(0); e < order.count; e++ {
		if idx, ok := order.place(e); ok {
			refs = append(refs, chunkRef{addr: in.layout.addr + e*chunkBytes, size: chunkBytes, index: idx})
		}
	}
	return refs, nil
}

// fixedArray reads a fixed array chunk index (rule C1).
func (f *file) fixedArray(addr uint64, filtered bool, order *chunkOrder, chunkBytes uint64) ([]chunkRef, error) {
	c, err := f.checksummed(addr, 28, "FAHD", "fixed array header")
	if err != nil {
		return nil, err
	}
	off := c.off
	client, esize, pageBits := c.u8(), int(c.u8()), c.u8()
	n := c.u64()
	dblk := c.u64()
	if c.err != nil {
		return nil, c.err
	}
	if (client == 1) != filtered || client > 1 {
		return nil, errAt(convert.ErrMalformed, off, "fixed array client %d disagrees with the filter pipeline", client)
	}
	if n != order.count {
		return nil, errAt(convert.ErrMalformed, off, "fixed array of %d entries for %d chunks", n, order.count)
	}
	er, err := newEntryReader(esize, filtered, chunkBytes, order, f.lim.MaxChunks, off)
	if err != nil {
		return nil, err
	}
	if pageBits > 32 {
		return nil, errAt(convert.ErrMalformed, off, "fixed array page bits %d", pageBits)
	}
	pageN := uint64(1) << pageBits
	db, doff, err := f.rest(dblk, "fixed array data block")
	if err != nil {
		return nil, err
	}
	dc := newCursor(db, doff, "fixed array data block")
	sig := dc.bytes(4)
	dc.skip(2)
	if hdr := dc.u64(); dc.err == nil && (string(sig) != "FADB" || hdr != addr) {
		return nil, errAt(convert.ErrMalformed, doff, "no fixed array data block signature")
	}
	checksum := func(c *cursor, from int) {
		if c.err == nil {
			end := c.p
			if sum := c.u32(); c.err == nil && lookup3(c.b[from:end]) != sum {
				c.fail(convert.ErrMalformed, "fixed array checksum mismatch")
			}
		}
	}
	if n <= pageN {
		if uint64(dc.left()) < n*uint64(esize) {
			return nil, errAt(convert.ErrMalformed, doff, "fixed array data block truncated")
		}
		er.read(dc, 0, n)
		checksum(dc, 0)
	} else {
		pages := (n + pageN - 1) / pageN
		dc.skip(int((pages + 7) / 8))
		checksum(dc, 0)
		for p := uint64(0); p < pages && dc.err == nil; p++ {
			cnt := min(pageN, n-p*pageN)
			if uint64(dc.left()) < cnt*uint64(esize) {
				return nil, errAt(convert.ErrMalformed, dc.pos(), "fixed array page truncated")
			}
			from := dc.p
			er.read(dc, p*pageN, cnt)
			checksum(dc, from)
		}
	}
	if dc.err != nil {
		return nil, dc.err
	}
	if err := f.work(dc.p, doff); err != nil {
		return nil, err
	}
	return er.refs, nil
}

// btree1 reads a version 1 B-tree of raw data chunks (rule C1).
func (f *file) btree1(root uint64, l *layout, dims, grid []uint64) ([]chunkRef, error) {
	var refs []chunkRef
	seen := map[uint64]bool{}
	rank := len(dims)
	var walk func(addr uint64, depth int) error
	walk = func(addr uint64, depth int) error {
		if depth > f.lim.MaxDepth {
			return errAt(convert.ErrLimit, -1, "chunk B-tree deeper than the limit")
		}
		if seen[addr] {
			return errAt(convert.ErrMalformed, -1, "chunk B-tree node %d reached twice", addr)
		}
		seen[addr] = true
		b, off, err := f.rest(addr, "chunk B-tree node")
		if err != nil {
			return err
		}
		if err := f.countObject(off); err != nil {
			return err
		}
		c := newCursor(b, off, "chunk B-tree node")
		sig := c.bytes(4)
		typ, level, used := c.u8(), c.u8(), int(c.u16())
		c.skip(16)
		if c.err != nil {
			return c.err
		}
		if string(sig) != "TREE" || typ != 1 {
			return errAt(convert.ErrMalformed, off, "no chunk B-tree node signature")
		}
		keySize := 8 + 8*(rank+1)
		if used > c.left()/(keySize+8) {
			return errAt(convert.ErrMalformed, off, "chunk B-tree node of %d entries truncated", used)
		}
		if err := f.work(used*(keySize+8), off); err != nil {
			return err
		}
		for i := 0; i < used; i++ {
			size := uint64(c.u32())
			mask := c.u32()
			var index uint64
			bad := false
			for d := 0; d < rank; d++ {
				o := c.u64()
				if o%l.chunk[d] != 0 || o/l.chunk[d] >= grid[d] {
					bad = true
				}
				index = index*grid[d] + o/max(l.chunk[d], 1)
			}
			c.skip(8)
			child := c.u64()
			if c.err != nil {
				return c.err
			}
			if level == 0 {
				if bad {
					return errAt(convert.ErrMalformed, c.pos(), "chunk offset outside the dataset or not on a chunk boundary")
				}
				if len(refs) >= f.lim.MaxChunks {
					return errAt(convert.ErrLimit, c.pos(), "more than %d chunks", f.lim.MaxChunks)
				}
				refs = append(refs, chunkRef{addr: child, size: size, mask: mask, index: index})
				continue
			}
			if err := walk(child, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, 0); err != nil {
		return nil, err
	}
	return refs, nil
}
