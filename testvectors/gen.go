package testvectors

// The core vectors are generated; run `go generate ./testvectors` after
// changing the generator, and commit core/.
//go:generate go run ./internal/gen -out core
