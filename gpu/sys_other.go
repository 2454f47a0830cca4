//go:build !linux

package gpu

import "errors"

var errNotLinux = errors.New("gpu: only supported on linux")

func residency([]byte, *plan) (float64, error) { return 0, errNotLinux }

func openDirect(string, []byte) (int, error) { return -1, errNotLinux }

func pread(int) func([]byte, int64) (int, error) {
	return func([]byte, int64) (int, error) { return 0, errNotLinux }
}

func closeFD(int) error { return errNotLinux }
