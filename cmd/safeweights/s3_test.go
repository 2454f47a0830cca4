package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/safeweights/safeweights/internal/weedtest"
)

// s3serve starts a SeaweedFS server (weed server -s3 on 127.0.0.1, see
// internal/weedtest) for the script, with one identity, and points the
// standard AWS environment at it: AWS_ENDPOINT_URL, the key and a region,
// as a user would. $BUCKET names its bucket. Scripts guard it with the
// condition [weed], false where no weed binary is built (.ci/build-weed.sh).
func cmdS3Serve(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: s3serve")
	}
	s, err := weedtest.Start(weedtest.Options{AccessKey: "swtkey", SecretKey: "swtsecret"})
	ts.Check(err)
	s3servers.Store(ts, s)
	ts.Defer(func() { s3servers.Delete(ts); s.Stop() })
	ts.Setenv("AWS_ENDPOINT_URL", s.Endpoint)
	ts.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	ts.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	ts.Setenv("AWS_REGION", "us-east-1")
	ts.Setenv("BUCKET", s.Bucket)
}

// s3servers holds each script's server, for s3put.
var s3servers sync.Map // *testscript.TestScript -> *weedtest.Server

// s3put FILE KEY uploads FILE from the work directory as KEY.
func cmdS3Put(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: s3put FILE KEY")
	}
	v, ok := s3servers.Load(ts)
	if !ok {
		ts.Fatalf("s3put before s3serve")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Check(v.(*weedtest.Server).Put(context.Background(), args[1], b))
}

// scriptCondition answers the conditions of the scripts: [weed] holds where
// a weed binary is found.
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "weed":
		_, err := weedtest.Binary()
		if errors.Is(err, weedtest.ErrNoBinary) {
			return false, nil
		}
		return err == nil, err
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}
