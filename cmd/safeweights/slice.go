package main

import (
	"bytes"

	"github.com/safeweights/safeweights/convert/npy"
	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/sign"
)

// extractOptions are the decode options of extract: digests checked
// lazily, and with --trusted a trusted signature required first.
func extractOptions(trusted, ref string) ([]decode.Option, error) {
	// Unmapped: every byte is read with pread into a buffer of ours, so a
	// file truncated while it is read gives an error, never SIGBUS in the
	// npy writer, which copies outside decode's fault guard.
	opts := []decode.Option{decode.WithVerify(decode.VerifyLazy), decode.WithoutMmap()}
	if trusted == "" {
		return opts, nil
	}
	kr, err := sign.LoadKeyRing(trusted)
	if err != nil {
		return nil, err
	}
	p, err := requirePolicy(kr, ref) // remote.go
	if err != nil {
		return nil, err
	}
	return append(opts, decode.WithPolicy(p)), nil
}

// extractSlice writes the slice spec (NumPy syntax) of t to out as .npy:
// only the chunks the slice touches are read, each verified.
func extractSlice(e *env, t *decode.Tensor, spec, out string) error {
	s, err := decode.ParseSlice(spec, t.Shape)
	if err != nil {
		return usageErrorf("extract: --slice %q for %s of shape %v: %v", spec, clean(t.Name), t.Shape, err).
			withHint("NumPy syntax, one item per dimension: 0:128,: or :,5:9 or -1")
	}
	data, err := t.ReadSlice(s)
	if err != nil {
		return err
	}
	noteInexact(e, t)
	return writeNPY(e, out, t, s.Shape(), data)
}

// writeNPY writes data of t's dtype and the given shape to out ("-":
// standard output).
func writeNPY(e *env, out string, t *decode.Tensor, shape []int64, data []byte) error {
	if out == "-" {
		var b bytes.Buffer
		if err := npy.Write(&b, t.DType, shape, data); err != nil {
			return err
		}
		_, err := e.stdout.Write(b.Bytes())
		return err
	}
	return npy.WriteFile(out, t.DType, shape, data)
}
