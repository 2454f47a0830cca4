//go:build unix

package weedtest

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "weed")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvVar, exe)
	if p, err := Binary(); err != nil || p != exe {
		t.Errorf("Binary with %s set: %q, %v", EnvVar, p, err)
	}
	t.Setenv(EnvVar, filepath.Join(dir, "missing"))
	if _, err := Binary(); err == nil {
		t.Errorf("Binary with %s naming no file: no error", EnvVar)
	}
	// The cache path, then PATH.
	t.Setenv(EnvVar, "")
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	t.Setenv("PATH", dir)
	if want := filepath.Join(dir, "cache", "safeweights", "weed-"+Version, "weed"); CachePath() != want {
		t.Errorf("CachePath %q, want %q", CachePath(), want)
	}
	if p, err := Binary(); err != nil || p != exe {
		t.Errorf("Binary from PATH: %q, %v", p, err)
	}
	cached := CachePath()
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cached, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := Binary(); err != nil || p != cached {
		t.Errorf("Binary with a cached one: %q, %v; want %q", p, err, cached)
	}
	os.Remove(cached)
	t.Setenv("PATH", t.TempDir())
	if _, err := Binary(); !errors.Is(err, ErrNoBinary) {
		t.Errorf("Binary with none: %v, want ErrNoBinary", err)
	}
}

// TestServer starts a keyed server, uses it, and checks Stop leaves no
// process and no socket behind.
func TestServer(t *testing.T) {
	s := New(t, Options{Bucket: "weedtest", AccessKey: "ak", SecretKey: "secret"})
	ctx := context.Background()
	if err := s.Put(ctx, "k", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	out, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("weedtest"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	out.Body.Close()
	// No anonymous access to a keyed server.
	resp, err := http.Get(s.Endpoint + "/weedtest/k")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("anonymous GET: status %d, want 403", resp.StatusCode)
	}
	// Nothing in /tmp but the sockets Stop removes: glog's files go to
	// stderr.
	if logs, _ := filepath.Glob("/tmp/weed.*." + strconv.Itoa(s.Pid())); len(logs) != 0 {
		t.Errorf("weed wrote %v", logs)
	}
	pid := s.Pid()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("weed %d still there after Stop: %v", pid, err)
	}
	for _, p := range s.sockets {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind", p)
		}
	}
	if len(s.sockets) == 0 {
		t.Error("no sockets recorded to clean up")
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
