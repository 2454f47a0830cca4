// Package weedtest runs a SeaweedFS server (`weed server -s3`) for tests of
// code that reads an S3-compatible store: bound to 127.0.0.1 on free
// ports, its data in a temporary folder, a bucket created, and the process
// group killed on Stop.
//
// The weed binary is built from SeaweedFS's Go module by .ci/build-weed.sh.
// Binary finds it in $SAFEWEIGHTS_WEED, then in the cache that script
// writes, then on PATH; without it New skips the test.
package weedtest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the SeaweedFS module version .ci/build-weed.sh builds.
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

// EnvVar names the weed binary to use.
const EnvVar = "SAFEWEIGHTS_WEED"

// ErrNoBinary is returned by Start when no weed binary is found.
var ErrNoBinary = errors.New("weedtest: no weed binary (set " + EnvVar + ", or run .ci/build-weed.sh)")

// CachePath is where .ci/build-weed.sh caches the binary:
// ${XDG_CACHE_HOME:-$HOME/.cache}/safeweights/weed-VERSION/weed.
func CachePath() string {
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "safeweights", "weed-"+Version, "weed")
}

// Binary is the weed binary to run: $SAFEWEIGHTS_WEED, the cache path, or
// weed on PATH, the first that exists.
func Binary() (string, error) {
	if p := os.Getenv(EnvVar); p != "" {
		if isExec(p) {
			return p, nil
		}
		return "", fmt.Errorf("weedtest: %s=%s is not an executable file", EnvVar, p)
	}
	if p := CachePath(); p != "" && isExec(p) {
		return p, nil
	}
	if p, err := exec.LookPath("weed"); err == nil {
		return p, nil
	}
	return "", ErrNoBinary
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Options configure a server.
type Options struct {
	// Bucket is created at start; default "models".
	Bucket string
	// AccessKey and SecretKey, when set, configure one identity that may do
	// everything (an -s3.config identities file) and no anonymous access.
	// Empty: no identities, every request is allowed.
	AccessKey, SecretKey string
	// VolumeSizeLimitMB and MaxVolumes bound the store: what it can hold
	// is about their product. Defaults 64 and 8, for tests; a benchmark of
	// a model of gigabytes needs more.
	VolumeSizeLimitMB, MaxVolumes int
}

// Server is a running weed server.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT, the S3 API
	Bucket    string
	AccessKey string // empty for an anonymous server
	SecretKey string

	dir     string
	ownDir  bool
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	log     *os.File
	sockets []string // unix sockets weed makes in /tmp
	client  *s3.Client
	stop    sync.Once
}

// New starts a server with its data in t.TempDir, stops it when the test
// ends, and skips the test when there is no weed binary.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := start(t.TempDir(), false, opts)
	if errors.Is(err, ErrNoBinary) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// Start starts a server with its data in a new temporary folder, which Stop
// removes; for a server shared by a test binary (TestMain). It returns
// ErrNoBinary when there is no weed binary.
func Start(opts Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "weedtest-")
	if err != nil {
		return nil, err
	}
	s, err := start(dir, true, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Start-up takes some seconds: the master elects itself, the volume server
// registers, and the first write waits for volumes to be allocated.
const startTimeout = 90 * time.Second

// start starts a server in dir, trying again on fresh ports if weed exits
// at start (another process took one of its ports first).
func start(dir string, ownDir bool, opts Options) (*Server, error) {
	var errs []error
	for attempt := range 3 {
		sub := filepath.Join(dir, "run"+itoa(attempt))
		s, err := startOnce(sub, opts)
		if err == nil {
			if ownDir {
				s.dir = dir
			}
			s.ownDir = ownDir
			return s, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, errExited) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// errExited: weed exited before it was ready.
var errExited = errors.New("weed exited")

func startOnce(dir string, opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if opts.Bucket == "" {
		opts.Bucket = "models"
	}
	if (opts.AccessKey == "") != (opts.SecretKey == "") {
		return nil, errors.New("weedtest: an access key needs a secret key")
	}
	ports, err := freePorts(8)
	if err != nil {
		return nil, err
	}
	master, masterGRPC, volume, volumeGRPC := ports[0], ports[1], ports[2], ports[3]
	filer, filerGRPC, s3Port, s3GRPC := ports[4], ports[5], ports[6], ports[7]
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	// glog writes files to /tmp unless told otherwise: to stderr (weed.log)
	// instead, and to dir should any file still be written.
	args := []string{"-logtostderr", "-logdir=" + dir, "server",
		"-dir=" + data,
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + itoa(master), "-master.port.grpc=" + itoa(masterGRPC),
		"-master.telemetry=false", "-master.volumeSizeLimitMB=" + itoa(cmp.Or(opts.VolumeSizeLimitMB, 64)),
		"-volume.port=" + itoa(volume), "-volume.port.grpc=" + itoa(volumeGRPC),
		"-volume.max=" + itoa(cmp.Or(opts.MaxVolumes, 8)), "-volume.preStopSeconds=0",
		"-filer", "-filer.port=" + itoa(filer), "-filer.port.grpc=" + itoa(filerGRPC),
		"-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-s3", "-s3.port=" + itoa(s3Port), "-s3.port.grpc=" + itoa(s3GRPC),
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.localSocket=" + filepath.Join(dir, "s3.sock"),
	}
	if opts.AccessKey != "" {
		conf := filepath.Join(dir, "s3.json")
		if err := writeIdentities(conf, opts.AccessKey, opts.SecretKey); err != nil {
			return nil, err
		}
		args = append(args, "-s3.config="+conf)
	}
	logf, err := os.Create(filepath.Join(dir, "weed.log"))
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://127.0.0.1:" + itoa(s3Port),
		Bucket:    opts.Bucket,
		AccessKey: opts.AccessKey,
		SecretKey: opts.SecretKey,
		dir:       dir,
		log:       logf,
		done:      make(chan struct{}),
	}
	// weed puts a gRPC socket for each service in /tmp, named by port;
	// the ports are fresh, so any such file now is not ours.
	for _, svc := range []struct {
		name string
		port int
	}{{"master", masterGRPC}, {"volume", volumeGRPC}, {"filer", filerGRPC}, {"s3", s3GRPC}} {
		p := fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%d.sock", svc.name, svc.port)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			s.sockets = append(s.sockets, p)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("weedtest: starting %s: %w", bin, err)
	}
	s.cmd = cmd
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	var cred aws.CredentialsProvider = aws.AnonymousCredentials{}
	if opts.AccessKey != "" {
		cred = credentials.NewStaticCredentialsProvider(opts.AccessKey, opts.SecretKey, "")
	}
	s.client = s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       "us-east-1",
		UsePathStyle: true,
		Credentials:  cred,
		// SeaweedFS takes the SDK's default checksums; stay with the
		// plainest requests so the harness does not depend on them.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		tail := s.logTail()
		s.Stop()
		return nil, fmt.Errorf("weedtest: weed server did not come up: %w\n%s", err, tail)
	}
	return s, nil
}

// ready waits until S3 answers, creates the bucket, and waits until a write
// succeeds (the first one waits for volumes to be allocated).
func (s *Server) ready(ctx context.Context) error {
	step := func(what string, fn func(context.Context) error) error {
		var last error
		for {
			select {
			case <-s.done:
				return fmt.Errorf("%w (%v) while waiting for %s", errExited, s.waitErr, what)
			default:
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			last = fn(rctx)
			cancel()
			if last == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), last)
			case <-s.done:
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	if err := step("the S3 port", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}); err != nil {
		return err
	}
	if err := step("the bucket", func(ctx context.Context) error {
		_, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)})
		if err != nil {
			if _, herr := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.Bucket)}); herr == nil {
				return nil
			}
		}
		return err
	}); err != nil {
		return err
	}
	const probe = ".weedtest-ready"
	if err := step("a first write", func(ctx context.Context) error {
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.Bucket), Key: aws.String(probe), Body: strings.NewReader("ok"),
		})
		return err
	}); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(probe)})
	return err
}

// Pid is the weed process's id (and its process group's).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Client is an S3 client for the server with the server's own key (or
// none), path-style, for a test to upload and replace objects.
func (s *Server) Client() *s3.Client { return s.client }

// Put uploads data as key in the server's bucket.
func (s *Server) Put(ctx context.Context, key string, data []byte) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.Bucket), Key: aws.String(key), Body: bytes.NewReader(data),
	})
	return err
}

// URI is s3://BUCKET/KEY for key in the server's bucket.
func (s *Server) URI(key string) string { return "s3://" + s.Bucket + "/" + key }

// Stop kills the server's process group, waits for it, and removes what it
// left: its sockets in /tmp and, for Start, its folder.
func (s *Server) Stop() error {
	var err error
	s.stop.Do(func() {
		killProcessGroup(s.cmd)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			err = errors.New("weedtest: weed did not exit after SIGKILL")
		}
		s.log.Close()
		for _, p := range s.sockets {
			os.Remove(p)
		}
		if s.ownDir {
			if rerr := os.RemoveAll(s.dir); err == nil {
				err = rerr
			}
		}
	})
	return err
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.log.Name())
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func writeIdentities(path, access, secret string) error {
	type cred struct {
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
	}
	type identity struct {
		Name        string   `json:"name"`
		Credentials []cred   `json:"credentials"`
		Actions     []string `json:"actions"`
	}
	b, err := json.Marshal(map[string][]identity{"identities": {{
		Name:        "test",
		Credentials: []cred{{access, secret}},
		Actions:     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}})
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// freePorts are n distinct free TCP ports on 127.0.0.1, all held open until
// all are chosen. They are drawn below the kernel's ephemeral range (Linux
// and BSD both start it at 32768 or above): a port from that range, free
// when chosen, can be taken by an outgoing connection of the first server
// before the second binds it.
func freePorts(n int) ([]int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("weedtest: no free ports")
		}
		p := 20000 + mrand.IntN(12000)
		if portsUsed[p] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+itoa(p))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, p)
		portsUsed[p] = true
	}
	return ports, nil
}

// Ports handed out by this process, never handed out twice.
var (
	portMu    sync.Mutex
	portsUsed = map[int]bool{}
)

func itoa(n int) string { return strconv.Itoa(n) }
