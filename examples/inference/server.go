package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/sign"
)

// A model is one loaded file. Its tensors are views of the file's mapping,
// so the file stays open while any request uses it: refs counts the
// requests plus one for being the current model, and the file is closed
// when the count reaches zero.
type model struct {
	f       *decode.File
	net     chain
	digest  string // the header digest, hex
	signers []string
	loaded  time.Time
	stat    os.FileInfo

	refs int // guarded by server.mu
}

// server serves one model file and replaces it when the file is replaced.
type server struct {
	path    string
	trusted *sign.KeyRing
	logf    func(format string, args ...any)

	mu       sync.Mutex
	cur      *model  // nil until the first successful load
	lastSeen version // the file last tried, loaded or refused
	lastErr  error
}

// maxElements bounds a request's input (and so its memory).
const maxElements = 1 << 22

func newServer(path string, trusted *sign.KeyRing) *server {
	return &server{path: path, trusted: trusted, logf: log.Printf}
}

// load opens the file under a policy requiring a trusted signature, builds
// the network and touches every tensor it uses, so each digest is checked
// now rather than during a request.
func (s *server) load(st os.FileInfo) (*model, error) {
	m := &model{stat: st, loaded: time.Now()}
	p := sign.Require(s.trusted)
	p.OnVerified = func(r *sign.Result) {
		for _, id := range r.Trusted {
			m.signers = append(m.signers, id.String())
		}
	}
	f, err := decode.Open(s.path, decode.WithPolicy(p), decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		return nil, err
	}
	net, err := buildModel(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	pre := f.Preamble()
	m.f, m.net, m.digest = f, net, hex.EncodeToString(pre.HeaderDigest[:])
	return m, nil
}

// A version identifies the model file and its detached signature as last
// seen, so replacing either one triggers a reload.
type version struct{ model, sig os.FileInfo }

func same(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// poll checks whether the file or its detached signature was replaced
// (another inode, size or time) and, if so, loads it; a file that fails to
// load is refused and the current model keeps serving. It returns the load
// error, if any.
func (s *server) poll() error {
	st, err := os.Stat(s.path)
	if err != nil {
		return err
	}
	v := version{model: st}
	if sig, err := os.Stat(sign.DetachedPath(s.path)); err == nil {
		v.sig = sig
	}
	s.mu.Lock()
	seen := s.lastSeen
	s.mu.Unlock()
	if seen.model != nil && same(seen.model, v.model) && same(seen.sig, v.sig) {
		return nil
	}
	m, err := s.load(st)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastSeen, s.lastErr = v, err
	if err != nil {
		s.logf("refusing %s: %v (still serving %s)", s.path, err, digestOf(s.cur))
		return err
	}
	old := s.cur
	m.refs = 1
	s.cur = m
	if old != nil {
		s.releaseLocked(old)
	}
	s.logf("serving %s, header digest %s", s.path, m.digest)
	return nil
}

func digestOf(m *model) string {
	if m == nil {
		return "no model"
	}
	return m.digest
}

// watch polls every interval until ctx is done.
func (s *server) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.poll()
		}
	}
}

func (s *server) acquire() *model {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.refs++
	}
	return s.cur
}

func (s *server) release(m *model) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(m)
}

func (s *server) releaseLocked(m *model) {
	m.refs--
	if m.refs == 0 {
		m.f.Close()
	}
}

// close releases the current model.
func (s *server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.releaseLocked(s.cur)
		s.cur = nil
	}
}

type predictRequest struct {
	Input []float32 `json:"input"`
	Shape []int     `json:"shape"`
}

type predictResponse struct {
	Output []float32 `json:"output"`
	Shape  []int     `json:"shape"`
	Model  string    `json:"model"` // the header digest of the model that answered
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /predict", s.predict)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	return mux
}

func (s *server) predict(w http.ResponseWriter, r *http.Request) {
	var req predictRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("bad request: %w", err))
		return
	}
	n := 1
	for _, d := range req.Shape {
		if d <= 0 || d > maxElements || n > maxElements/d {
			httpError(w, http.StatusBadRequest, fmt.Errorf("bad shape %v", req.Shape))
			return
		}
		n *= d
	}
	if len(req.Shape) == 0 || n != len(req.Input) {
		httpError(w, http.StatusBadRequest, fmt.Errorf("shape %v does not hold %d values", req.Shape, len(req.Input)))
		return
	}
	m := s.acquire()
	if m == nil {
		httpError(w, http.StatusServiceUnavailable, errors.New("no model loaded"))
		return
	}
	defer s.release(m)
	y, err := m.net.forward(tensor{data: req.Input, shape: req.Shape})
	if err != nil {
		httpError(w, http.StatusUnprocessableEntity, err)
		return
	}
	writeJSON(w, http.StatusOK, predictResponse{Output: y.data, Shape: y.shape, Model: m.digest})
}

type readiness struct {
	Ready        bool     `json:"ready"`
	Path         string   `json:"path"`
	HeaderDigest string   `json:"header_digest,omitempty"`
	Signers      []string `json:"signers,omitempty"`
	LoadedAt     string   `json:"loaded_at,omitempty"`
	LastError    string   `json:"last_error,omitempty"` // the last replacement refused
}

func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	res := readiness{Path: s.path}
	if s.lastErr != nil {
		res.LastError = s.lastErr.Error()
	}
	if m := s.cur; m != nil {
		res.Ready, res.HeaderDigest, res.Signers = true, m.digest, m.signers
		res.LoadedAt = m.loaded.UTC().Format(time.RFC3339)
	}
	s.mu.Unlock()
	code := http.StatusOK
	if !res.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
