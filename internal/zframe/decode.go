package zframe

import (
	"errors"
	"io"

	"github.com/klauspost/compress/zstd"
)

// decoderOptions bound the decoder by the frame's window, which Check has
// already bounded by MaxWindow, and by the content size.
func decoderOptions(want int64) []zstd.DOption {
	return []zstd.DOption{
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(MaxWindow),
		// The decoder clamps its window to this too, and a single-segment
		// frame's window is its content size, so never below MaxWindow.
		zstd.WithDecoderMaxMemory(uint64(max(want, MaxWindow))),
	}
}

// Decode checks the frame in src (Check) and decodes it into dst, whose
// length is the declared content size. The content checksum, if present, is
// verified.
func Decode(dst, src []byte, lim Limits) error {
	want := int64(len(dst))
	if err := Check(src, want, lim); err != nil {
		return err
	}
	dec, err := zstd.NewReader(nil, decoderOptions(want)...)
	if err != nil {
		return &Error{Reason: "decoder", Err: err}
	}
	defer dec.Close()
	out, err := dec.DecodeAll(src, dst[:0:len(dst)])
	if err != nil {
		return &Error{Reason: "bad frame", Err: err}
	}
	if len(out) != len(dst) || (len(out) > 0 && &out[0] != &dst[0]) {
		return bad("decodes to %d bytes, want %d", len(out), want)
	}
	return nil
}

// Verifier checks a frame fed to it in pieces, decoding it to a counter
// and never holding more than the decoder's window.
type Verifier struct {
	w          *walker
	sentHeader bool
	err        error
	pw         *io.PipeWriter
	done       chan result
}

type result struct {
	n   int64
	err error
}

// NewVerifier returns a Verifier for a frame that must declare and decode
// to want bytes.
func NewVerifier(want int64, lim Limits) *Verifier {
	w, err := newWalker(want, lim)
	v := &Verifier{w: w, err: err}
	if err != nil {
		return v
	}
	pr, pw := io.Pipe()
	v.pw = pw
	v.done = make(chan result, 1)
	go func() {
		var r result
		dec, err := zstd.NewReader(pr, decoderOptions(want)...)
		if err == nil {
			// One byte past want is enough to see a longer output.
			r.n, r.err = io.Copy(io.Discard, io.LimitReader(dec, want+1))
			dec.Close()
		} else {
			r.err = err
		}
		// Unblock a writer and drain what the decoder did not read.
		pr.CloseWithError(errStopped)
		v.done <- r
	}()
	return v
}

var errStopped = errors.New("zframe: decoder stopped")

// Write feeds the next stored bytes. After an error, every call returns it.
func (v *Verifier) Write(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	before := v.w.off
	if err := v.w.write(p); err != nil {
		v.fail(err)
		return 0, err
	}
	q := p
	if !v.sentHeader {
		if v.w.state == stHeader {
			return len(p), nil // the walker holds the header so far
		}
		// The header is complete: send the decoder's version of it.
		q = append(v.w.decoderHeader(), p[int64(v.w.hneed)-before:]...)
		v.sentHeader = true
	}
	if _, err := v.pw.Write(q); err != nil {
		// The decoder stopped early: its result says why.
		v.pw.Close()
		r := <-v.done
		v.done = nil
		v.err = decodeResult(r, v.w.want)
		if v.err == nil {
			v.err = bad("the decoder stopped before the end of the frame")
		}
		return 0, v.err
	}
	return len(p), nil
}

func (v *Verifier) fail(err error) {
	v.err = err
	if v.done != nil {
		v.pw.CloseWithError(err)
		<-v.done
		v.done = nil
	}
}

// Close checks that the frame was whole and decoded to exactly want bytes.
func (v *Verifier) Close() error {
	if v.err != nil {
		return v.err
	}
	if err := v.w.close(); err != nil {
		v.fail(err)
		return err
	}
	v.pw.Close()
	r := <-v.done
	v.done = nil
	v.err = decodeResult(r, v.w.want)
	if v.err == nil {
		v.err = errClosed
		return nil
	}
	return v.err
}

var errClosed = errors.New("zframe: verifier closed")

func decodeResult(r result, want int64) error {
	if r.err != nil {
		return &Error{Reason: "bad frame", Err: r.err}
	}
	if r.n != want {
		return bad("decodes to %d bytes, want %d", r.n, want)
	}
	return nil
}
