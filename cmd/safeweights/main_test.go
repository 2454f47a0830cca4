package main

import (
	"os"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"safeweights": func() {
			e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, tty: false}
			os.Exit(run(e, os.Args[1:]))
		},
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mkswt":     cmdMkswt,
			"flip":      cmdFlip,
			"append":    cmdAppend,
			"mkshards":  cmdMkshards,  // shards_test.go
			"replacein": cmdReplaceIn, // shards_test.go
			"httpserve": cmdHTTPServe, // remote_test.go
			"s3serve":   cmdS3Serve,   // s3_test.go
			"s3put":     cmdS3Put,     // s3_test.go
		},
		Condition:           scriptCondition, // s3_test.go
		RequireExplicitExec: true,
	})
}

// mkswt FILE NAME... writes a .swt file with one small F32 tensor per name,
// so scripts can use names that no converter would produce (hostile ones).
// A NAME in double quotes is unquoted as a Go string literal.
func cmdMkswt(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: mkswt FILE NAME...")
	}
	w, err := encode.Create(ts.MkAbs(args[0]), encode.WithAlignment(64))
	ts.Check(err)
	for i, name := range args[1:] {
		if len(name) >= 2 && name[0] == '"' {
			// A Go-quoted name, for bytes a script cannot spell.
			u, err := strconv.Unquote(name)
			ts.Check(err)
			name = u
		}
		data := make([]byte, 8)
		data[0] = byte(i + 1)
		ts.Check(w.Add(name, format.F32, []int64{2}, data))
	}
	ts.Check(w.Close())
}

// flip FILE OFFSET inverts the byte at OFFSET (negative: from the end).
func cmdFlip(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flip FILE OFFSET")
	}
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	if off < 0 {
		off += len(b)
	}
	if off < 0 || off >= len(b) {
		ts.Fatalf("offset %s outside the file (%d bytes)", args[1], len(b))
	}
	b[off] ^= 0xff
	ts.Check(os.WriteFile(p, b, 0o644))
}

// append FILE TEXT appends TEXT to FILE.
func cmdAppend(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: append FILE TEXT")
	}
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_APPEND|os.O_WRONLY, 0)
	ts.Check(err)
	_, err = f.WriteString(args[1])
	ts.Check(err)
	ts.Check(f.Close())
}

// writeSmall writes a small valid unsigned .swt file.
func writeSmall(t testing.TB, path string) {
	t.Helper()
	w, err := encode.Create(path, encode.WithAlignment(64))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("w", format.F32, []int64{2}, make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
