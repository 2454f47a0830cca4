package httpsrc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/source"
	"github.com/safeweights/safeweights/source/httpsrc"
)

// fast keeps retries quick in tests.
var fast = httpsrc.WithRemoteOptions(source.WithBackoff(time.Millisecond, 5*time.Millisecond))

func openFile(t *testing.T, s *server, dopts []decode.Option, opts ...httpsrc.Option) (*decode.File, error) {
	t.Helper()
	ctx := context.Background()
	src, err := httpsrc.Open(ctx, s.url(), append([]httpsrc.Option{fast}, opts...)...)
	if err != nil {
		return nil, err
	}
	return decode.NewReaderContext(ctx, src, src.Size(), append(dopts, decode.WithCloser(src))...)
}

// dataBytes counts the bytes of the data region [DataOffset, DataEnd) that
// the requests asked for.
func dataBytes(m *model, reqs []rng) int64 {
	lo, hi := int64(m.pre.DataOffset), int64(m.pre.DataEnd())
	var n int64
	for _, r := range reqs {
		if a, b := max(r.off, lo), min(r.end, hi); a < b {
			n += b - a
		}
	}
	return n
}

// TestOpenTwoRequests: opening costs two requests and asks for no tensor
// byte, whatever the header's size; the bytes then read are the model's.
func TestOpenTwoRequests(t *testing.T) {
	cases := []struct {
		name string
		n    int
		size func(int) int
		opts []encode.Option
		// maxData is the most data-region bytes open may ask for: none at
		// the default alignment; with a smaller one the first 4 KiB read
		// reaches into the first tensors.
		maxData int64
	}{
		{"10 tensors", 10, func(i int) int { return 1000 + i }, nil, 0},
		{"100000 tensors", 100_000, func(i int) int {
			if i%10_000 == 0 {
				return 100
			}
			return 0
		}, nil, 0},
		{"100000 tensors aligned to 64", 100_000, func(i int) int { return 8 }, []encode.Option{encode.WithAlignment(64)}, 4096 - 128},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := makeModel(t, c.n, c.size, c.opts...)
			s := newServer(t, m.raw)
			f, err := openFile(t, s, []decode.Option{decode.WithVerify(decode.VerifyLazy)})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			reqs := s.reqs()
			if len(reqs) > 2 {
				t.Fatalf("open made %d requests (%v), want at most 2", len(reqs), reqs)
			}
			if n := dataBytes(m, reqs); n > c.maxData {
				t.Fatalf("open asked for %d bytes of tensor data (%v), want at most %d", n, reqs, c.maxData)
			}
			if f.NumTensors() != c.n {
				t.Fatalf("%d tensors, want %d", f.NumTensors(), c.n)
			}
			for i := 0; i < c.n; i += max(1, c.n/20) {
				checkTensor(t, f, m, i)
			}
		})
	}
}

func checkTensor(t *testing.T, f *decode.File, m *model, i int) {
	t.Helper()
	tn := f.TensorAt(i)
	b, err := tn.Bytes()
	if err != nil {
		t.Fatalf("tensor %s: %v", tn.Name, err)
	}
	if !bytes.Equal(b, m.tensors[tn.Name]) {
		t.Fatalf("tensor %s: bytes differ from the model's", tn.Name)
	}
}

// readAll reads every tensor and compares it with the model: every byte
// returned must be the model's, and any failure must be typed.
func readAll(f *decode.File, m *model) error {
	for tn := range f.All() {
		b, err := tn.Bytes()
		if err != nil {
			return err
		}
		if !bytes.Equal(b, m.tensors[tn.Name]) {
			panic(fmt.Sprintf("tensor %s: returned bytes that differ from the model's", tn.Name))
		}
	}
	return nil
}

// onFirst injects a fault into the first request for each range end: the
// retry, and a resumption after a short body (which keeps the end), are
// served well, however concurrent requests interleave.
func onFirst(fn func(w http.ResponseWriter, r *http.Request, data []byte, ra rng)) func(int, http.ResponseWriter, *http.Request, []byte, rng) bool {
	var mu sync.Mutex
	seen := map[int64]bool{}
	return func(i int, w http.ResponseWriter, r *http.Request, data []byte, ra rng) bool {
		mu.Lock()
		first := !seen[ra.end]
		seen[ra.end] = true
		mu.Unlock()
		if !first {
			return false
		}
		fn(w, r, data, ra)
		return true
	}
}

func partial(w http.ResponseWriter, data []byte, ra rng) {
	end := min(ra.end, int64(len(data)))
	w.Header().Set("ETag", `"v1"`)
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", ra.off, end-1, len(data)))
	w.Header().Set("Content-Length", strconv.FormatInt(end-ra.off, 10))
	w.WriteHeader(http.StatusPartialContent)
	w.Write(data[ra.off : ra.off+(end-ra.off)/2])
}

var modes = []struct {
	name string
	opts []decode.Option
}{
	{"lazy", []decode.Option{decode.WithVerify(decode.VerifyLazy)}},
	{"eager", []decode.Option{decode.WithVerify(decode.VerifyEager)}},
	{"checked", []decode.Option{decode.WithCheckedReads()}},
}

// TestFaultsRetried: every transient fault is retried to success, and
// the bytes returned are the model's.
func TestFaultsRetried(t *testing.T) {
	m := makeModel(t, 6, func(i int) int { return 3000 * (i + 1) }, encode.WithChunkSize(4096))
	faults := map[string]func(int, http.ResponseWriter, *http.Request, []byte, rng) bool{
		"dropped connection mid-body": onFirst(func(w http.ResponseWriter, r *http.Request, data []byte, ra rng) {
			partial(w, data, ra)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}),
		"short body": onFirst(func(w http.ResponseWriter, r *http.Request, data []byte, ra rng) {
			partial(w, data, ra)
		}),
		"503 then success": onFirst(func(w http.ResponseWriter, r *http.Request, data []byte, ra rng) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}),
		"429 then success": onFirst(func(w http.ResponseWriter, r *http.Request, data []byte, ra rng) {
			w.WriteHeader(http.StatusTooManyRequests)
		}),
		"slow past the attempt timeout": onFirst(func(w http.ResponseWriter, r *http.Request, data []byte, ra rng) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}),
		"body longer than asked": func(i int, w http.ResponseWriter, r *http.Request, data []byte, ra rng) bool {
			end := min(ra.end, int64(len(data)))
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", ra.off, end-1, len(data)))
			w.WriteHeader(http.StatusPartialContent) // no Content-Length: chunked
			w.Write(data[ra.off:])
			return true
		},
	}
	for name, fault := range faults {
		for _, mode := range modes {
			t.Run(name+"/"+mode.name, func(t *testing.T) {
				s := newServer(t, m.raw)
				s.fault = fault
				f, err := openFile(t, s, mode.opts, httpsrc.WithRemoteOptions(source.WithAttemptTimeout(200*time.Millisecond)))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := readAll(f, m); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestFaultsTyped: faults no retry cures end in a typed error, and no byte
// that did not match its digest is returned.
func TestFaultsTyped(t *testing.T) {
	m := makeModel(t, 6, func(i int) int { return 3000 * (i + 1) }, encode.WithChunkSize(4096))
	// changed serves, from the third request on, data with one byte of
	// tensor 3 flipped, under the etag tag.
	changed := func(tag string, ifMatch bool) func(int, http.ResponseWriter, *http.Request, []byte, rng) bool {
		return func(i int, w http.ResponseWriter, r *http.Request, data []byte, ra rng) bool {
			if i < 2 {
				return false
			}
			d := bytes.Clone(data)
			d[int64(m.pre.DataOffset)+int64(4096*3)+5] ^= 0x40
			if ifMatch && r.Header.Get("If-Match") != tag {
				w.WriteHeader(http.StatusPreconditionFailed)
				return true
			}
			serveRange(w, d, tag, ra)
			return true
		}
	}
	cases := []struct {
		name  string
		fault func(int, http.ResponseWriter, *http.Request, []byte, rng) bool
		want  error
	}{
		{"same etag, different bytes", changed(`"v1"`, true), format.ErrDigest},
		{"new etag, If-Match refused", changed(`"v2"`, true), source.ErrChanged},
		{"new etag, If-Match ignored", changed(`"v2"`, false), source.ErrChanged},
		{"always 503", func(i int, w http.ResponseWriter, r *http.Request, data []byte, ra rng) bool {
			if i < 2 {
				return false
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}, format.ErrIO},
		{"404", func(i int, w http.ResponseWriter, r *http.Request, data []byte, ra rng) bool {
			if i < 2 {
				return false
			}
			w.WriteHeader(http.StatusNotFound)
			return true
		}, format.ErrIO},
		{"wrong Content-Range", func(i int, w http.ResponseWriter, r *http.Request, data []byte, ra rng) bool {
			if i < 2 {
				return false
			}
			serveRange(w, data, `"v1"`, rng{ra.off + 1, ra.end + 1})
			return true
		}, httpsrc.ErrBadResponse},
	}
	for _, c := range cases {
		for _, mode := range modes {
			t.Run(c.name+"/"+mode.name, func(t *testing.T) {
				s := newServer(t, m.raw)
				s.fault = c.fault
				f, err := openFile(t, s, mode.opts)
				if err == nil {
					err = readAll(f, m)
					f.Close()
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
			})
		}
	}
}

// TestIgnoresRange: a server that answers 200 with the whole object is
// refused once a range past the start is needed, and its body is not read
// past what was asked.
func TestIgnoresRange(t *testing.T) {
	m := makeModel(t, 3, func(i int) int { return 100 }, nil...)
	s := newServer(t, m.raw)
	s.fault = func(i int, w http.ResponseWriter, r *http.Request, data []byte, ra rng) bool {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data)
		return true
	}
	_, err := openFile(t, s, nil)
	if !errors.Is(err, httpsrc.ErrNoRanges) || !errors.Is(err, format.ErrIO) {
		t.Fatalf("got %v, want ErrNoRanges and ErrIO", err)
	}
	var se *source.Error
	if !errors.As(err, &se) || se.Off == 0 || se.Len <= 0 {
		t.Fatalf("got %v, want a *source.Error naming the tail's range", err)
	}
}

// TestStatusErrors: a 404 is not retried; a 503 is, a bounded number of
// times; both name the URL and the range.
func TestStatusErrors(t *testing.T) {
	m := makeModel(t, 1, func(int) int { return 10 }, nil...)
	for _, c := range []struct {
		code, attempts, want int
	}{{http.StatusNotFound, 3, 1}, {http.StatusForbidden, 3, 1}, {http.StatusServiceUnavailable, 3, 3}, {http.StatusInternalServerError, 1, 1}} {
		s := newServer(t, m.raw)
		s.fault = func(i int, w http.ResponseWriter, r *http.Request, data []byte, ra rng) bool {
			w.WriteHeader(c.code)
			return true
		}
		_, err := httpsrc.Open(context.Background(), s.url(), fast, httpsrc.WithRemoteOptions(source.WithAttempts(c.attempts)))
		var st *source.StatusError
		var se *source.Error
		if !errors.As(err, &st) || st.Code != c.code || !errors.As(err, &se) || se.Name != s.url() || se.Len != 4096 {
			t.Fatalf("status %d: got %v", c.code, err)
		}
		if n := len(s.reqs()); n != c.want {
			t.Fatalf("status %d: %d requests, want %d", c.code, n, c.want)
		}
	}
}

// TestBearerToken: the token goes with every request.
func TestBearerToken(t *testing.T) {
	m := makeModel(t, 2, func(int) int { return 10 }, nil...)
	s := newServer(t, m.raw)
	s.fault = func(i int, w http.ResponseWriter, r *http.Request, data []byte, ra rng) bool {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		return false
	}
	f, err := openFile(t, s, []decode.Option{decode.WithVerify(decode.VerifyEager)}, httpsrc.WithBearerToken("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestParallelParts: a read larger than the part size is split into parts
// that together cover it exactly once.
func TestParallelParts(t *testing.T) {
	m := makeModel(t, 2, func(i int) int { return 100_000 }, nil...)
	s := newServer(t, m.raw)
	f, err := openFile(t, s, []decode.Option{decode.WithVerify(decode.VerifyNone)},
		httpsrc.WithRemoteOptions(source.WithPartSize(8192), source.WithConcurrency(4)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s.reset()
	tn := f.TensorAt(0)
	b, err := tn.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, m.tensors[tn.Name]) {
		t.Fatal("bytes differ")
	}
	reqs := s.reqs()
	if want := (100_000 + 8191) / 8192; len(reqs) != want {
		t.Fatalf("%d requests, want %d", len(reqs), want)
	}
	var total int64
	for _, r := range reqs {
		if r.end-r.off > 8192 || r.off < tn.Offset || r.end > tn.Offset+tn.StoredLength {
			t.Fatalf("part %v outside the tensor or over the part size", r)
		}
		total += r.end - r.off
	}
	if total != tn.StoredLength {
		t.Fatalf("parts cover %d bytes, want %d", total, tn.StoredLength)
	}
}

// TestContextCancelled: a cancelled context stops a read and is reported.
func TestContextCancelled(t *testing.T) {
	m := makeModel(t, 1, func(int) int { return 10 }, nil...)
	s := newServer(t, m.raw)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := httpsrc.Open(ctx, s.url(), fast)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, format.ErrIO) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestEmptyObject: a server answers 416 for a range of an empty object;
// decode then reports the file truncated.
func TestEmptyObject(t *testing.T) {
	s := newServer(t, nil)
	_, err := openFile(t, s, nil)
	if !errors.Is(err, format.ErrTruncated) {
		t.Fatalf("got %v, want ErrTruncated", err)
	}
}

// TestRedacted: a URL's query and user information, which may hold
// credentials, appear in no error, even one from the transport.
func TestRedacted(t *testing.T) {
	s := newServer(t, nil)
	u := strings.Replace(s.url(), "http://", "http://user:pw-secret@", 1) + "?X-Signature=query-secret"
	s.srv.Close() // connection refused, from net/http
	_, err := httpsrc.Open(context.Background(), u, httpsrc.WithRemoteOptions(source.WithAttempts(1)))
	if err == nil {
		t.Fatal("open of a closed server succeeded")
	}
	if msg := err.Error(); strings.Contains(msg, "secret") {
		t.Fatalf("error names a credential: %s", msg)
	}
}
