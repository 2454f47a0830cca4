//go:build !unix

package convert

import "os"

func mapFile(f *os.File, size int64) ([]byte, func() error, error) { return nil, nil, nil }
