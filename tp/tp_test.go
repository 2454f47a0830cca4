package tp_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/tp"
)

type countingReader struct {
	r      *bytes.Reader
	mu     sync.Mutex
	ranges [][2]int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.ranges = append(c.ranges, [2]int64{off, off + int64(len(p))})
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

// within sums the bytes read inside [lo, hi).
func (c *countingReader) within(lo, hi int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, r := range c.ranges {
		if a, b := max(r[0], lo), min(r[1], hi); a < b {
			n += b - a
		}
	}
	return n
}

type tensor struct {
	name  string
	shape []int64
	data  []byte
}

const chunk = 1024

func model(t *testing.T) ([]tensor, []byte) {
	r := rand.New(rand.NewPCG(1, 2))
	ts := []tensor{
		{name: "attn.qkv", shape: []int64{256, 96}},
		{name: "mlp.up", shape: []int64{100, 40}}, // 100 rows over 8 ranks: uneven
		{name: "mlp.down", shape: []int64{16, 2048}},
		{name: "norm", shape: []int64{96}},
		{name: "conv", shape: []int64{64, 3, 4, 5}},
	}
	path := filepath.Join(t.TempDir(), "m.swt")
	w, err := encode.Create(path, encode.WithChunkSize(chunk), encode.WithAlignment(64))
	if err != nil {
		t.Fatal(err)
	}
	for i := range ts {
		n := int64(4)
		for _, d := range ts[i].shape {
			n *= d
		}
		ts[i].data = make([]byte, n)
		for j := range ts[i].data {
			ts[i].data[j] = byte(r.Uint32())
		}
		if err := w.Add(ts[i].name, format.F32, ts[i].shape, ts[i].data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return ts, raw
}

// concat joins the ranks' slices of a tensor along dim, element by element
// (outer index, then rank, then the rank's block).
func concat(parts [][]byte, shape []int64, dim int, world int) []byte {
	outer := int64(1)
	for _, d := range shape[:dim] {
		outer *= d
	}
	inner := int64(4)
	for _, d := range shape[dim+1:] {
		inner *= d
	}
	var out []byte
	for o := range outer {
		for r := range world {
			a, b := tp.Split(shape[dim], r, world)
			blk := (b - a) * inner
			out = append(out, parts[r][o*blk:(o+1)*blk]...)
		}
	}
	return out
}

func TestEightRanks(t *testing.T) {
	const world = 8
	ts, raw := model(t)
	for _, lay := range []struct {
		name   string
		layout tp.Layout
	}{{"rows", tp.Rows}, {"columns", tp.Columns}, {"by-name", tp.ByName(map[string]int{"conv": 1, "mlp.down": -2}, tp.Rows)}} {
		t.Run(lay.name, func(t *testing.T) {
			parts := map[string][][]byte{}
			var dims map[string]int
			for rank := range world {
				cr := &countingReader{r: bytes.NewReader(raw)}
				f, err := decode.NewReader(cr, int64(len(raw)), decode.WithVerify(decode.VerifyLazy))
				if err != nil {
					t.Fatal(err)
				}
				cr.mu.Lock()
				cr.ranges = nil // what Open read is not the slices' cost
				cr.mu.Unlock()
				plan, err := tp.NewPlan(f, rank, world, lay.layout, tp.WithReads(rank%3))
				if err != nil {
					t.Fatal(err)
				}
				got, err := plan.Read(context.Background(), f)
				if err != nil {
					t.Fatal(err)
				}
				dims = map[string]int{}
				for _, p := range plan.Parts {
					dims[p.Name] = p.Dim
					tt, _ := f.Tensor(p.Name)
					fetched := cr.within(tt.Offset, tt.Offset+tt.StoredLength)
					size := int64(len(got[p.Name]))
					switch {
					case p.Dim == tp.Replicated:
						if fetched != tt.StoredLength {
							t.Errorf("rank %d %s: replicated, read %d of %d bytes", rank, p.Name, fetched, tt.StoredLength)
						}
					case p.Dim == 0:
						// At most 1/8 (rounded up to whole rows) plus two chunks.
						rowBytes := tt.StoredLength / tt.Shape[0]
						maxRows := (tt.Shape[0] + world - 1) / world
						if lim := maxRows*rowBytes + 2*chunk; fetched > lim {
							t.Errorf("rank %d %s: read %d bytes, over 1/%d of the tensor plus two chunks (%d)", rank, p.Name, fetched, world, lim)
						}
					default:
						// One run per outer index: the slice plus two chunks per run.
						runs := int64(1)
						for _, d := range tt.Shape[:p.Dim] {
							runs *= d
						}
						if lim := min(size+2*chunk*runs, tt.StoredLength); fetched > lim {
							t.Errorf("rank %d %s: read %d bytes, over %d", rank, p.Name, fetched, lim)
						}
					}
					parts[p.Name] = append(parts[p.Name], got[p.Name])
				}
				f.Close()
			}
			for _, tt := range ts {
				var whole []byte
				if d := dims[tt.name]; d == tp.Replicated {
					for r := range world {
						if !bytes.Equal(parts[tt.name][r], tt.data) {
							t.Fatalf("%s: rank %d's replica differs", tt.name, r)
						}
					}
					continue
				} else {
					whole = concat(parts[tt.name], tt.shape, d, world)
				}
				if !bytes.Equal(whole, tt.data) {
					t.Fatalf("%s: the ranks' slices do not add up to the tensor", tt.name)
				}
			}
		})
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct{ n, w int64 }{{100, 8}, {8, 8}, {3, 8}, {0, 4}, {4096, 8}, {7, 1}} {
		var next, most int64
		for r := range c.w {
			a, b := tp.Split(c.n, int(r), int(c.w))
			if a != next || b < a {
				t.Fatalf("Split(%d, %d, %d) = %d, %d: not contiguous", c.n, r, c.w, a, b)
			}
			most = max(most, b-a)
			next = b
		}
		if next != c.n || most != (c.n+c.w-1)/c.w {
			t.Fatalf("Split(%d over %d) covers %d, largest part %d", c.n, c.w, next, most)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	_, raw := model(t)
	f, err := decode.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		rank, world int
		layout      tp.Layout
		opts        []tp.Option
	}{
		{8, 8, tp.Rows, nil},
		{-1, 8, tp.Rows, nil},
		{0, 0, tp.Rows, nil},
		{0, 8, tp.Rows, []tp.Option{tp.WithDivisible()}}, // mlp.up has 100 rows
		{0, 2, func(string, []int64) int { return 7 }, nil},
	} {
		if _, err := tp.NewPlan(f, c.rank, c.world, c.layout, c.opts...); !errors.Is(err, tp.ErrPlan) {
			t.Errorf("case %d: got %v, want ErrPlan", i, err)
		}
	}
	if _, err := tp.NewPlan(f, 0, 4, tp.Rows, tp.WithDivisible()); err != nil {
		t.Errorf("a divisible plan: %v", err)
	}
}
