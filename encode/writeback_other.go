//go:build !linux

package encode

import "os"

func startWriteback(f *os.File, off, n int64) {}
