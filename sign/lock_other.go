//go:build !unix

package sign

import (
	"context"
	"os"
)

// lockFile does nothing where flock is not available: concurrent signers
// of one file may then overwrite each other's signature.
func lockFile(context.Context, *os.File) error { return nil }
