package testvectors

// The signature vectors are generated; run `go generate ./testvectors` after
// changing the generator, and commit sign/.
//go:generate go run ./internal/gensign -out sign
