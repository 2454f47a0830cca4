// Command gen writes the core test vectors of safeweights (see
// ../../README.md): one file per case, a few key lines and the bytes.
// Every vector is checked against the Go decoder before it is written.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/testvectors"
)

func main() {
	out := flag.String("out", "core", "directory to write the vectors to")
	flag.Parse()
	files, err := generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if err := write(*out, files); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// generate returns the vector files by name.
func generate() (map[string][]byte, error) {
	files := map[string][]byte{}
	var errs []error
	for _, v := range vectors() {
		name := v.name + testvectors.Suffix
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("two vectors named %s", v.name)
		}
		b := v.data()
		if err := check(v, b); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.name, err))
		}
		files[name] = render(v, b)
	}
	return files, errors.Join(errs...)
}

func render(v vector, b []byte) []byte {
	var h strings.Builder
	expect := "ok"
	if v.expect != nil {
		expect = v.expect.Name()
	}
	fmt.Fprintf(&h, "expect: %s\n", expect)
	if v.rule != "" {
		fmt.Fprintf(&h, "rule: %s\n", v.rule)
	}
	fmt.Fprintf(&h, "comment: %s\n", v.comment)
	if v.full {
		h.WriteString("verify: full\n")
	}
	if l := testvectors.FormatLimits(v.limits); l != "" {
		fmt.Fprintf(&h, "limits: %s\n", l)
	}
	for _, kv := range v.extra {
		fmt.Fprintf(&h, "%s: %s\n", kv[0], kv[1])
	}
	h.WriteString("\n")
	return append([]byte(h.String()), b...)
}

// write replaces the vectors in dir with files.
func write(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*"+testvectors.Suffix))
	if err != nil {
		return err
	}
	for _, p := range old {
		if _, keep := files[filepath.Base(p)]; !keep {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if cur, err := os.ReadFile(p); err == nil && bytes.Equal(cur, b) {
			continue
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// check reads b as a reader in the vector's situation would, and compares
// the outcome with the vector's expectation.
func check(v vector, b []byte) error {
	f, err := decode.NewReader(bytes.NewReader(b), int64(len(b)), decode.WithLimits(v.limits))
	if err != nil {
		if v.expect == nil || v.full {
			return fmt.Errorf("rejected when opened: %w", err)
		}
		return match(v, err)
	}
	if v.expect != nil && !v.full {
		return fmt.Errorf("accepted when opened, want %s", v.expect.Name())
	}
	err = f.Verify(context.Background(), decode.VerifyOptions{})
	for t := range f.All() {
		if err != nil {
			break
		}
		_, err = t.Bytes()
	}
	if v.expect == nil {
		if err != nil {
			return fmt.Errorf("full verification failed: %w", err)
		}
		return nil
	}
	if err == nil {
		return fmt.Errorf("full verification accepted the file, want %s", v.expect.Name())
	}
	return match(v, err)
}

func match(v vector, err error) error {
	if !errors.Is(err, v.expect) {
		return fmt.Errorf("got %v, want kind %s", err, v.expect.Name())
	}
	var fe *format.FormatError
	if v.rule != "" && (!errors.As(err, &fe) || fe.Rule != v.rule) {
		return fmt.Errorf("got %v, want rule %s", err, v.rule)
	}
	return nil
}
