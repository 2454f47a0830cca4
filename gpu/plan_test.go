package gpu

import (
	"fmt"
	"testing"

	"github.com/safeweights/safeweights/format"
)

func allTensors(v *fileView) []int {
	out := make([]int, len(v.tensors))
	for i := range out {
		out[i] = i
	}
	return out
}

func TestPlanBookkeeping(t *testing.T) {
	for _, align := range []int64{64, 4096, 1 << 16} {
		for _, chunk := range []int64{1024, 8192, 1 << 20} {
			for _, win := range []int64{4096, 3 * 4096, 1 << 20} {
				for _, per := range []bool{false, true} {
					name := fmt.Sprintf("align=%d/chunk=%d/window=%d/per=%v", align, chunk, win, per)
					t.Run(name, func(t *testing.T) {
						v := buildView(1, oddSpecs(chunk), align, chunk)
						p, err := makePlan(v, planConfig{chosen: allTensors(v), perTensor: per, window: win, gran: 4096})
						if err != nil {
							t.Fatal(err)
						}
						checkPlan(t, v, p, per, win)
					})
				}
			}
		}
	}
}

func checkPlan(t *testing.T, v *fileView, p *plan, per bool, win int64) {
	t.Helper()
	// Placements: inside their allocation, aligned in the shared one, and
	// not overlapping.
	type span struct{ lo, hi int64 }
	used := map[int][]span{}
	for _, pl := range p.places {
		tt := v.tensors[pl.tensor]
		if pl.alloc < 0 {
			if tt.length != 0 {
				t.Errorf("%s: no allocation for %d bytes", tt.name, tt.length)
			}
			continue
		}
		if pl.off < 0 || pl.off+tt.length > p.allocs[pl.alloc] {
			t.Errorf("%s: [%d, +%d) outside allocation of %d", tt.name, pl.off, tt.length, p.allocs[pl.alloc])
		}
		if !per && pl.off%v.alignment != 0 {
			t.Errorf("%s: offset %d not a multiple of the alignment %d", tt.name, pl.off, v.alignment)
		}
		for _, s := range used[pl.alloc] {
			if pl.off < s.hi && s.lo < pl.off+tt.length {
				t.Errorf("%s overlaps another tensor", tt.name)
			}
		}
		used[pl.alloc] = append(used[pl.alloc], span{pl.off, pl.off + tt.length})
	}
	if !per && len(p.allocs) != 1 {
		t.Errorf("%d allocations, want one", len(p.allocs))
	}

	// Windows: page-aligned, in order, disjoint; every stored byte of every
	// raw tensor in exactly one segment, with the right chunk numbers.
	covered := map[int]int64{}
	var prevEnd int64
	for i, w := range p.windows {
		if w.off%4096 != 0 || w.end%4096 != 0 || w.off < prevEnd || w.need > w.end {
			t.Errorf("window %d [%d, %d) need %d after %d: not page-aligned, ordered and disjoint", i, w.off, w.end, w.need, prevEnd)
		}
		prevEnd = w.end
		if w.len() > win && len(w.segs) > 1 {
			// Larger than the target only when pages forced segments together.
			for j := 1; j < len(w.segs); j++ {
				if w.segs[j].off&^4095 >= alignUpT(w.segs[j-1].end) && w.segs[j].end-w.off > win {
					t.Errorf("window %d holds %d bytes, over the target %d without need", i, w.len(), win)
				}
			}
		}
		for _, s := range w.segs {
			tt := v.tensors[s.tensor]
			if s.off < w.off || s.end > w.need {
				t.Errorf("segment outside its window")
			}
			if s.off != tt.offset+covered[s.tensor] {
				t.Errorf("%s: segment at %d, want %d", tt.name, s.off, tt.offset+covered[s.tensor])
			}
			if int64(s.chunk0)*v.chunkSize != s.off-tt.offset {
				t.Errorf("%s: segment chunk %d at stored offset %d", tt.name, s.chunk0, s.off-tt.offset)
			}
			if s.end != tt.offset+tt.stored && (s.end-s.off)%v.chunkSize != 0 {
				t.Errorf("%s: segment not whole chunks", tt.name)
			}
			covered[s.tensor] += s.end - s.off
		}
		// Runs cover the segments and copy only within the window.
		var runBytes, segBytes int64
		for _, r := range w.runs {
			if r.off < w.off || r.off+r.n > w.need {
				t.Errorf("run outside its window")
			}
			runBytes += r.n
		}
		for _, s := range w.segs {
			segBytes += s.end - s.off
		}
		if runBytes < segBytes {
			t.Errorf("window %d: runs copy %d bytes of %d", i, runBytes, segBytes)
		}
	}
	for i, tt := range v.tensors {
		want := tt.stored
		if tt.compression != format.None {
			want = 0
		}
		if covered[i] != want {
			t.Errorf("%s: segments cover %d of %d stored bytes", tt.name, covered[i], want)
		}
	}
}

func alignUpT(v int64) int64 { return (v + 4095) &^ 4095 }

func TestPlanMergesPaddedRuns(t *testing.T) {
	// Whole model, one allocation: the device mirrors the file, so each
	// window is a single copy, padding included.
	v := buildView(2, []spec{{"a", 5000, false}, {"b", 70, false}, {"c", 9000, false}}, 64, 1024)
	p, err := makePlan(v, planConfig{chosen: allTensors(v), window: 1 << 20, gran: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.windows) != 1 || len(p.windows[0].runs) != 1 {
		t.Fatalf("got %d windows, first with %d runs; want one run", len(p.windows), len(p.windows[0].runs))
	}
}

func TestPlanChosenSubset(t *testing.T) {
	v := buildView(3, oddSpecs(1024), 4096, 1024)
	chosen := []int{2, 5, 8}
	p, err := makePlan(v, planConfig{chosen: chosen, window: 8192, gran: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.places) != 3 {
		t.Fatalf("%d placements", len(p.places))
	}
	for _, w := range p.windows {
		for _, s := range w.segs {
			if s.tensor != 2 && s.tensor != 5 && s.tensor != 8 {
				t.Errorf("segment of unchosen tensor %d", s.tensor)
			}
		}
	}
}

func TestPlanRejectsImpossibleViews(t *testing.T) {
	v := buildView(4, []spec{{"a", 100, false}}, 64, 1024)
	v.tensors[0].stored = v.size // past the end of the file
	if _, err := makePlan(v, planConfig{chosen: []int{0}, window: 4096, gran: 4096}); err == nil {
		t.Error("a tensor past the end of the file was planned")
	}
	v = buildView(4, []spec{{"a", 100, false}}, 64, 1024)
	v.tensors[0].length = 99 // raw, but lengths disagree
	if _, err := makePlan(v, planConfig{chosen: []int{0}, window: 4096, gran: 4096}); err == nil {
		t.Error("a raw tensor with two lengths was planned")
	}
	v = buildView(4, []spec{{"a", 100, false}}, 64, 1024)
	v.chunkSize = 0
	if _, err := makePlan(v, planConfig{chosen: []int{0}, window: 4096, gran: 4096}); err == nil {
		t.Error("a zero chunk size was planned")
	}
}
