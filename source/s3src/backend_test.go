package s3src

// ReadRange against a scripted server: every way a broken or hostile store
// can answer a range request.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safeweights/safeweights/source"
)

const object = "0123456789abcdefghij" // 20 bytes

// scripted is a client for a server whose every response is written by fn;
// calls counts the requests.
func scripted(t *testing.T, fn http.HandlerFunc) (*Backend, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		fn(w, r)
	}))
	t.Cleanup(ts.Close)
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(ts.URL),
		Region:       "us-east-1",
		UsePathStyle: true,
		Credentials:  aws.AnonymousCredentials{},
	})
	return NewBackend(client, "bucket", "model.swt"), &calls
}

func partial(w http.ResponseWriter, contentRange string, body string) {
	w.Header().Set("Content-Range", contentRange)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("ETag", `"v1"`)
	w.WriteHeader(http.StatusPartialContent)
	io.WriteString(w, body)
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+code+`</Code><Message>scripted</Message></Error>`)
}

// read reads 4 bytes at off 2 into a buffer with canaries around it.
func read(b *Backend, version string) (p []byte, n int, info source.Info, err error, canaryOK bool) {
	buf := bytes.Repeat([]byte{0xEE}, 4+4+4)
	p = buf[4:8:8]
	n, info, err = b.ReadRange(context.Background(), p, 2, version)
	canaryOK = bytes.Equal(buf[:4], []byte{0xEE, 0xEE, 0xEE, 0xEE}) && bytes.Equal(buf[8:], []byte{0xEE, 0xEE, 0xEE, 0xEE})
	return p, n, info, err, canaryOK
}

func TestReadRangeGood(t *testing.T) {
	var gotRange, gotIfMatch string
	b, _ := scripted(t, func(w http.ResponseWriter, r *http.Request) {
		gotRange, gotIfMatch = r.Header.Get("Range"), r.Header.Get("If-Match")
		partial(w, "bytes 2-5/20", object[2:6])
	})
	p, n, info, err, ok := read(b, `"v1"`)
	if err != nil || n != 4 || string(p) != "2345" || !ok {
		t.Fatalf("got %d %q %v (canaries intact: %v)", n, p, err, ok)
	}
	if info != (source.Info{Size: 20, Version: `"v1"`}) {
		t.Errorf("info %+v", info)
	}
	if gotRange != "bytes=2-5" || gotIfMatch != `"v1"` {
		t.Errorf("request Range %q If-Match %q", gotRange, gotIfMatch)
	}
}

// A server that ignores Range and sends the whole object is taken at 0,
// and only len(p) bytes of it are read.
func TestReadRangeWholeObject(t *testing.T) {
	b, _ := scripted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, object)
	})
	p := make([]byte, 4)
	n, info, err := b.ReadRange(context.Background(), p, 0, "")
	if err != nil || n != 4 || string(p) != "0123" || info.Size != 20 {
		t.Fatalf("got %d %q %+v %v", n, p, info, err)
	}
	if _, _, err := b.ReadRange(context.Background(), p, 2, ""); !errors.Is(err, ErrResponse) {
		t.Errorf("a whole object for a range at 2: %v, want ErrResponse", err)
	}
}

func TestReadRangeHostile(t *testing.T) {
	for _, tc := range []struct {
		name         string
		contentRange string
		body         string
	}{
		{"other-start", "bytes 3-6/20", "3456"},
		{"longer", "bytes 2-9/20", "23456789"},
		{"shorter", "bytes 2-3/20", "23"},
		{"past-size", "bytes 2-5/4", "2345"},
		{"unknown-size", "bytes 2-5/*", "2345"},
		{"plus-sign", "bytes +2-5/20", "2345"},
		{"space", "bytes 2 -5/20", "2345"},
		{"leading-zero", "bytes 02-5/20", "2345"},
		{"negative", "bytes -2-5/20", "2345"},
		{"overflow", "bytes 2-5/99999999999999999999", "2345"},
		{"reversed", "bytes 5-2/20", "2345"},
		{"other-unit", "items 2-5/20", "2345"},
		{"no-size", "bytes 2-5", "2345"},
		{"length-mismatch", "bytes 2-5/20", "234"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := scripted(t, func(w http.ResponseWriter, r *http.Request) {
				partial(w, tc.contentRange, tc.body)
			})
			_, n, _, err, ok := read(b, "")
			if !errors.Is(err, ErrResponse) {
				t.Errorf("%v, want ErrResponse", err)
			}
			var te *source.TransientError
			if errors.As(err, &te) {
				t.Errorf("%v: a response for other bytes is not transient", err)
			}
			if n != 0 || !ok {
				t.Errorf("wrote %d bytes (canaries intact: %v)", n, ok)
			}
		})
	}
}

// A 206 without a Content-Range, and a Content-Range on a 200.
func TestReadRangeStatusMismatch(t *testing.T) {
	for name, fn := range map[string]http.HandlerFunc{
		"206-no-range": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "2345")
		},
		"200-with-range": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 2-5/20")
			io.WriteString(w, "2345")
		},
	} {
		t.Run(name, func(t *testing.T) {
			b, _ := scripted(t, fn)
			if _, n, _, err, _ := read(b, ""); !errors.Is(err, ErrResponse) || n != 0 {
				t.Errorf("%d bytes, %v; want ErrResponse", n, err)
			}
		})
	}
}

func TestReadRangeChanged(t *testing.T) {
	b, calls := scripted(t, func(w http.ResponseWriter, r *http.Request) {
		s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed")
	})
	if _, n, _, err, ok := read(b, `"v1"`); !errors.Is(err, source.ErrChanged) || n != 0 || !ok {
		t.Errorf("412: %d bytes, %v; want ErrChanged", n, err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d requests; the SDK must not retry", calls.Load())
	}
	// A store that ignores If-Match and answers with another version.
	b, _ = scripted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v2"`)
		w.Header().Set("Content-Range", "bytes 2-5/20")
		w.WriteHeader(http.StatusPartialContent)
		io.WriteString(w, "2345")
	})
	if _, n, _, err, ok := read(b, `"v1"`); !errors.Is(err, source.ErrChanged) || n != 0 || !ok {
		t.Errorf("other ETag: %d bytes, %v; want ErrChanged", n, err)
	}
	// No ETag at all on a pinned read: nothing to hold it to.
	b, _ = scripted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes 2-5/20")
		w.WriteHeader(http.StatusPartialContent)
		io.WriteString(w, "2345")
	})
	if _, _, _, err, _ := read(b, `"v1"`); !errors.Is(err, ErrResponse) {
		t.Errorf("no ETag: %v; want ErrResponse", err)
	}
}

func TestReadRangeStatuses(t *testing.T) {
	for _, tc := range []struct {
		status    int
		code      string
		transient bool
	}{
		{500, "InternalError", true},
		{502, "BadGateway", true},
		{503, "SlowDown", true},
		{429, "TooManyRequests", true},
		{400, "RequestTimeout", true},
		{400, "Throttling", true},
		{403, "AccessDenied", false},
		{403, "InvalidAccessKeyId", false},
		{404, "NoSuchKey", false},
		{404, "NoSuchBucket", false},
		{400, "InvalidArgument", false},
		{301, "PermanentRedirect", false},
	} {
		t.Run(strconv.Itoa(tc.status)+"-"+tc.code, func(t *testing.T) {
			b, calls := scripted(t, func(w http.ResponseWriter, r *http.Request) {
				s3Error(w, tc.status, tc.code)
			})
			_, n, _, err, ok := read(b, "")
			var te *source.TransientError
			if errors.As(err, &te) != tc.transient {
				t.Errorf("%v: transient %v, want %v", err, !tc.transient, tc.transient)
			}
			var se *source.StatusError
			if !errors.As(err, &se) || se.Code != tc.status {
				t.Errorf("%v: want status %d", err, tc.status)
			}
			if errors.Is(err, source.ErrChanged) || errors.Is(err, io.EOF) {
				t.Errorf("%v: not a refusal", err)
			}
			if n != 0 || !ok {
				t.Errorf("wrote %d bytes", n)
			}
			if calls.Load() != 1 {
				t.Errorf("%d requests; the SDK must not retry", calls.Load())
			}
		})
	}
}

// A range at or past the end: 416 with the size is io.EOF.
func TestReadRangePastEnd(t *testing.T) {
	b, _ := scripted(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes */20")
		s3Error(w, http.StatusRequestedRangeNotSatisfiable, "InvalidRange")
	})
	p := make([]byte, 4)
	n, info, err := b.ReadRange(context.Background(), p, 20, "")
	if n != 0 || info.Size != 20 || !errors.Is(err, io.EOF) {
		t.Errorf("at the end: %d, %+v, %v; want io.EOF and size 20", n, info, err)
	}
	// The same answer for a range that starts inside the object is a lie.
	if _, _, err := b.ReadRange(context.Background(), p, 2, ""); errors.Is(err, io.EOF) {
		t.Errorf("416 for a range inside the object: %v, want a refusal", err)
	}
	// A range that runs over the end gives the bytes up to it.
	b, _ = scripted(t, func(w http.ResponseWriter, r *http.Request) {
		partial(w, "bytes 18-19/20", "ij")
	})
	n, info, err = b.ReadRange(context.Background(), p, 18, "")
	if n != 2 || string(p[:2]) != "ij" || info.Size != 20 || !errors.Is(err, io.EOF) {
		t.Errorf("across the end: %d %q, %+v, %v; want 2 bytes and io.EOF", n, p[:n], info, err)
	}
}

// A body that stops short, or a connection dropped mid-body, is transient.
func TestReadRangeBrokenBody(t *testing.T) {
	for name, fn := range map[string]http.HandlerFunc{
		"short": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Range", "bytes 2-5/20")
			w.Header().Set("Content-Length", "4")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "23")
		},
		"reset": func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			buf.WriteString("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-5/20\r\nContent-Length: 4\r\n\r\n2")
			buf.Flush()
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // an RST, not a FIN
			}
			conn.Close()
		},
	} {
		t.Run(name, func(t *testing.T) {
			b, _ := scripted(t, fn)
			_, n, _, err, ok := read(b, "")
			var te *source.TransientError
			if !errors.As(err, &te) {
				t.Errorf("%v, want a *source.TransientError", err)
			}
			if n > 4 || !ok {
				t.Errorf("wrote %d bytes past p", n)
			}
		})
	}
}

func TestReadRangeArguments(t *testing.T) {
	b, calls := scripted(t, func(w http.ResponseWriter, r *http.Request) {
		partial(w, "bytes 2-5/20", "2345")
	})
	if _, _, err := b.ReadRange(context.Background(), make([]byte, 4), -1, ""); err == nil {
		t.Error("negative offset accepted")
	}
	if _, _, err := b.ReadRange(context.Background(), make([]byte, 4), 1<<63-2, ""); err == nil {
		t.Error("range past MaxInt64 accepted")
	}
	if calls.Load() != 0 {
		t.Errorf("%d requests for invalid arguments", calls.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := b.ReadRange(ctx, make([]byte, 4), 2, "")
	var te *source.TransientError
	if !errors.Is(err, context.Canceled) || errors.As(err, &te) {
		t.Errorf("cancelled: %v, want context.Canceled, not transient", err)
	}
}

func TestParseURI(t *testing.T) {
	good := map[string][2]string{
		"s3://models/model.swt":          {"models", "model.swt"},
		"s3://my.bucket-1/a/b/c.swt":     {"my.bucket-1", "a/b/c.swt"},
		"s3://abc/with space?and#hash":   {"abc", "with space?and#hash"},
		"s3://abc/%41":                   {"abc", "%41"},
		"s3://abc/ünïcode.swt":           {"abc", "ünïcode.swt"},
		"s3://abc//leading-slash-in-key": {"abc", "/leading-slash-in-key"},
	}
	for uri, want := range good {
		b, k, err := ParseURI(uri)
		if err != nil || b != want[0] || k != want[1] {
			t.Errorf("ParseURI(%q) = %q, %q, %v; want %q, %q", uri, b, k, err, want[0], want[1])
		}
	}
	long := "s3://abc/" + string(bytes.Repeat([]byte{'k'}, 1025))
	for _, uri := range []string{
		"", "s3:/abc/k", "S3://abc/k", "http://abc/k", "s3://abc", "s3://abc/", "s3:///k",
		"s3://ab/k", "s3://" + string(bytes.Repeat([]byte{'a'}, 64)) + "/k",
		"s3://Abc/k", "s3://a_c/k", "s3://-abc/k", "s3://abc-/k", "s3://a..c/k",
		"s3://user@abc/k", "s3://abc:9000/k", "s3://abc/dir/", "s3://abc/a\nb", "s3://abc/a\x7fb",
		"s3://abc/\xff", long,
	} {
		if _, _, err := ParseURI(uri); !errors.Is(err, ErrURI) {
			t.Errorf("ParseURI(%q): %v, want ErrURI", uri, err)
		}
	}
}

func TestOpenRefusesBadURI(t *testing.T) {
	if _, err := Open(context.Background(), "s3://abc"); !errors.Is(err, ErrURI) {
		t.Errorf("%v, want ErrURI", err)
	}
}

// The client NewClient builds from the environment does not retry either,
// whatever AWS_MAX_ATTEMPTS and AWS_RETRY_MODE say, and addresses a custom
// endpoint path-style with a default region.
func TestNewClientFromEnvironment(t *testing.T) {
	var calls atomic.Int64
	var path string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		path = r.URL.Path
		s3Error(w, http.StatusServiceUnavailable, "SlowDown")
	}))
	defer ts.Close()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":             dir + "/config",
		"AWS_SHARED_CREDENTIALS_FILE": dir + "/credentials",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "",
		"AWS_DEFAULT_REGION":          "",
		"AWS_CA_BUNDLE":               "",
		"AWS_ACCESS_KEY_ID":           "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY":       "secret",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_S3":         ts.URL,
		"AWS_MAX_ATTEMPTS":            "5",
		"AWS_RETRY_MODE":              "adaptive",
	} {
		t.Setenv(k, v)
	}
	client, err := NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if o := client.Options(); o.Region != "us-east-1" || !o.UsePathStyle {
		t.Errorf("region %q, path-style %v; want us-east-1, path-style", o.Region, o.UsePathStyle)
	}
	b := NewBackend(client, "bucket", "dir/model.swt")
	_, _, err = b.ReadRange(context.Background(), make([]byte, 4), 0, "")
	var te *source.TransientError
	if !errors.As(err, &te) {
		t.Errorf("503 SlowDown: %v, want transient", err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d requests with AWS_MAX_ATTEMPTS=5; the SDK must not retry", calls.Load())
	}
	if path != "/bucket/dir/model.swt" {
		t.Errorf("request path %q, want path-style /bucket/dir/model.swt", path)
	}
}
