//go:build !unix

package decode

import "os"

const canMap = false

func mapFile(f *os.File, size int64) ([]byte, error) { return nil, nil }

func unmap(b []byte) error { return nil }
