package tp_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/tp"
)

// BenchmarkEightRanks reads rank 3 of 8 of a 4096 x 4096 F32 tensor (64 MiB,
// default 4 MiB chunks), verified, split by rows and by columns, and reports
// the bytes fetched against an eighth of the tensor.
func BenchmarkEightRanks(b *testing.B) {
	const n = 4096
	path := filepath.Join(b.TempDir(), "big.swt")
	w, err := encode.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, n*n*4)
	for i := range data {
		data[i] = byte(i * 13)
	}
	if err := w.Add("w", format.F32, []int64{n, n}, data); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		layout tp.Layout
	}{{"rows", tp.Rows}, {"columns", tp.Columns}} {
		b.Run(c.name, func(b *testing.B) {
			cr := &countingReader{r: bytes.NewReader(raw)}
			f, err := decode.NewReader(cr, int64(len(raw)), decode.WithVerify(decode.VerifyLazy))
			if err != nil {
				b.Fatal(err)
			}
			plan, err := tp.NewPlan(f, 3, 8, c.layout)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(n * n * 4 / 8)
			cr.ranges = nil
			for b.Loop() {
				if _, err := plan.Read(context.Background(), f); err != nil {
					b.Fatal(err)
				}
			}
			fetched := cr.within(0, int64(len(raw)))
			b.ReportMetric(float64(fetched)/float64(b.N)/float64(n*n*4/8), "fetched/eighth")
		})
	}
}
