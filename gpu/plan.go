package gpu

import (
	"fmt"
	"math/bits"
	"sort"

	"github.com/safeweights/safeweights/format"
)

// The plan cuts the chosen tensors into segments and groups the segments into
// windows.
//
// A segment is a run of whole digest chunks of one raw tensor: the unit that
// is hashed and copied. A window is a page-aligned file range holding one or
// more segments: the unit that is registered (or read into one staging
// buffer), copied and released. Windows never share a page, because the
// driver refuses to register a page twice; segments whose pages touch land
// in the same window.

// placement is where one chosen tensor lives on the device.
type placement struct {
	tensor int   // index into fileView.tensors
	alloc  int   // index of the allocation, -1 for an empty tensor in per-tensor mode
	off    int64 // byte offset inside the allocation
}

type segment struct {
	tensor int   // index into fileView.tensors
	place  int   // index into plan.places
	off    int64 // file offset of the first stored byte
	end    int64 // file offset after the last stored byte
	chunk0 int   // digest chunk index of off within the tensor
}

// copyRun is one host-to-device copy: n bytes from file offset off to
// allocation alloc at dst. Adjacent segments whose gaps are equal in the file
// and on the device (alignment padding) merge into one run.
type copyRun struct {
	off   int64
	n     int64
	alloc int
	dst   int64
}

type window struct {
	off  int64 // page-aligned file offset
	end  int64 // page-aligned end; may pass the end of the file
	need int64 // file offset after the last byte any segment needs
	segs []segment
	runs []copyRun
}

func (w *window) len() int64 { return w.end - w.off }

// bytes is the number of tensor bytes the window brings to the device:
// its segments, without the padding that merged runs copy too.
func (w *window) bytes() int64 {
	var n int64
	for _, sg := range w.segs {
		n += sg.end - sg.off
	}
	return n
}

type plan struct {
	places     []placement
	allocs     []int64 // allocation sizes in bytes
	windows    []window
	compressed []int // indexes into places of compressed tensors
	bytes      int64 // decoded bytes of all chosen tensors
	maxWindow  int64
}

type planConfig struct {
	chosen    []int // indexes of the chosen tensors in file order
	perTensor bool  // one allocation per tensor
	window    int64 // target window size
	gran      int64 // page granularity of windows: a power of two >= the OS page
}

func alignUp(v, a int64) (int64, bool) {
	r, ok := format.AlignUp(uint64(v), uint64(a))
	return int64(r), ok && r <= 1<<62
}

func addOK(a, b int64) (int64, bool) {
	s, c := bits.Add64(uint64(a), uint64(b), 0)
	return int64(s), c == 0 && s <= 1<<62
}

// makePlan lays out the chosen tensors of v. It trusts the decoder for the
// file's own consistency but still checks each sum it forms, so a view with
// impossible numbers gives an error rather than a wrong plan.
func makePlan(v *fileView, cfg planConfig) (*plan, error) {
	if cfg.gran <= 0 || cfg.gran&(cfg.gran-1) != 0 || cfg.window < cfg.gran {
		return nil, fmt.Errorf("gpu: bad plan granularity %d or window %d", cfg.gran, cfg.window)
	}
	if v.chunkSize <= 0 {
		return nil, fmt.Errorf("gpu: chunk size %d: %w", v.chunkSize, format.ErrChunking)
	}
	align := v.alignment
	if align <= 0 || align&(align-1) != 0 {
		return nil, fmt.Errorf("gpu: alignment %d: %w", align, format.ErrLayout)
	}
	p := &plan{}
	var cur int64 // end of the single allocation so far
	for _, ti := range cfg.chosen {
		t := &v.tensors[ti]
		if t.offset < 0 || t.stored < 0 || t.length < 0 {
			return nil, fmt.Errorf("gpu: tensor %q: negative extent: %w", t.name, format.ErrLayout)
		}
		if end, ok := addOK(t.offset, t.stored); !ok || end > v.size {
			return nil, fmt.Errorf("gpu: tensor %q: stored bytes past the end of the file: %w", t.name, format.ErrLayout)
		}
		if t.compression == format.None && t.stored != t.length {
			return nil, fmt.Errorf("gpu: tensor %q: raw stored length %d is not its length %d: %w", t.name, t.stored, t.length, format.ErrShape)
		}
		pl := placement{tensor: ti, alloc: -1}
		switch {
		case cfg.perTensor:
			if t.length > 0 {
				pl.alloc = len(p.allocs)
				p.allocs = append(p.allocs, t.length)
			}
		default:
			off, ok := alignUp(cur, align)
			end, ok2 := addOK(off, t.length)
			if !ok || !ok2 {
				return nil, fmt.Errorf("gpu: tensor %q: allocation size overflows: %w", t.name, format.ErrLimit)
			}
			pl.alloc, pl.off, cur = 0, off, end
		}
		p.bytes += t.length
		p.places = append(p.places, pl)
		if t.compression != format.None && t.length > 0 {
			p.compressed = append(p.compressed, len(p.places)-1)
		}
	}
	if !cfg.perTensor {
		if cur > 0 {
			p.allocs = []int64{cur}
		} else {
			for i := range p.places {
				p.places[i].alloc = -1 // all empty: nothing to allocate
			}
		}
	}

	// Segments of raw tensors, in file order.
	per := cfg.window / v.chunkSize // whole chunks per segment
	if per < 1 {
		per = 1
	}
	var segs []segment
	for pi, pl := range p.places {
		t := &v.tensors[pl.tensor]
		if t.compression != format.None || t.stored == 0 {
			continue
		}
		nChunks := (t.stored + v.chunkSize - 1) / v.chunkSize
		for k := int64(0); k < nChunks; k += per {
			off := t.offset + k*v.chunkSize
			end := min(off+per*v.chunkSize, t.offset+t.stored)
			segs = append(segs, segment{tensor: pl.tensor, place: pi, off: off, end: end, chunk0: int(k)})
		}
	}
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].off < segs[j].off })

	// Windows: start a new one when the next segment neither shares a page
	// with the current window nor fits in it after at most one alignment of
	// padding.
	gap := max(align, cfg.gran)
	for _, s := range segs {
		lo := s.off &^ (cfg.gran - 1)
		hi, ok := alignUp(s.end, cfg.gran)
		if !ok {
			return nil, fmt.Errorf("gpu: tensor %q: offset overflows: %w", v.tensors[s.tensor].name, format.ErrLayout)
		}
		if n := len(p.windows); n > 0 {
			w := &p.windows[n-1]
			if lo < w.end || (lo-w.end <= gap && hi-w.off <= cfg.window) {
				w.end = max(w.end, hi)
				w.need = max(w.need, s.end)
				w.segs = append(w.segs, s)
				continue
			}
		}
		p.windows = append(p.windows, window{off: lo, end: hi, need: s.end, segs: []segment{s}})
	}
	for i := range p.windows {
		w := &p.windows[i]
		for _, s := range w.segs {
			pl := p.places[s.place]
			dst := pl.off + (s.off - v.tensors[s.tensor].offset)
			if n := len(w.runs); n > 0 {
				r := &w.runs[n-1]
				fileGap, devGap := s.off-(r.off+r.n), dst-(r.dst+r.n)
				if r.alloc == pl.alloc && fileGap == devGap && fileGap >= 0 && fileGap <= align {
					r.n += fileGap + (s.end - s.off)
					continue
				}
			}
			w.runs = append(w.runs, copyRun{off: s.off, n: s.end - s.off, alloc: pl.alloc, dst: dst})
		}
		p.maxWindow = max(p.maxWindow, w.len())
	}
	return p, nil
}
