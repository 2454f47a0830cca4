// Command inference serves a Flux model converted to safeweights and signed,
// as an example to copy: it loads the model under a policy that requires a
// trusted signature, rebuilds the Flux chain from the structure the
// converter recorded (Dense, Conv, BatchNorm, MaxPool, MeanPool, flatten and
// the common activations; anything else is refused), and answers
//
//	POST /predict  {"input": [...], "shape": [...]}  (row-major: Flux's
//	               (features, batch) is [batch, features], WHCN is [N, C, H, W])
//	GET  /healthz  the process is up
//	GET  /readyz   a model is loaded: its header digest and signers
//
// on 127.0.0.1. When the file is replaced (write a new file and rename it
// over the old one), the new file is loaded and checked; requests in flight
// finish on the old model, and a replacement that is unsigned, signed by an
// untrusted key or tampered with is refused while the old model keeps
// serving. A detached signature (FILE.swt.sig) counts as the policy of
// package sign says, and replacing it also triggers a reload, so a file
// that arrives before its signature loads once the signature arrives.
//
//	inference -model model.swt -trusted keys/ [-addr 127.0.0.1:8080] [-poll 2s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/safeweights/safeweights/sign"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "inference:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("inference", flag.ContinueOnError)
	path := fs.String("model", "", "the signed .swt `file` to serve")
	trusted := fs.String("trusted", "", "trusted public key `file or directory` (PEM)")
	addr := fs.String("addr", "127.0.0.1:8080", "listen `address`")
	interval := fs.Duration("poll", 2*time.Second, "how often to check the model file for a replacement")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" || *trusted == "" {
		return errors.New("-model and -trusted are required")
	}
	kr, err := sign.LoadKeyRing(*trusted)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	s := newServer(*path, kr)
	if err := s.poll(); err != nil {
		ln.Close()
		return err
	}
	return serve(ctx, ln, s, *interval)
}

// serve serves s's model on ln until ctx is done, checking the file for a
// replacement every interval, and releases the model when the last request
// has finished.
func serve(ctx context.Context, ln net.Listener, s *server, interval time.Duration) error {
	defer s.close()
	go s.watch(ctx, interval)
	hs := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
