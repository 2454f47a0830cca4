// Package shard reads and writes the signed index of a model split across
// many .swt files or objects (spec/SHARDS.md), and presents the shards as
// one set of tensors.
//
// An index names every shard by its header digest, so that a shard swapped,
// renamed, dropped, duplicated or taken from another model is rejected
// before any of its tensors is used, and it is signed with Ed25519 under the
// same keys as .swt files (package sign) but a different domain separator.
// Open verifies the signature against explicitly trusted keys and opens
// each shard lazily, through an Opener, so local files, HTTP and S3 sources
// all plug in.
package shard
