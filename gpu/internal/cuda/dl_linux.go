//go:build linux && (amd64 || arm64)

package cuda

import "github.com/ebitengine/purego"

func dlopen(path string) (uintptr, error) {
	return purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
}

// bind looks name up in lib and points *fptr at it; a missing symbol is an
// error rather than purego.RegisterLibFunc's panic.
func bind(lib uintptr, fptr any, name string) error {
	sym, err := purego.Dlsym(lib, name)
	if err != nil {
		return err
	}
	purego.RegisterFunc(fptr, sym)
	return nil
}
