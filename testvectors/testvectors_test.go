package testvectors

import (
	"strings"
	"testing"

	"github.com/safeweights/safeweights/format"
)

func TestCore(t *testing.T) {
	cases, err := Core()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 60 {
		t.Fatalf("%d core vectors, want at least 60", len(cases))
	}
	rules := map[string]bool{}
	kinds := map[*format.Kind]bool{}
	valid := 0
	for _, c := range cases {
		if c.Kind == nil {
			valid++
			if c.Rule != "" || c.Full {
				t.Errorf("%s: a valid file with a rule or verify key", c.Name)
			}
		} else {
			if c.Rule == "" {
				t.Errorf("%s: no rule", c.Name)
			}
			rules[c.Rule] = true
			kinds[c.Kind] = true
		}
		if c.Comment == "" {
			t.Errorf("%s: no comment", c.Name)
		}
	}
	// Every rule of the spec that a file can break has a vector (R9 is not
	// assigned).
	for r := 1; r <= 28; r++ {
		if r == 9 {
			continue
		}
		if id := "R" + itoa(r); !rules[id] {
			t.Errorf("no vector for rule %s", id)
		}
	}
	for _, k := range format.Kinds() {
		switch k {
		case format.ErrNoSignature, format.ErrSignature, format.ErrIO, format.ErrNotFound, format.ErrNotRegular:
			continue // not a property of a file's bytes alone (not-regular: of its type)
		}
		if !kinds[k] {
			t.Errorf("no vector of kind %s", k.Name())
		}
	}
	if valid < 20 {
		t.Errorf("%d valid vectors", valid)
	}
}

func TestSignTolerant(t *testing.T) {
	if _, err := Sign(); err != nil {
		t.Fatal(err)
	}
}

func TestParse(t *testing.T) {
	good := "expect: limit\nrule: R14\ncomment: c: with colon\nlimits: max_tensors=4 max_rank=2\nkey: k\n\n\x89SWT\n\nrest"
	c, err := Parse("x", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != format.ErrLimit || c.Rule != "R14" || c.Comment != "c: with colon" || c.Limits.MaxTensors != 4 ||
		c.Limits.MaxRank != 2 || c.Keys["key"] != "k" || string(c.Data) != "\x89SWT\n\nrest" {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []string{
		"",
		"expect: ok\n",                  // no empty line
		"comment: x\nexpect: ok\n\n",    // expect not first
		"expect: nonsense\n\n",          // unknown kind
		"expect: ok\nexpect: ok\n\n",    // twice
		"expect: ok\nverify: maybe\n\n", // unknown verify
		"expect: ok\nlimits: max_tensors=-1\n\n",
		"expect: ok\nlimits: max_bogus=1\n\n",
		"expect: ok\nno separator\n\n",
	} {
		if _, err := Parse("x", []byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if l, _ := ParseLimits(FormatLimits(format.DefaultLimits())); l != format.DefaultLimits() {
		t.Errorf("limits do not round-trip: %+v", l)
	}
	if !strings.HasPrefix(Suffix, ".") {
		t.Fatal(Suffix)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
