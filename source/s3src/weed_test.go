package s3src_test

// Tests against a real SeaweedFS (internal/weedtest): skipped when there is
// no weed binary. .ci/build-weed.sh builds one and .ci/run exports it.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/weedtest"
	"github.com/safeweights/safeweights/sign"
	"github.com/safeweights/safeweights/source"
	"github.com/safeweights/safeweights/source/s3src"
)

const (
	testAccessKey = "safeweights-test"
	testSecretKey = "safeweights-test-secret-key-0123456789"
)

// One anonymous and one keyed server for the whole test binary, started on
// first use (both at once: each takes seconds), stopped by TestMain.
var servers struct {
	once        sync.Once
	anon, keyed *weedtest.Server
	err         error
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range []*weedtest.Server{servers.anon, servers.keyed} {
		if s != nil {
			if err := s.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

func startServers(t testing.TB) (anon, keyed *weedtest.Server) {
	t.Helper()
	servers.once.Do(func() {
		var wg sync.WaitGroup
		var errAnon, errKeyed error
		wg.Go(func() { servers.anon, errAnon = weedtest.Start(weedtest.Options{}) })
		wg.Go(func() {
			servers.keyed, errKeyed = weedtest.Start(weedtest.Options{AccessKey: testAccessKey, SecretKey: testSecretKey})
		})
		wg.Wait()
		servers.err = errors.Join(errAnon, errKeyed)
	})
	if errors.Is(servers.err, weedtest.ErrNoBinary) {
		t.Skip(servers.err)
	}
	if servers.err != nil {
		t.Fatal(servers.err)
	}
	return servers.anon, servers.keyed
}

// awsEnv points the AWS configuration chain at endpoint and nothing else:
// no shared config or credentials file, no instance metadata.
func awsEnv(t testing.TB, endpoint string) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "",
		"AWS_DEFAULT_REGION":          "",
		"AWS_ACCESS_KEY_ID":           "",
		"AWS_SECRET_ACCESS_KEY":       "",
		"AWS_SESSION_TOKEN":           "",
		"AWS_ENDPOINT_URL":            endpoint,
		"AWS_ENDPOINT_URL_S3":         "",
		"AWS_MAX_ATTEMPTS":            "",
		"AWS_CA_BUNDLE":               "",
	} {
		t.Setenv(k, v)
	}
}

// model is a signed .swt with raw and zstd tensors, and its tensors' data.
type model struct {
	file    []byte
	data    map[string][]byte
	trusted *sign.KeyRing
}

var (
	modelOnce sync.Once
	theModel  model
	modelErr  error
)

func testModel(t testing.TB) model {
	t.Helper()
	modelOnce.Do(func() { theModel, modelErr = makeModel(t.TempDir(), 1) })
	if modelErr != nil {
		t.Fatal(modelErr)
	}
	return theModel
}

// makeModel writes a model whose bytes depend on seed, with 64 KiB chunks
// so that a slice touches few of them.
func makeModel(dir string, seed byte) (model, error) {
	m := model{data: map[string][]byte{}}
	path := filepath.Join(dir, "model.swt")
	w, err := encode.Create(path, encode.WithChunkSize(64<<10))
	if err != nil {
		return m, err
	}
	add := func(name string, shape []int64, data []byte, opts ...encode.TensorOption) {
		if err == nil {
			m.data[name] = data
			err = w.Add(name, format.F32, shape, data, opts...)
		}
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		b[0] = seed
		return b
	}
	// Compressible: a ramp of float32s.
	ramp := make([]byte, 128*256*4)
	for i := range 128 * 256 {
		binary.LittleEndian.PutUint32(ramp[4*i:], math.Float32bits(float32(i%97)+float32(seed)))
	}
	add("embed.weight", []int64{256, 1024}, random(256*1024*4))
	add("layers.0.weight", []int64{64, 64}, random(64*64*4))
	add("layers.0.bias", []int64{64}, random(64*4))
	add("layers.0.ramp", []int64{128, 256}, ramp, encode.Compress(3))
	if err != nil {
		w.Abort()
		return m, err
	}
	if err := w.Close(); err != nil {
		return m, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return m, err
	}
	if err := sign.Sign(context.Background(), path, priv); err != nil {
		return m, err
	}
	if m.trusted, err = sign.NewKeyRing(pub); err != nil {
		return m, err
	}
	m.file, err = os.ReadFile(path)
	return m, err
}

var keySeq struct {
	sync.Mutex
	n int
}

// upload puts data under a key of its own in srv's bucket.
func upload(t *testing.T, srv *weedtest.Server, data []byte) string {
	t.Helper()
	keySeq.Lock()
	keySeq.n++
	key := "models/" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + strconv.Itoa(keySeq.n) + ".swt"
	keySeq.Unlock()
	if err := srv.Put(context.Background(), key, data); err != nil {
		t.Fatal(err)
	}
	return key
}

func TestReadModel(t *testing.T) {
	anon, _ := startServers(t)
	m := testModel(t)
	key := upload(t, anon, m.file)
	awsEnv(t, anon.Endpoint)
	ctx := context.Background()

	modes := []struct {
		name string
		opts []decode.Option
	}{
		{"lazy", []decode.Option{decode.WithVerify(decode.VerifyLazy)}},
		{"eager", []decode.Option{decode.WithVerify(decode.VerifyEager)}},
		{"checked", []decode.Option{decode.WithCheckedReads()}},
		{"policy", []decode.Option{decode.WithPolicy(sign.Require(m.trusted))}},
		{"parts", []decode.Option{decode.WithVerify(decode.VerifyLazy)}},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			opts := []s3src.Option{s3src.WithAnonymous()}
			if mode.name == "parts" {
				// The 1 MiB tensor in four requests, two at a time.
				opts = append(opts, s3src.WithRemoteOptions(source.WithPartSize(256<<10), source.WithConcurrency(2)))
			}
			src, err := s3src.Open(ctx, anon.URI(key), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if src.Size() != int64(len(m.file)) {
				t.Fatalf("size %d, want %d", src.Size(), len(m.file))
			}
			if src.Name() != anon.URI(key) {
				t.Errorf("name %q, want %q", src.Name(), anon.URI(key))
			}
			f, err := decode.NewReaderContext(ctx, src, src.Size(), mode.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.NumTensors() != len(m.data) {
				t.Fatalf("%d tensors, want %d", f.NumTensors(), len(m.data))
			}
			for tn := range f.All() {
				got, err := tn.Bytes()
				if err != nil {
					t.Fatalf("%s: %v", tn.Name, err)
				}
				if !bytes.Equal(got, m.data[tn.Name]) {
					t.Errorf("%s: bytes differ from what was written", tn.Name)
				}
				dst := make([]byte, tn.Length)
				if err := tn.ReadInto(dst); err != nil {
					t.Fatalf("%s: ReadInto: %v", tn.Name, err)
				}
				if !bytes.Equal(dst, m.data[tn.Name]) {
					t.Errorf("%s: ReadInto differs from what was written", tn.Name)
				}
			}
			if tn, _ := f.Tensor("layers.0.ramp"); tn == nil || tn.Compression == format.None {
				t.Error("the model has no compressed tensor")
			}
			res, err := sign.Verify(ctx, f, m.trusted)
			if err != nil {
				t.Fatal(err)
			}
			if !res.HeaderVerified || !res.DataVerified {
				t.Errorf("verify established %+v, want header and data", res)
			}
		})
	}
}

func TestWholeFileVerify(t *testing.T) {
	anon, _ := startServers(t)
	m := testModel(t)
	key := upload(t, anon, m.file)
	awsEnv(t, anon.Endpoint)
	ctx := context.Background()
	src, err := s3src.Open(ctx, anon.URI(key), s3src.WithAnonymous())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, err := decode.NewReaderContext(ctx, src, src.Size())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(ctx, decode.VerifyOptions{Workers: 4}); err != nil {
		t.Fatal(err)
	}
}

// recorder records the byte ranges of the GETs a client sends.
type recorder struct {
	mu     sync.Mutex
	ranges [][2]int64 // [first, last]
	other  []string
	next   http.RoundTripper
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	var first, last int64
	if _, err := fmt.Sscanf(req.Header.Get("Range"), "bytes=%d-%d", &first, &last); req.Method == http.MethodGet && err == nil {
		r.ranges = append(r.ranges, [2]int64{first, last})
	} else {
		r.other = append(r.other, req.Method+" "+req.Header.Get("Range"))
	}
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *recorder) take() (ranges [][2]int64, other []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ranges, other = r.ranges, r.other
	r.ranges, r.other = nil, nil
	return ranges, other
}

func TestSliceReadsOnlyItsChunks(t *testing.T) {
	anon, _ := startServers(t)
	m := testModel(t)
	key := upload(t, anon, m.file)
	awsEnv(t, anon.Endpoint)
	ctx := context.Background()
	rec := &recorder{next: http.DefaultTransport}
	src, err := s3src.Open(ctx, anon.URI(key), s3src.WithAnonymous(),
		s3src.WithLoadOptions(config.WithHTTPClient(rec)))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f, err := decode.NewReaderContext(ctx, src, src.Size(), decode.WithVerify(decode.VerifyLazy))
	if err != nil {
		t.Fatal(err)
	}
	tn, err := f.Tensor("embed.weight") // [256, 1024] f32: a row is 4 KiB, a chunk 16 rows
	if err != nil {
		t.Fatal(err)
	}
	if _, other := rec.take(); len(other) != 0 {
		t.Fatalf("requests other than ranged GETs: %q", other)
	}
	s, err := decode.ParseSlice("40:72, :", tn.Shape) // rows 40-71: chunks 2 to 4
	if err != nil {
		t.Fatal(err)
	}
	got, err := tn.ReadSlice(s)
	if err != nil {
		t.Fatal(err)
	}
	want := m.data["embed.weight"][40*4096 : 72*4096]
	if !bytes.Equal(got, want) {
		t.Fatal("slice differs from what was written")
	}
	const chunk = 64 << 10
	lo, hi := tn.Offset+2*chunk, tn.Offset+5*chunk // the chunks the slice touches
	padHi := (tn.Offset + tn.Length + f.Alignment() - 1) / f.Alignment() * f.Alignment()
	ranges, other := rec.take()
	if len(other) != 0 {
		t.Errorf("requests other than ranged GETs: %q", other)
	}
	var fetched int64
	for _, r := range ranges {
		inChunks := r[0] >= lo && r[1] < hi
		inPadding := r[0] >= tn.Offset+tn.Length && r[1] < padHi
		if !inChunks && !inPadding {
			t.Errorf("fetched bytes %d-%d; the slice needs only %d-%d and the padding %d-%d",
				r[0], r[1], lo, hi-1, tn.Offset+tn.Length, padHi-1)
		}
		fetched += r[1] - r[0] + 1
	}
	if max := hi - lo + padHi - (tn.Offset + tn.Length); fetched > max {
		t.Errorf("fetched %d bytes for a slice of 3 chunks (at most %d)", fetched, max)
	}
	if fetched < hi-lo {
		t.Errorf("fetched %d bytes, fewer than the 3 chunks the slice hashes", fetched)
	}
}

func TestOverwrittenObject(t *testing.T) {
	anon, _ := startServers(t)
	m := testModel(t)
	other, err := makeModel(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	awsEnv(t, anon.Endpoint)
	ctx := context.Background()
	// VerifyNone checks no digest: there If-Match alone keeps the versions
	// apart.
	for _, mode := range []decode.VerifyMode{decode.VerifyNone, decode.VerifyLazy} {
		key := upload(t, anon, m.file)
		src, err := s3src.Open(ctx, anon.URI(key), s3src.WithAnonymous())
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		f, err := decode.NewReaderContext(ctx, src, src.Size(), decode.WithVerify(mode))
		if err != nil {
			t.Fatal(err)
		}
		// The same layout, other bytes: without If-Match every offset would
		// still be valid and the reads would mix the two files.
		if err := anon.Put(ctx, key, other.file); err != nil {
			t.Fatal(err)
		}
		for tn := range f.All() {
			got, err := tn.Bytes()
			if !errors.Is(err, source.ErrChanged) || !errors.Is(err, format.ErrIO) {
				t.Errorf("mode %d: %s: %v, want ErrChanged", mode, tn.Name, err)
			}
			if got != nil {
				t.Errorf("mode %d: %s: %d bytes returned with the error", mode, tn.Name, len(got))
			}
			var te *source.TransientError
			if errors.As(err, &te) {
				t.Errorf("mode %d: %s: a changed object is not transient: %v", mode, tn.Name, err)
			}
		}
	}
	key := upload(t, anon, other.file)

	// The backend itself: a pinned read of the old version writes nothing.
	b := s3src.NewBackend(anonClient(t, anon), anon.Bucket, key)
	p := bytes.Repeat([]byte{0xA5}, 4096)
	_, info, err := b.ReadRange(ctx, p, 0, "")
	if err != nil || info.Version == "" {
		t.Fatalf("read: version %q, %v", info.Version, err)
	}
	if !bytes.Equal(p, other.file[:4096]) {
		t.Fatal("an unpinned read does not give the new object")
	}
	if err := anon.Put(ctx, key, m.file); err != nil {
		t.Fatal(err)
	}
	fill := bytes.Repeat([]byte{0xA5}, 4096)
	copy(p, fill)
	n, _, err := b.ReadRange(ctx, p, 0, info.Version)
	if !errors.Is(err, source.ErrChanged) {
		t.Fatalf("pinned read of a replaced object: %v, want ErrChanged", err)
	}
	if n != 0 || !bytes.Equal(p, fill) {
		t.Errorf("a refused read wrote %d bytes into p", n)
	}
}

func anonClient(t *testing.T, srv *weedtest.Server) *s3.Client {
	t.Helper()
	c, err := s3src.NewClient(context.Background(), s3src.WithAnonymous(),
		s3src.WithLoadOptions(config.WithBaseEndpoint(srv.Endpoint)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMissingObject(t *testing.T) {
	anon, _ := startServers(t)
	awsEnv(t, anon.Endpoint)
	ctx := context.Background()
	for _, tc := range []struct{ uri, code string }{
		{anon.URI("no/such/key.swt"), "NoSuchKey"},
		{"s3://no-such-bucket/model.swt", "NoSuchBucket"},
	} {
		_, err := s3src.Open(ctx, tc.uri, s3src.WithAnonymous())
		checkRefused(t, err, http.StatusNotFound, tc.code)
	}
}

// checkRefused checks err is a non-transient refusal with the status and
// S3 error code.
func checkRefused(t *testing.T, err error, status int, code string) {
	t.Helper()
	var se *source.StatusError
	if !errors.As(err, &se) || se.Code != status {
		t.Errorf("%v: want status %d", err, status)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Errorf("%v: want S3 error code %s", err, code)
	}
	var te *source.TransientError
	if errors.As(err, &te) {
		t.Errorf("%v: a refusal is not transient", err)
	}
	var e *source.Error
	if !errors.As(err, &e) || !errors.Is(err, format.ErrIO) {
		t.Errorf("%v: want a *source.Error", err)
	}
}

func TestCredentials(t *testing.T) {
	_, keyed := startServers(t)
	m := testModel(t)
	key := upload(t, keyed, m.file)
	ctx := context.Background()
	// The S3-specific endpoint wins over the global one, which would fail.
	awsEnv(t, "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_S3", keyed.Endpoint)

	t.Run("right", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", testAccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", testSecretKey)
		src, err := s3src.Open(ctx, keyed.URI(key))
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		f, err := decode.NewReaderContext(ctx, src, src.Size(), decode.WithPolicy(sign.Require(m.trusted)))
		if err != nil {
			t.Fatal(err)
		}
		tn, err := f.Tensor("layers.0.weight")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := tn.Bytes(); err != nil || !bytes.Equal(got, m.data[tn.Name]) {
			t.Fatalf("read with the right key: %v", err)
		}
	})
	t.Run("wrong-secret", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", testAccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", "not-"+testSecretKey)
		_, err := s3src.Open(ctx, keyed.URI(key))
		checkRefused(t, err, http.StatusForbidden, "SignatureDoesNotMatch")
	})
	t.Run("unknown-key", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "no-such-key")
		t.Setenv("AWS_SECRET_ACCESS_KEY", testSecretKey)
		_, err := s3src.Open(ctx, keyed.URI(key))
		checkRefused(t, err, http.StatusForbidden, "InvalidAccessKeyId")
	})
	t.Run("anonymous", func(t *testing.T) {
		_, err := s3src.Open(ctx, keyed.URI(key), s3src.WithAnonymous())
		checkRefused(t, err, http.StatusForbidden, "AccessDenied")
	})
}

func TestEnds(t *testing.T) {
	anon, _ := startServers(t)
	ctx := context.Background()
	data := []byte("0123456789")
	key := upload(t, anon, data)
	empty := upload(t, anon, nil)
	b := s3src.NewBackend(anonClient(t, anon), anon.Bucket, key)

	p := make([]byte, 16)
	n, info, err := b.ReadRange(ctx, p, 4, "")
	if n != 6 || !errors.Is(err, io.EOF) || info.Size != 10 || !bytes.Equal(p[:6], data[4:]) {
		t.Errorf("read across the end: %d bytes %q, size %d, %v; want 6, size 10, io.EOF", n, p[:n], info.Size, err)
	}
	n, info, err = b.ReadRange(ctx, p, 10, "")
	if n != 0 || !errors.Is(err, io.EOF) || info.Size != 10 {
		t.Errorf("read at the end: %d bytes, size %d, %v; want 0, size 10, io.EOF", n, info.Size, err)
	}
	n, info, err = b.ReadRange(ctx, nil, 0, "")
	if n != 0 || err != nil || info.Size != 10 || info.Version == "" {
		t.Errorf("empty read: %d bytes, %+v, %v; want the size and version", n, info, err)
	}
	be := s3src.NewBackend(anonClient(t, anon), anon.Bucket, empty)
	n, info, err = be.ReadRange(ctx, p, 0, "")
	if n != 0 || !errors.Is(err, io.EOF) || info.Size != 0 {
		t.Errorf("empty object: %d bytes, size %d, %v; want 0, size 0, io.EOF", n, info.Size, err)
	}
}

// TestNoRegion: with neither a region nor an endpoint configured, opening
// fails with ErrNoRegion, which says what to set, and the SDK writes nothing
// of its own to stderr.
func TestNoRegion(t *testing.T) {
	awsEnv(t, "")
	_, err := s3src.Open(context.Background(), "s3://models/m.swt")
	if !errors.Is(err, s3src.ErrNoRegion) {
		t.Fatalf("got %v, want ErrNoRegion", err)
	}
	if !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("%v: does not name AWS_REGION", err)
	}
	t.Setenv("AWS_REGION", "eu-west-1")
	if _, err := s3src.NewClient(context.Background()); err != nil {
		t.Fatalf("with AWS_REGION: %v", err)
	}
}
