package s3src_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestSDKStaysHere checks that the S3 SDK is linked only into programs that
// import this package: the core and source itself must not pull it in.
func TestSDKStaysHere(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	const mod = "github.com/safeweights/safeweights/"
	pkgs := []string{"format", "encode", "decode", "sign", "source"}
	for i, p := range pkgs {
		pkgs[i] = mod + p
	}
	out, err := exec.Command(gobin, append([]string{"list", "-deps"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < len(pkgs) {
		t.Fatalf("go list gave %d packages", len(deps))
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/aws/") || strings.HasPrefix(d, "github.com/minio/") || d == mod+"source/s3src" {
			t.Errorf("%s is a dependency of %v", d, pkgs)
		}
	}
}
