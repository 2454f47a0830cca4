package s3src

import (
	"fmt"
	"net/http"
	"testing"
)

// FuzzContentRange: what parses is canonical (it prints back the same),
// and a range that checkRange accepts is the one asked for, never more.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{
		"bytes 0-0/1", "bytes 2-5/20", "bytes 2-5/*", "bytes 02-5/20", "bytes 5-2/20",
		"bytes 0-9223372036854775806/9223372036854775807", "bytes 1-2/99999999999999999999", "bytes */20",
	} {
		f.Add(s, int64(2), int64(4), int64(4), true)
	}
	f.Fuzz(func(t *testing.T, s string, off, want, length int64, haveLength bool) {
		first, last, size, err := parseContentRange(s)
		if err == nil {
			if first < 0 || first > last || last >= size {
				t.Fatalf("%q: %d-%d/%d", s, first, last, size)
			}
			if back := fmt.Sprintf("bytes %d-%d/%d", first, last, size); back != s {
				t.Fatalf("%q parsed as %q", s, back)
			}
		}
		if off < 0 || want <= 0 || off > 1<<62 || want > 1<<62 {
			return
		}
		var cl *int64
		if haveLength {
			cl = &length
		}
		for _, status := range []int{0, http.StatusOK, http.StatusPartialContent} {
			first, last, size, err := checkRange(status, s, cl, off, want)
			if err != nil {
				continue
			}
			if last < first {
				if first != 0 || size != 0 {
					t.Fatalf("empty range %d-%d of %d", first, last, size)
				}
				continue
			}
			if first != off || last-first+1 > want || last >= size {
				t.Fatalf("asked %d bytes at %d, accepted %d-%d/%d", want, off, first, last, size)
			}
		}
	})
}

// FuzzParseURI: an accepted URI is exactly s3://BUCKET/KEY again.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"s3://models/model.swt", "s3://a..b/k", "s3://abc/dir/", "s3://abc/\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		b, k, err := ParseURI(uri)
		if err != nil {
			return
		}
		if "s3://"+b+"/"+k != uri || b == "" || k == "" {
			t.Fatalf("%q split as %q, %q", uri, b, k)
		}
	})
}
