package npy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hostileNames are tensor names chosen to escape a directory, name a
// device, hide a file, or collide.
var hostileNames = []string{
	"", ".", "..", "...", "../../etc/passwd", "..\\..\\windows\\system32", "/etc/passwd",
	"\\\\server\\share\\x", "C:\\Windows\\x", "C:", "c:x", "a/b", "a\\b", "a\x00b",
	"CON", "con", "Con.weight", "NUL.npy", "nul", "COM1", "com9.bias", "LPT1", "lpt0",
	"AUX", "PRN.x.y", "CLOCK$", "CONIN$", "conout$", "COM¹", ".hidden", ".bashrc",
	"trailing.", "trailing ", "tab\there", "new\nline", "\u202eevil", "ﬁ/ligature", "／fullwidth",
	"layers.0.weight", "layers/0/weight", "layers\\0\\weight", "Layers.0.Weight",
	strings.Repeat("a", 300), strings.Repeat("a", 300) + "b", strings.Repeat("../", 100),
	strings.Repeat("é", 200), "a:b", "a*b?c\"d<e>f|g", "~", "~root", "-rf", "$HOME", "`x`",
	"σ", "μ", "weight", "WEIGHT",
}

func checkSafe(t *testing.T, name, s string) {
	t.Helper()
	switch {
	case s == "" || len(s) > MaxFileNameLength:
		t.Fatalf("%q -> %q: length %d", name, s, len(s))
	case s == "." || s == "..":
		t.Fatalf("%q -> %q", name, s)
	case strings.HasPrefix(s, ".") || strings.HasSuffix(s, "."):
		t.Fatalf("%q -> %q: leading or trailing dot", name, s)
	case filepath.IsAbs(s) || !filepath.IsLocal(s) || filepath.Base(s) != s:
		t.Fatalf("%q -> %q: not a plain local name", name, s)
	case strings.ContainsAny(s, "/\\:\x00*?\"<>| \t\n"):
		t.Fatalf("%q -> %q: forbidden character", name, s)
	}
	for _, c := range []byte(s) {
		if c >= 0x80 || c < 0x20 {
			t.Fatalf("%q -> %q: byte %#x", name, s, c)
		}
	}
	stem, _, _ := strings.Cut(s, ".")
	if isReserved(stem) {
		t.Fatalf("%q -> %q: device name", name, s)
	}
}

func TestSafeFileName(t *testing.T) {
	for _, n := range hostileNames {
		checkSafe(t, n, SafeFileName(n))
	}
	// Ordinary names are kept.
	for _, n := range []string{"layers.0.weight", "model_state.layers.1.bias", "w-1+2"} {
		if got := SafeFileName(n); got != n {
			t.Errorf("%q -> %q", n, got)
		}
	}
	// Spot checks of the rules.
	for n, want := range map[string]string{
		"..": "__", "../x": "___x", "CON": "_CON", "con.weight": "_con.weight", "a/b": "a_b", "": "_",
		".hidden": "_hidden", "x.": "x_",
	} {
		if got := SafeFileName(n); got != want {
			t.Errorf("%q -> %q, want %q", n, got, want)
		}
	}
	// Long names that differ only past the cut stay distinct.
	a, b := SafeFileName(strings.Repeat("a", 300)), SafeFileName(strings.Repeat("a", 300)+"b")
	if a == b {
		t.Error("long names collide")
	}
}

func TestFileNames(t *testing.T) {
	got := FileNames(hostileNames, ".npy")
	seen := map[string]string{}
	for i, s := range got {
		if !strings.HasSuffix(s, ".npy") {
			t.Fatalf("%q -> %q", hostileNames[i], s)
		}
		checkSafe(t, hostileNames[i], strings.TrimSuffix(s, ".npy"))
		k := strings.ToLower(s)
		if prev, dup := seen[k]; dup {
			t.Fatalf("%q and %q both -> %q", prev, hostileNames[i], s)
		}
		seen[k] = hostileNames[i]
	}
	// The result does not depend on the order of the names.
	rev := make([]string, len(hostileNames))
	for i, n := range hostileNames {
		rev[len(rev)-1-i] = n
	}
	got2 := FileNames(rev, ".npy")
	for i := range hostileNames {
		if got[i] != got2[len(got2)-1-i] {
			t.Errorf("%q: %q forward, %q reversed", hostileNames[i], got[i], got2[len(got2)-1-i])
		}
	}
	// A name equal to another's suffixed form still gets its own file.
	first := FileNames([]string{"a/b", "a\\b"}, ".npy")
	tricky := []string{"a/b", "a\\b", strings.TrimSuffix(first[0], ".npy")}
	out := FileNames(tricky, ".npy")
	if out[0] == out[2] || out[1] == out[2] || out[0] == out[1] {
		t.Errorf("collision: %q", out)
	}
}

func FuzzSafeFileName(f *testing.F) {
	for _, n := range hostileNames {
		f.Add(n, "x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		checkSafe(t, a, SafeFileName(a))
		if a == b {
			return
		}
		var in []string
		for _, n := range []string{a, b, a + "/", strings.ToUpper(b)} {
			if !slices.Contains(in, n) {
				in = append(in, n)
			}
		}
		seen := map[string]bool{}
		for _, s := range FileNames(in, ".npy") {
			k := strings.ToLower(s)
			if seen[k] {
				t.Fatalf("collision for %q", in)
			}
			seen[k] = true
			checkSafe(t, "", strings.TrimSuffix(s, ".npy"))
		}
	})
}
