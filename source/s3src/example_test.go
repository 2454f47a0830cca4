package s3src_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/aws/smithy-go"

	"github.com/safeweights/safeweights/decode"
	"github.com/safeweights/safeweights/sign"
	"github.com/safeweights/safeweights/source"
	"github.com/safeweights/safeweights/source/s3src"
)

// Read a signed model from a bucket. Credentials, region and endpoint come
// from the AWS environment; for a local SeaweedFS or MinIO, for example:
//
//	AWS_ENDPOINT_URL_S3=http://127.0.0.1:8333 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...
func ExampleOpen() {
	ctx := context.Background()
	trusted, err := sign.LoadKeyRing("trusted-keys/")
	if err != nil {
		log.Fatal(err)
	}
	src, err := s3src.Open(ctx, "s3://models/llama/model.swt")
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchKey" {
		fmt.Fprintln(os.Stderr, "no such model")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	// Open fails unless a trusted key signed the file; every tensor byte
	// is hashed where it lands before it is returned.
	f, err := decode.NewReaderContext(ctx, src, src.Size(), decode.WithPolicy(sign.Require(trusted)))
	if err != nil {
		log.Fatal(err)
	}
	t, err := f.Tensor("model.embed_tokens.weight")
	if err != nil {
		log.Fatal(err)
	}
	b, err := t.Bytes()
	if errors.Is(err, source.ErrChanged) {
		// The object was replaced after Open: open it again.
		log.Fatal(err)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Name, len(b), "bytes")
}

// Read a public bucket without credentials, in parts of 16 MiB, 16 at a
// time.
func ExampleWithAnonymous() {
	ctx := context.Background()
	src, err := s3src.Open(ctx, "s3://public-models/tiny/model.swt",
		s3src.WithAnonymous(),
		s3src.WithRemoteOptions(source.WithPartSize(16<<20), source.WithConcurrency(16)))
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	fmt.Println(src.Name(), src.Size())
}

func ExampleParseURI() {
	bucket, key, err := s3src.ParseURI("s3://models/llama/model.swt")
	fmt.Println(bucket, key, err)
	_, _, err = s3src.ParseURI("s3://Models/llama/")
	fmt.Println(errors.Is(err, s3src.ErrURI))
	// Output:
	// models llama/model.swt <nil>
	// true
}
