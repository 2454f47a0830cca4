package jld2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/convert"
)

func readTestdata(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resum rewrites the lookup3 checksum at b[at:] over b[from:at].
func resum(b []byte, from, at int) {
	binary.LittleEndian.PutUint32(b[at:], lookup3(b[from:at]))
}

// checksumEnd finds where the checksum of the block at b[from:] lies: the
// first position whose 4 bytes are the checksum of the bytes before it.
func checksumEnd(b []byte, from int) int {
	for p := from + 10; p+4 <= len(b) && p < from+1<<16; p++ {
		if lookup3(b[from:p]) == binary.LittleEndian.Uint32(b[p:]) {
			return p
		}
	}
	return -1
}

// indexHostile derives broken files from the generated extensible array
// and version 2 B-tree files.
func indexHostile(t testing.TB) map[string]struct {
	data []byte
	want error
} {
	out := map[string]struct {
		data []byte
		want error
	}{}
	add := func(name string, data []byte, want error) {
		out[name] = struct {
			data []byte
			want error
		}{data, want}
	}
	ea := readTestdata(t, "chunked-extensible.h5")
	bt := readTestdata(t, "chunked-btree2.h5")
	// A flipped byte in every index block: checksums catch it.
	for _, c := range []struct {
		file []byte
		sig  string
	}{{ea, "EAHD"}, {ea, "EAIB"}, {ea, "EADB"}, {ea, "EASB"}, {bt, "BTHD"}, {bt, "BTIN"}, {bt, "BTLF"}} {
		i := bytes.Index(c.file, []byte(c.sig))
		if i < 0 {
			t.Fatalf("no %s in the generated file", c.sig)
		}
		b := bytes.Clone(c.file)
		b[i+14] ^= 0x40
		add("bad-checksum-"+c.sig, b, convert.ErrMalformed)
	}

	// Extensible array header naming an index block past the end.
	b := bytes.Clone(ea)
	i := bytes.Index(b, []byte("EAHD"))
	binary.LittleEndian.PutUint64(b[i+60:], 1<<40)
	resum(b, i, i+68)
	add("extensible-index-block-past-eof", b, convert.ErrMalformed)

	// Extensible array element size that disagrees with the filters.
	b = bytes.Clone(ea)
	i = bytes.Index(b, []byte("EAHD"))
	b[i+6] = 9
	resum(b, i, i+68)
	add("extensible-entry-size", b, convert.ErrMalformed)

	// B-tree deeper than the depth limit.
	b = bytes.Clone(bt)
	i = bytes.Index(b, []byte("BTHD"))
	binary.LittleEndian.PutUint16(b[i+12:], 200)
	resum(b, i, i+34)
	add("btree2-too-deep", b, convert.ErrLimit)

	// B-tree root that is its own header.
	b = bytes.Clone(bt)
	i = bytes.Index(b, []byte("BTHD"))
	binary.LittleEndian.PutUint64(b[i+16:], uint64(i-512))
	resum(b, i, i+34)
	add("btree2-root-is-header", b, convert.ErrMalformed)

	// B-tree root claiming more records than a node holds.
	b = bytes.Clone(bt)
	i = bytes.Index(b, []byte("BTHD"))
	binary.LittleEndian.PutUint16(b[i+24:], 60000)
	resum(b, i, i+34)
	add("btree2-root-overfull", b, convert.ErrMalformed)

	// An internal node whose first child is the node itself.
	b = bytes.Clone(bt)
	i = bytes.Index(b, []byte("BTIN"))
	end := checksumEnd(b, i)
	if end < 0 {
		t.Fatal("no internal node checksum")
	}
	// The child pointers follow the records; find the first one by its
	// address, which points at a BTIN or BTLF node.
	for p := i + 6; p+8 <= end; p++ {
		a := int(binary.LittleEndian.Uint64(b[p:])) + 512
		if a > 0 && a+4 <= len(b) && (string(b[a:a+4]) == "BTLF" || string(b[a:a+4]) == "BTIN") && (p-i-6)%24 == 0 {
			binary.LittleEndian.PutUint64(b[p:], uint64(i-512))
			break
		}
	}
	resum(b, i, end)
	add("btree2-node-cycle", b, convert.ErrMalformed)

	// A leaf record whose chunk lies outside the dataset.
	b = bytes.Clone(bt)
	i = bytes.LastIndex(b, []byte("BTLF"))
	end = checksumEnd(b, i)
	binary.LittleEndian.PutUint64(b[i+6+8:], 1<<20)
	resum(b, i, end)
	add("btree2-chunk-outside", b, convert.ErrMalformed)
	return out
}

func TestIndexHostile(t *testing.T) {
	for name, c := range indexHostile(t) {
		t.Run(name, func(t *testing.T) {
			_, err := Read(c.data)
			var e *Error
			if !errors.Is(err, c.want) || !errors.As(err, &e) {
				t.Fatalf("got %v, want %v as *Error", err, c.want)
			}
		})
	}
}
