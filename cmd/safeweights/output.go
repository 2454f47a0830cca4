package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/safeopen"
)

// maxStdin bounds what "-" reads from standard input into memory.
const maxStdin = 1 << 30

// readStdin reads all of r, refusing more than maxStdin bytes.
func readStdin(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxStdin+1))
	if err != nil {
		return nil, fmt.Errorf("reading standard input: %w", err)
	}
	if len(b) > maxStdin {
		return nil, failf("standard input is over %d bytes", maxStdin).withHint("pass large files by path: they are mapped, not read into memory")
	}
	return b, nil
}

// openSWT opens a .swt file, standard input for "-", or an http(s) URL
// (remote.go). Every command that reads a .swt file opens it here.
func openSWT(e *env, path string, header bool, opts ...decode.Option) (*decode.File, error) {
	if isURL(path) {
		return openRemote(path, opts...)
	}
	if path == "-" {
		b, err := readStdin(e.stdin)
		if err != nil {
			return nil, err
		}
		return decode.NewReader(bytes.NewReader(b), int64(len(b)), opts...)
	}
	if header {
		return decode.Inspect(path, opts...)
	}
	return decode.Open(path, opts...)
}

// testHookRead, set by tests, runs after extract has read a tensor's bytes
// and before it writes them (to truncate the file under the command).
var testHookRead func()

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeJSONLine writes v as one line of JSON, for output read line by line.
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// bar is a progress bar on stderr, drawn only when stderr is a terminal.
// A nil *bar does nothing, so callers need not check.
type bar struct {
	p *mpb.Progress
	b *mpb.Bar
}

func (e *env) newBar(label string, total int64) *bar {
	if !e.tty {
		return nil
	}
	p := mpb.New(mpb.WithOutput(e.stderr), mpb.WithWidth(40), mpb.WithRefreshRate(100*time.Millisecond))
	b := p.AddBar(total,
		mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR), decor.CountersKibiByte("% .1f / % .1f")),
		mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1024(0), "% .1f"), decor.Percentage(decor.WCSyncSpace)),
		mpb.BarRemoveOnComplete(),
	)
	return &bar{p: p, b: b}
}

// newCountBar is newBar counting items (tensors), not bytes.
func (e *env) newCountBar(label string, total int64) *bar {
	if !e.tty {
		return nil
	}
	p := mpb.New(mpb.WithOutput(e.stderr), mpb.WithWidth(40), mpb.WithRefreshRate(100*time.Millisecond))
	b := p.AddBar(total,
		mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR), decor.CountersNoUnit("%d / %d")),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)),
		mpb.BarRemoveOnComplete(),
	)
	return &bar{p: p, b: b}
}

// newSpinner shows work whose size is unknown.
func (e *env) newSpinner(label string) *bar {
	if !e.tty {
		return nil
	}
	p := mpb.New(mpb.WithOutput(e.stderr), mpb.WithRefreshRate(100*time.Millisecond))
	b := p.New(0, mpb.SpinnerStyle(),
		mpb.PrependDecorators(decor.Name(label, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO)),
		mpb.BarRemoveOnComplete(),
	)
	return &bar{p: p, b: b}
}

func (b *bar) set(done, total int64) {
	if b == nil {
		return
	}
	b.b.SetTotal(total, false)
	b.b.SetCurrent(done)
}

// finish removes the bar and waits until it is gone from the terminal.
func (b *bar) finish() {
	if b == nil {
		return
	}
	b.b.Abort(true)
	b.p.Wait()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func shapeString(s []int64) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, d := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, d)
	}
	b.WriteByte(']')
	return b.String()
}

// clean makes text from a file safe to print on a terminal: a string with
// control characters (escape sequences could rewrite the screen) or invalid
// UTF-8 is printed quoted, with Go escapes.
func clean(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || (!unicode.IsPrint(r) && r != ' ') {
			return strconv.Quote(s)
		}
	}
	return s
}

// kindName is the spec's name of the failure kind err wraps, or "".
func kindName(err error) string {
	if k := format.KindOf(err); k != nil {
		return k.Name()
	}
	return ""
}

// errTooLarge: a file over the size its reader allows.
var errTooLarge = errors.New("file too large")

// readSmallFile reads a regular file (a FIFO or a device is refused, never
// waited on) of at most limit bytes; a larger one is errTooLarge.
func readSmallFile(path string, limit int64) ([]byte, error) {
	fh, _, err := safeopen.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}
