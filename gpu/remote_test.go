package gpu

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/source/remote"
	"github.com/safeweights/safeweights/tp"
)

// serveFile serves b with range requests and an ETag, as a model hub does.
func serveFile(t *testing.T, b []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"1"`)
		http.ServeContent(w, r, "m.swt", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/m.swt"
}

// TestLoadRemoteFile: a File read from an HTTP server has no mapping and no
// path: every path falls back to buffered reads through its source, and the
// chunk digests are checked in the staged buffers.
func TestLoadRemoteFile(t *testing.T) {
	path := writeFile(t)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	url := serveFile(t, raw)
	for _, p := range []Path{Auto, Mapped, Direct, Buffered} {
		t.Run(p.String(), func(t *testing.T) {
			f, err := remote.OpenFile(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			dev := newFakeDev()
			m, err := Load(context.Background(), f, withFake(dev), WithPath(p), WithVerify(), WithWindowSize(64<<10))
			if err != nil {
				t.Fatal(err)
			}
			if m.Stats.Path != Buffered {
				t.Errorf("path %v for a remote file, want buffered", m.Stats.Path)
			}
			if err := m.Check(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			dev.assertClean(t, 0)
		})
	}
}

// TestLoadRemoteFileCorrupt: a byte changed on the server is a digest
// error, whichever path was asked for.
func TestLoadRemoteFileCorrupt(t *testing.T) {
	path := writeFile(t)
	f, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tt, _ := f.Tensor("w3")
	off := tt.Offset + 7*1024 + 9
	f.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[off] ^= 0x80
	url := serveFile(t, raw)
	for _, p := range []Path{Auto, Buffered, Direct} {
		f, err := remote.OpenFile(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		dev := newFakeDev()
		_, err = Load(context.Background(), f, withFake(dev), WithPath(p), WithVerify())
		var de *DigestError
		if !errors.As(err, &de) || de.Tensor != "w3" || de.Chunk != 7 {
			t.Fatalf("%v: got %v, want a digest error in w3 chunk 7", p, err)
		}
		dev.assertClean(t, 0)
		f.Close()
	}
}

// TestLoadPlanRemoteFile: a rank's slices come from an HTTP server, each
// chunk hashed in the pinned buffer it is copied from; a changed byte on
// the server fails the rank whose slice holds it.
func TestLoadPlanRemoteFile(t *testing.T) {
	path, raw := writeTPFile(t, 1024)
	local, err := decode.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	url := serveFile(t, raw)
	for rank := range 2 {
		f, err := remote.OpenFile(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := tp.NewPlan(f, rank, 2, tp.Rows)
		if err != nil {
			t.Fatal(err)
		}
		dev := newFakeDev()
		m, err := LoadPlan(context.Background(), f, plan, withFake(dev), WithWindowSize(4096), WithWorkers(2))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.CheckSource(context.Background(), local); err != nil {
			t.Fatal(err)
		}
		m.Close()
		f.Close()
		dev.assertClean(t, 0)
	}

	tt, _ := local.Tensor("attn.out")
	bad := bytes.Clone(raw)
	bad[tt.Offset+10] ^= 0x04 // in rank 0's rows
	url = serveFile(t, bad)
	for rank, want := range []error{format.ErrDigest, nil} {
		f, err := remote.OpenFile(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := tp.NewPlan(f, rank, 2, tp.Rows)
		if err != nil {
			t.Fatal(err)
		}
		dev := newFakeDev()
		m, err := LoadPlan(context.Background(), f, plan, withFake(dev))
		if !errors.Is(err, want) || (want == nil && err != nil) {
			t.Fatalf("rank %d: got %v, want %v", rank, err, want)
		}
		if m != nil {
			m.Close()
		}
		f.Close()
		dev.assertClean(t, 0)
	}
}
