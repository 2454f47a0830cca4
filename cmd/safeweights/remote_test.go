package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// httpserve starts an HTTP server in the test process that serves the
// script's work directory with range requests (http.ServeContent), each
// response tagged with the ETag of the file's current content, and sets
// $HTTP to its base URL. Requests whose path starts with /norange/ are
// answered 200 with the whole file, as a server that ignores Range does.
func cmdHTTPServe(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: httpserve")
	}
	root := ts.MkAbs(".")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		norange := strings.HasPrefix(p, "/norange/")
		p = strings.TrimPrefix(p, "/norange")
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(filepath.Clean("/"+p))))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if norange {
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.Write(b)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%x"`, sha256.Sum256(b)))
		http.ServeContent(w, r, p, time.Time{}, bytes.NewReader(b))
	}))
	ts.Defer(srv.Close)
	ts.Setenv("HTTP", srv.URL)
}
