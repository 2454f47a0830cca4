package httpsrc_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

// rng is one request's byte range, as asked; end is exclusive.
type rng struct{ off, end int64 }

// server serves one object by byte ranges, as a model hub or a CDN does,
// and lets a test inject a fault into any request.
type server struct {
	mu       sync.Mutex
	data     []byte
	etag     string
	requests []rng
	// fault, if set, is called for request i (0-based) before it is
	// served; it returns true when it wrote the response itself.
	fault func(i int, w http.ResponseWriter, r *http.Request, data []byte, ra rng) bool

	srv *httptest.Server
}

// newServer starts a server of data; t, if not nil, closes it at the end
// of the test.
func newServer(t *testing.T, data []byte) *server {
	s := &server{data: data, etag: `"v1"`}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	if t != nil {
		t.Cleanup(s.srv.Close)
	}
	return s
}

func (s *server) url() string { return s.srv.URL + "/model.swt" }

// set replaces the object; a new etag marks a new version, the same etag
// a server that lies.
func (s *server) set(data []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.etag = data, etag
}

func (s *server) reqs() []rng {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rng(nil), s.requests...)
}

func (s *server) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// parseRange parses the one form the backend sends: "bytes=a-b".
func parseRange(h string, size int64) (rng, bool) {
	a, b, ok := strings.Cut(strings.TrimPrefix(h, "bytes="), "-")
	if !ok {
		return rng{}, false
	}
	off, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || off > last {
		return rng{}, false
	}
	return rng{off, last + 1}, true
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	data, tag := s.data, s.etag
	i := len(s.requests)
	ra, ok := parseRange(r.Header.Get("Range"), int64(len(data)))
	if !ok {
		s.mu.Unlock()
		http.Error(w, "range required", http.StatusBadRequest)
		return
	}
	s.requests = append(s.requests, ra)
	fault := s.fault
	s.mu.Unlock()
	if fault != nil && fault(i, w, r, data, ra) {
		return
	}
	if im := r.Header.Get("If-Match"); im != "" && im != tag {
		w.WriteHeader(http.StatusPreconditionFailed)
		return
	}
	serveRange(w, data, tag, ra)
}

// serveRange answers a range request for ra of data, as a good server does.
func serveRange(w http.ResponseWriter, data []byte, tag string, ra rng) {
	size := int64(len(data))
	w.Header().Set("ETag", tag)
	if ra.off >= size {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return
	}
	end := min(ra.end, size)
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", ra.off, end-1, size))
	w.Header().Set("Content-Length", strconv.FormatInt(end-ra.off, 10))
	w.WriteHeader(http.StatusPartialContent)
	w.Write(data[ra.off:end])
}

// model is a .swt file made by encode, with the bytes of each tensor.
type model struct {
	raw     []byte
	tensors map[string][]byte
	pre     format.Preamble
}

// makeModel writes n tensors; tensor i has size(i) bytes (0 for empty).
func makeModel(t testing.TB, n int, size func(i int) int, opts ...encode.Option) *model {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.swt")
	w, err := encode.Create(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	m := &model{tensors: map[string][]byte{}}
	for i := range n {
		d := make([]byte, size(i))
		for j := range d {
			d[j] = byte(i*31 + j*7 + 1)
		}
		name := fmt.Sprintf("layers.%d.weight", i)
		if err := w.Add(name, format.U8, []int64{int64(len(d))}, d); err != nil {
			t.Fatal(err)
		}
		m.tensors[name] = d
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if m.raw, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	if m.pre, err = format.ParsePreamble(m.raw[:format.PreambleSize], int64(len(m.raw)), format.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	return m
}
