package s3src_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/encode"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/internal/weedtest"
	"github.com/safeweights/safeweights/source"
	"github.com/safeweights/safeweights/source/s3src"
)

// Benchmark sizes and shape of the reads, from the environment:
//
//	SAFEWEIGHTS_S3_BENCH_MIB    model size in MiB (default 16)
//	SAFEWEIGHTS_S3_BENCH_PART   part size in bytes (default 8 MiB)
//	SAFEWEIGHTS_S3_BENCH_CONC   concurrent requests (default 8)
func benchEnv(b *testing.B, name string, def int64) int64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

// BenchmarkS3Read reads a whole model from SeaweedFS as its users do and,
// in the same iteration, the same bytes by plain parallel GetObject with
// the same client, concurrency and part size, and reports both speeds and
// their ratio (1 means reading through safeweights costs nothing over
// fetching the bytes), and the HTTP requests of each (the raw read's
// include one HEAD); and, for the ceiling, the same GetObject fetch with
// each part hashed as it lands:
//
//	lazy:   decode under VerifyLazy, ReadInto of every tensor in turn
//	verify: the whole-file concurrent check (File.Verify)
//
//	SAFEWEIGHTS_S3_BENCH_MIB=1024 go test -run '^$' -bench S3Read -benchtime 3x ./source/s3src
func BenchmarkS3Read(b *testing.B) {
	size := benchEnv(b, "SAFEWEIGHTS_S3_BENCH_MIB", 16) << 20
	// A store of its own, large enough for the model: the tests' holds
	// half a gigabyte.
	anon, err := weedtest.Start(weedtest.Options{VolumeSizeLimitMB: 1024, MaxVolumes: int(size>>30) + 8})
	if errors.Is(err, weedtest.ErrNoBinary) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { anon.Stop() })
	awsEnv(b, anon.Endpoint)
	part := benchEnv(b, "SAFEWEIGHTS_S3_BENCH_PART", 8<<20)
	conc := int(benchEnv(b, "SAFEWEIGHTS_S3_BENCH_CONC", 8))
	ctx := context.Background()

	path, maxTensor := benchModel(b, size)
	key := "bench/model-" + strconv.FormatInt(size, 10) + ".swt"
	fh, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	_, err = anon.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(anon.Bucket), Key: aws.String(key), Body: fh})
	fh.Close()
	if err != nil {
		b.Fatal(err)
	}
	os.Remove(path)
	counter := &countingClient{next: &http.Client{Transport: http.DefaultTransport}}
	client, err := s3src.NewClient(ctx, s3src.WithAnonymous(),
		s3src.WithLoadOptions(config.WithBaseEndpoint(anon.Endpoint), config.WithRegion("us-east-1"),
			config.WithHTTPClient(counter)))
	if err != nil {
		b.Fatal(err)
	}
	open := func() (source.Source, *decode.File) {
		src, err := s3src.Open(ctx, anon.URI(key), s3src.WithClient(client),
			s3src.WithRemoteOptions(source.WithPartSize(part), source.WithConcurrency(conc)))
		if err != nil {
			b.Fatal(err)
		}
		f, err := decode.NewReaderContext(ctx, src, src.Size(), decode.WithVerify(decode.VerifyLazy))
		if err != nil {
			b.Fatal(err)
		}
		return src, f
	}
	dst := make([]byte, maxTensor)
	paths := map[string]func(*decode.File){
		"lazy": func(f *decode.File) {
			for t := range f.All() {
				if err := t.ReadInto(dst[:t.Length]); err != nil {
					b.Fatal(err)
				}
			}
		},
		"verify": func(f *decode.File) {
			if err := f.Verify(ctx, decode.VerifyOptions{Workers: conc}); err != nil {
				b.Fatal(err)
			}
		},
	}
	for _, name := range []string{"lazy", "verify"} {
		read := paths[name]
		b.Run(name, func(b *testing.B) {
			var swt, raw, hash time.Duration
			var total, swtReqs, rawReqs int64
			for b.Loop() {
				counter.n.Store(0)
				start := time.Now()
				src, f := open()
				read(f)
				f.Close()
				src.Close()
				swt += time.Since(start)
				swtReqs += counter.n.Swap(0)

				start = time.Now()
				total = rawGet(b, client, anon.Bucket, key, part, conc)
				raw += time.Since(start)
				rawReqs += counter.n.Swap(0)

				counter.n.Store(0)
				start = time.Now()
				rawGetHashed(b, client, anon.Bucket, key, part, conc)
				hash += time.Since(start)
			}
			mb := float64(total) * float64(b.N) / 1e6
			b.ReportMetric(mb/swt.Seconds(), "swt-MB/s")
			b.ReportMetric(mb/raw.Seconds(), "get-MB/s")
			b.ReportMetric(raw.Seconds()/swt.Seconds(), "ratio")
			// The same fetch with every 4 MiB of each part hashed by
			// BLAKE3 where it landed, written by hand: what checking
			// costs with no format at all, the ratio's ceiling where the
			// store shares the client's CPUs.
			b.ReportMetric(mb/hash.Seconds(), "get+hash-MB/s")
			b.ReportMetric(raw.Seconds()/hash.Seconds(), "ceiling")
			b.ReportMetric(float64(swtReqs)/float64(b.N), "swt-requests")
			b.ReportMetric(float64(rawReqs)/float64(b.N), "get-requests")
			b.SetBytes(total)
		})
	}
}

// countingClient counts the HTTP requests of a client.
type countingClient struct {
	n    atomic.Int64
	next *http.Client
}

func (c *countingClient) Do(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.Do(req)
}

// rawGet fetches the whole object by parallel ranged GetObject, conc at a
// time, part bytes each, into one buffer per worker, and returns its size.
func rawGet(b *testing.B, client *s3.Client, bucket, key string, part int64, conc int) int64 {
	return fetchAll(b, client, bucket, key, part, conc, false)
}

// rawGetHashed is rawGet with every 4 MiB of each part hashed (BLAKE3) in
// the worker's buffer after it was read.
func rawGetHashed(b *testing.B, client *s3.Client, bucket, key string, part int64, conc int) int64 {
	return fetchAll(b, client, bucket, key, part, conc, true)
}

func fetchAll(b *testing.B, client *s3.Client, bucket, key string, part int64, conc int, hash bool) int64 {
	ctx := context.Background()
	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		b.Fatal(err)
	}
	size := aws.ToInt64(head.ContentLength)
	offs := make(chan int64)
	go func() {
		for off := int64(0); off < size; off += part {
			offs <- off
		}
		close(offs)
	}()
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for range conc {
		wg.Go(func() {
			buf := make([]byte, part)
			for off := range offs {
				n := min(part, size-off)
				out, err := client.GetObject(ctx, &s3.GetObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(key),
					Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
				})
				if err == nil {
					_, err = io.ReadFull(out.Body, buf[:n])
					out.Body.Close()
				}
				for lo := int64(0); hash && err == nil && lo < n; lo += format.DefaultChunkSize {
					format.BLAKE3.Sum(buf[lo:min(lo+format.DefaultChunkSize, n)])
				}
				if err != nil {
					errs <- err
					for range offs {
					}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return size
}

// benchModel writes a model of about size bytes in tensors of at most 64
// MiB of random bytes, and returns its path and the largest tensor.
func benchModel(b *testing.B, size int64) (string, int64) {
	path := filepath.Join(b.TempDir(), "bench.swt")
	w, err := encode.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	var largest int64
	for i := 0; size > 0; i++ {
		n := min(size, 64<<20) / 4 * 4
		if n == 0 {
			break
		}
		if err := w.AddFrom(fmt.Sprintf("layers.%d.weight", i), format.F32, []int64{n / 4}, io.LimitReader(rng, n)); err != nil {
			b.Fatal(err)
		}
		largest = max(largest, n)
		size -= n
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	return path, largest
}
