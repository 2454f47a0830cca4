package gpu

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// Progress counts every tensor byte once, raw and compressed, on every
// path and window size, never going back, and ends at the total.
func TestLoadProgress(t *testing.T) {
	for _, path := range []Path{Mapped, Buffered} {
		for _, win := range []int64{4096, 5 * 4096, 1 << 20} {
			t.Run(fmt.Sprintf("%v/window=%d", path, win), func(t *testing.T) {
				v := buildView(7, oddSpecs(1024), 64, 1024)
				var want int64
				for _, tn := range v.tensors {
					want += tn.length
				}
				var mu sync.Mutex
				var calls [][2]int64
				m, err := loadView(context.Background(), v, withFake(newFakeDev()), WithPath(path), WithWindowSize(win),
					WithDepth(3), WithStreams(2), WithVerify(), WithHashers(2),
					WithProgress(func(done, total int64) {
						mu.Lock()
						calls = append(calls, [2]int64{done, total})
						mu.Unlock()
					}))
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				if len(calls) < 2 || calls[0] != [2]int64{0, want} {
					t.Fatalf("calls %v, want a first call 0/%d", calls, want)
				}
				for i, c := range calls {
					if c[1] != want || (i > 0 && c[0] < calls[i-1][0]) {
						t.Fatalf("call %d: %v after %v (total %d)", i, c, calls[max(i-1, 0)], want)
					}
				}
				if last := calls[len(calls)-1]; last[0] != want {
					t.Fatalf("progress ended at %d of %d", last[0], want)
				}
			})
		}
	}
}
