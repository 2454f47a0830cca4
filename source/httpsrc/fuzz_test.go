package httpsrc

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/safeweights/safeweights/source"
)

// FuzzContentRange: the parser accepts only what it can prove consistent,
// and what it accepts prints back to the same header.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes */100", "bytes 0-0/*", "bytes 5-4/10",
		"bytes 0-9223372036854775807/9223372036854775807", "bytes -1-5/10", "bytes +1-5/10", "BYTES 1-2/3", "bytes 1-2/3 ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, total, err := parseContentRange(s)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("%q: untyped error %v", s, err)
			}
			return
		}
		var want string
		switch {
		case first < 0:
			if last != -1 || total < 0 {
				t.Fatalf("%q: %d-%d/%d", s, first, last, total)
			}
			want = "*/" + strconv.FormatInt(total, 10)
		default:
			if last < first || total >= 0 && last >= total || total < -1 {
				t.Fatalf("%q: inconsistent %d-%d/%d", s, first, last, total)
			}
			want = strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10) + "/"
			if total < 0 {
				want += "*"
			} else {
				want += strconv.FormatInt(total, 10)
			}
		}
		// Leading zeros are the one liberty digits allow.
		_, rest, _ := strings.Cut(s, " ")
		if trimZeros(rest) != want {
			t.Fatalf("%q parsed as %q", s, want)
		}
	})
}

func trimZeros(s string) string {
	var b strings.Builder
	num := ""
	flush := func() {
		if num != "" {
			v, _ := strconv.ParseInt(num, 10, 64)
			b.WriteString(strconv.FormatInt(v, 10))
			num = ""
		}
	}
	for _, c := range s {
		if c >= '0' && c <= '9' {
			num += string(c)
			continue
		}
		flush()
		b.WriteRune(c)
	}
	flush()
	return b.String()
}

// FuzzResponse: whatever a hostile server answers (status, headers, body),
// readResponse never writes past the buffer, never reads the body past
// len(p), and reports success only for bytes of exactly the range asked.
func FuzzResponse(f *testing.F) {
	f.Add(206, "bytes 0-9/100", int64(10), `"e"`, []byte("0123456789abc"), int64(0), 10)
	f.Add(206, "bytes 90-99/100", int64(10), `"e"`, []byte("0123456789"), int64(90), 20)
	f.Add(200, "", int64(100), "", bytes.Repeat([]byte{1}, 100), int64(0), 10)
	f.Add(416, "bytes */5", int64(0), "", []byte{}, int64(7), 3)
	f.Add(206, "bytes 0-9/100", int64(-1), `"e"`, []byte("01234"), int64(0), 10)
	f.Fuzz(func(t *testing.T, code int, cr string, cl int64, tag string, body []byte, off int64, n int) {
		if n <= 0 || n > 1<<16 || off < 0 || off > 1<<62 {
			return
		}
		h := http.Header{}
		if cr != "" {
			h.Set("Content-Range", cr)
		}
		if tag != "" {
			h.Set("ETag", tag)
		}
		br := &countReader{r: bytes.NewReader(body)}
		resp := &http.Response{StatusCode: code, Header: h, ContentLength: cl, Body: io.NopCloser(br)}
		buf := make([]byte, n+8) // canary after p
		for i := range buf {
			buf[i] = 0xA5
		}
		p := buf[:n]
		got, info, err := readResponse(resp, p, off, "")
		if got < 0 || got > n {
			t.Fatalf("n = %d for a buffer of %d", got, n)
		}
		if br.n > int64(n) {
			t.Fatalf("read %d body bytes for a buffer of %d", br.n, n)
		}
		for _, c := range buf[n:] {
			if c != 0xA5 {
				t.Fatal("wrote past the buffer")
			}
		}
		if err == nil || errors.Is(err, io.EOF) && got > 0 {
			if info.Size < 0 || off+int64(got) > info.Size {
				t.Fatalf("success with %d bytes at %d of an object of %d", got, off, info.Size)
			}
			if err == nil && got != n || errors.Is(err, io.EOF) && off+int64(got) != info.Size {
				t.Fatalf("%d bytes for %d at %d, size %d, err %v", got, n, off, info.Size, err)
			}
			if !bytes.Equal(p[:got], body[:got]) {
				t.Fatal("bytes are not the body's")
			}
		}
		var te *source.TransientError
		var se *source.StatusError
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, ErrBadResponse) && !errors.Is(err, ErrNoRanges) &&
			!errors.Is(err, source.ErrChanged) && !errors.As(err, &te) && !errors.As(err, &se) {
			t.Fatalf("untyped error %v", err)
		}
	})
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
