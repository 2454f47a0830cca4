package testvectors

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/safeweights/safeweights/format"
)

// Whole directories are embedded (each holds a README.md), so that the
// patterns match before any vector exists and the generator, which uses
// this package, builds in an empty checkout.
//
//go:embed core
var coreFS embed.FS

//go:embed sign
var signFS embed.FS

// Suffix is the file name suffix of a vector.
const Suffix = ".vector"

// Case is one test vector.
type Case struct {
	// Name is the file name without the suffix; it states the defect.
	Name string
	// Expect is "ok" or the name of a failure kind.
	Expect string
	// Kind is the failure kind a reader must report, or nil when Expect is "ok".
	Kind *format.Kind
	// Rule is the spec rule the vector exercises, such as "R19", or "".
	Rule string
	// Comment says what is wrong with the file, or what it shows.
	Comment string
	// Full is true when the defect is only found by full verification:
	// checking every chunk digest and all padding, and decoding every tensor
	// ("verify: full"). Otherwise a reader rejects the file when opening it.
	Full bool
	// Limits are the reader limits the vector must be read with; zero
	// fields mean the defaults ("limits: max_tensors=4 ...").
	Limits format.Limits
	// Keys holds every key line, including the ones above and any others
	// (signature vectors add their own keys).
	Keys map[string]string
	// Data is the file's bytes.
	Data []byte
}

// Core returns the vectors of the core format (rules R1 to R28), sorted by name.
func Core() ([]Case, error) { return load(coreFS, "core") }

// Sign returns the signature vectors (spec/SIGNATURES.md), sorted by name.
// It returns none while the directory holds no vector.
func Sign() ([]Case, error) { return load(signFS, "sign") }

func load(fsys fs.FS, dir string) ([]Case, error) {
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("testvectors: %w", err)
	}
	var out []Case
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), Suffix) {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("testvectors: %w", err)
		}
		c, err := Parse(strings.TrimSuffix(e.Name(), Suffix), b)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Parse parses the bytes of one vector file named name (without the suffix).
// Data aliases b.
func Parse(name string, b []byte) (Case, error) {
	c := Case{Name: name, Keys: map[string]string{}}
	bad := func(format string, args ...any) (Case, error) {
		return Case{}, fmt.Errorf("testvectors: %s: "+format, append([]any{name}, args...)...)
	}
	for first := true; ; first = false {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return bad("no empty line before the data")
		}
		line := string(b[:i])
		b = b[i+1:]
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok || k == "" || strings.TrimSpace(k) != k {
			return bad("malformed line %q", line)
		}
		if first != (k == "expect") {
			return bad("the first line must be the only expect line")
		}
		if _, dup := c.Keys[k]; dup {
			return bad("key %q twice", k)
		}
		c.Keys[k] = v
	}
	c.Data = b
	c.Expect = c.Keys["expect"]
	if c.Expect != "ok" {
		k, ok := format.KindByName(c.Expect)
		if !ok {
			return bad("unknown kind %q", c.Expect)
		}
		c.Kind = k
	}
	c.Rule = c.Keys["rule"]
	c.Comment = c.Keys["comment"]
	switch v := c.Keys["verify"]; v {
	case "":
	case "full":
		c.Full = true
	default:
		return bad("unknown verify value %q", v)
	}
	if v, ok := c.Keys["limits"]; ok {
		l, err := ParseLimits(v)
		if err != nil {
			return bad("%v", err)
		}
		c.Limits = l
	}
	return c, nil
}

// ParseLimits parses a limits value: space-separated name=value pairs whose
// names are those FormatLimits writes.
func ParseLimits(s string) (format.Limits, error) {
	var l format.Limits
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || n <= 0 {
			return l, fmt.Errorf("bad limit %q", f)
		}
		switch k {
		case "max_header_size":
			l.MaxHeaderSize = n
		case "max_tensors":
			l.MaxTensors = int(n)
		case "max_rank":
			l.MaxRank = int(n)
		case "max_name_length":
			l.MaxNameLength = int(n)
		case "max_metadata_size":
			l.MaxMetadataSize = n
		case "max_decompressed_size":
			l.MaxDecompressedSize = n
		case "max_signatures":
			l.MaxSignatures = int(n)
		default:
			return l, fmt.Errorf("unknown limit %q", k)
		}
	}
	return l, nil
}

// FormatLimits writes the non-zero fields of l as ParseLimits reads them.
func FormatLimits(l format.Limits) string {
	var f []string
	add := func(k string, v int64) {
		if v != 0 {
			f = append(f, k+"="+strconv.FormatInt(v, 10))
		}
	}
	add("max_header_size", l.MaxHeaderSize)
	add("max_tensors", int64(l.MaxTensors))
	add("max_rank", int64(l.MaxRank))
	add("max_name_length", int64(l.MaxNameLength))
	add("max_metadata_size", l.MaxMetadataSize)
	add("max_decompressed_size", l.MaxDecompressedSize)
	add("max_signatures", int64(l.MaxSignatures))
	return strings.Join(f, " ")
}
