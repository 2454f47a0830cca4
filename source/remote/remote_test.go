package remote_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/source/remote"
)

func writeModel(t testing.TB) (string, []byte) {
	path := filepath.Join(t.TempDir(), "m.swt")
	w, err := encode.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("w", format.U8, []int64{5}, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, raw
}

func TestOpenFileLocalAndHTTP(t *testing.T) {
	path, raw := writeModel(t)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("ETag", `"1"`)
		http.ServeContent(rw, r, "m.swt", time.Time{}, bytes.NewReader(raw))
	}))
	defer srv.Close()
	for _, ref := range []string{path, srv.URL + "/m.swt"} {
		f, err := remote.OpenFile(context.Background(), ref, remote.WithDecode(decode.WithVerify(decode.VerifyEager)))
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		tn, _ := f.Tensor("w")
		b, err := tn.Bytes()
		if err != nil || string(b) != "hello" {
			t.Fatalf("%s: %q, %v", ref, b, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSchemes(t *testing.T) {
	for _, ref := range []string{"ftp://host/m.swt", "GS://b/m"} {
		if _, err := remote.Open(context.Background(), ref); !errors.Is(err, remote.ErrScheme) {
			t.Errorf("%s: got %v, want ErrScheme", ref, err)
		}
	}
	for ref, want := range map[string]bool{"http://h/m": true, "HTTPS://h/m": true, "./a://b": false, "m.swt": false, "://x": false, "1x://y": false} {
		if remote.IsURL(ref) != want {
			t.Errorf("IsURL(%q) = %v", ref, !want)
		}
	}
}

func TestLocalNonRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	if _, err := remote.Open(context.Background(), fifo); !errors.Is(err, format.ErrNotRegular) {
		t.Fatalf("got %v, want ErrNotRegular", err)
	}
	if _, err := remote.Open(context.Background(), t.TempDir()); !errors.Is(err, format.ErrNotRegular) {
		t.Fatalf("directory: got %v, want ErrNotRegular", err)
	}
}
