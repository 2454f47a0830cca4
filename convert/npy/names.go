package npy

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// MaxFileNameLength bounds the names SafeFileName returns, in bytes, leaving
// room under the common 255-byte limit for an extension and a suffix.
const MaxFileNameLength = 200

// reserved are the Windows device names: a file whose name is one of these,
// with or without an extension, opens the device instead.
var reserved = map[string]bool{
	"CON": true, "PRN": true, "AUX": true, "NUL": true, "CLOCK$": true,
	"CONIN$": true, "CONOUT$": true,
}

func isReserved(stem string) bool {
	u := strings.ToUpper(stem)
	if reserved[u] {
		return true
	}
	if len(u) == 4 && (strings.HasPrefix(u, "COM") || strings.HasPrefix(u, "LPT")) && u[3] >= '0' && u[3] <= '9' {
		return true
	}
	return false
}

// SafeFileName turns a tensor name into a file name (without extension)
// that is safe to create in a directory on any common system:
//
//   - only ASCII letters, digits and "._-+" are kept; every other byte
//     (path separators, drive colons, control characters, spaces, non-ASCII
//     UTF-8) becomes "_", so the result can hold no separator and cannot be
//     absolute;
//   - leading dots become "_" (no hidden files, no "." or ".."), and so do
//     trailing dots (which Windows strips);
//   - a Windows device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9, ...),
//     whatever its case or extension, gets a "_" prefix;
//   - an empty name becomes "_";
//   - a result longer than MaxFileNameLength is cut and ends with a hash of
//     the whole tensor name, so that cut names stay distinct.
//
// Different tensor names can map to the same file name; FileNames resolves
// such collisions.
func SafeFileName(tensorName string) string {
	b := []byte(tensorName)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '-', c == '+':
		default:
			b[i] = '_'
		}
	}
	for i := 0; i < len(b) && b[i] == '.'; i++ {
		b[i] = '_'
	}
	for i := len(b) - 1; i >= 0 && b[i] == '.'; i-- {
		b[i] = '_'
	}
	s := string(b)
	if s == "" {
		s = "_"
	}
	stem, _, _ := strings.Cut(s, ".")
	if isReserved(stem) {
		s = "_" + s
	}
	if len(s) > MaxFileNameLength {
		h := hashSuffix(tensorName)
		s = s[:MaxFileNameLength-len(h)] + h
	}
	return s
}

// hashSuffix is "-" and 16 hex digits of the SHA-256 of name.
func hashSuffix(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "-" + hex.EncodeToString(sum[:8])
}

// FileNames returns a file name for each tensor name, SafeFileName plus ext
// (such as ".npy"), all distinct even on case-insensitive file systems. A
// name that collides with another, ignoring case, gets a suffix made from a
// hash of its tensor name, so the result does not depend on the order of
// names; a counter settles the (unlikely) collisions that remain, in order.
// Names must be distinct; ext must be a safe extension such as ".npy".
func FileNames(names []string, ext string) []string {
	base := make([]string, len(names))
	count := make(map[string]int, len(names))
	for i, n := range names {
		base[i] = SafeFileName(n)
		count[strings.ToLower(base[i])]++
	}
	out := make([]string, len(names))
	used := make(map[string]bool, len(names))
	for i, n := range names {
		s := base[i]
		if count[strings.ToLower(s)] > 1 {
			s = withSuffix(s, hashSuffix(n))
		}
		for k := 2; used[strings.ToLower(s+ext)]; k++ {
			s = withSuffix(base[i], hashSuffix(n)+"-"+strconv.Itoa(k))
		}
		used[strings.ToLower(s+ext)] = true
		out[i] = s + ext
	}
	return out
}

// withSuffix appends suffix to s, cutting s to keep the result within
// MaxFileNameLength.
func withSuffix(s, suffix string) string {
	if len(s)+len(suffix) > MaxFileNameLength {
		s = s[:MaxFileNameLength-len(suffix)]
	}
	return s + suffix
}
