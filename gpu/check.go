package gpu

import (
	"bytes"
	"context"
	"fmt"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/tp"
)

// MismatchError reports a loaded tensor whose device bytes differ from its
// decoded file bytes. It wraps ErrMismatch.
type MismatchError struct {
	Tensor string
	Offset int64 // first differing byte, from the start of the tensor
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("gpu: tensor %q: device bytes differ from the file at byte %d", e.Tensor, e.Offset)
}

func (e *MismatchError) Unwrap() error { return ErrMismatch }

// checkPiece bounds the host memory Check uses per copy.
const checkPiece = 64 << 20

// Check copies every loaded tensor back from the device and compares it
// byte for byte with its decoded bytes in f. It is a test of the loader,
// not a digest check: use WithVerify for that.
func (m *Model) Check(ctx context.Context, f *decode.File) error {
	v, err := viewOf(f)
	if err != nil {
		return err
	}
	return m.check(ctx, v)
}

func (m *Model) check(ctx context.Context, v *fileView) error {
	if m.closed {
		return fmt.Errorf("gpu: model closed")
	}
	unbind, err := m.dev.bind()
	if err != nil {
		return err
	}
	defer unbind()
	idx := make(map[string]int, len(v.tensors))
	for i := range v.tensors {
		idx[v.tensors[i].name] = i
	}
	var back []byte
	for _, lt := range m.Tensors {
		if err := ctx.Err(); err != nil {
			return err
		}
		i, ok := idx[lt.Name]
		if !ok || v.tensors[i].length != lt.Size {
			return &MismatchError{Tensor: lt.Name}
		}
		t := &v.tensors[i]
		want := make([]byte, t.length)
		if err := t.readInto(want); err != nil {
			return fmt.Errorf("gpu: tensor %q: %w", t.name, err)
		}
		if err := m.compare(lt, want, &back); err != nil {
			return err
		}
	}
	return nil
}

// CheckSource is Check for a model loaded by LoadPlan (or by Load): every
// loaded tensor, or its slice, is copied back from the device and compared
// byte for byte with a verified read of the same slice from src.
func (m *Model) CheckSource(ctx context.Context, src tp.Source) error {
	if m.closed {
		return fmt.Errorf("gpu: model closed")
	}
	unbind, err := m.dev.bind()
	if err != nil {
		return err
	}
	defer unbind()
	var back []byte
	for _, lt := range m.Tensors {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := src.Tensor(lt.Name)
		if err != nil {
			return err
		}
		s := lt.Slice
		if s == nil {
			s = decode.FullSlice(t.Shape)
		}
		n, err := t.SliceLength(s)
		if err != nil || n != lt.Size {
			return &MismatchError{Tensor: lt.Name}
		}
		want := make([]byte, n)
		if err := t.ReadSliceWith(s, want, decode.SliceOptions{Verify: true}); err != nil {
			return fmt.Errorf("gpu: tensor %q: %w", lt.Name, err)
		}
		if err := m.compare(lt, want, &back); err != nil {
			return err
		}
	}
	return nil
}

// compare copies lt back from the device in pieces of checkPiece bytes and
// compares it with want.
func (m *Model) compare(lt Tensor, want []byte, back *[]byte) error {
	for off := int64(0); off < int64(len(want)); off += checkPiece {
		n := min(checkPiece, int64(len(want))-off)
		if int64(cap(*back)) < n {
			*back = make([]byte, n)
		}
		b := (*back)[:n]
		if err := m.dev.copyToHost(b, devPtr(lt.Ptr)+devPtr(off)); err != nil {
			return fmt.Errorf("gpu: tensor %q: copying back: %w", lt.Name, err)
		}
		if !bytes.Equal(b, want[off:off+n]) {
			k := int64(0)
			for b[k] == want[off+k] {
				k++
			}
			return &MismatchError{Tensor: lt.Name, Offset: off + k}
		}
	}
	return nil
}
