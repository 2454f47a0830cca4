//go:build !(linux && (amd64 || arm64))

package cuda

import "errors"

var errPlatform = errors.New("the CUDA driver binding supports linux on amd64 and arm64")

func dlopen(string) (uintptr, error) { return 0, errPlatform }

func bind(uintptr, any, string) error { return errPlatform }
