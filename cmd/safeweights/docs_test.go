package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/CLI.md's heading of each command lists exactly the flags the
// command declares, so the document and --help cannot drift apart.
func TestDocsListEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../docs/CLI.md")
	if err != nil {
		t.Fatal(err)
	}
	sortCommands()
	headings := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "### ") {
			continue
		}
		// "### extract FILE ... | extract FILE --all DIR", "### version, help [COMMAND]"
		for _, part := range strings.Split(strings.TrimPrefix(line, "### "), " | ") {
			for _, name := range strings.Split(strings.Fields(part)[0], ",") {
				headings[name] += " " + part
			}
		}
	}
	flagRE := regexp.MustCompile(`(?:^|[\s\[|])--?([a-z][a-z0-9-]*)`)
	for _, c := range commands {
		if c.name == "help" || c.name == "version" {
			continue
		}
		h, ok := headings[c.name]
		if !ok {
			t.Errorf("docs/CLI.md has no heading for %s", c.name)
			continue
		}
		var documented []string
		for _, m := range flagRE.FindAllStringSubmatch(h, -1) {
			if !slices.Contains(documented, m[1]) {
				documented = append(documented, m[1])
			}
		}
		var declared []string
		newFlags(c).VisitAll(func(f *flag.Flag) { declared = append(declared, f.Name) })
		slices.Sort(documented)
		slices.Sort(declared)
		if !slices.Equal(documented, declared) {
			t.Errorf("%s: docs/CLI.md lists %v, the command declares %v", c.name, documented, declared)
		}
		// The usage line lists every flag too.
		for _, f := range declared {
			if !regexp.MustCompile(`(^|[\s\[|])--?` + regexp.QuoteMeta(f) + `\b`).MatchString(c.args) {
				t.Errorf("%s: usage %q lacks --%s", c.name, c.args, f)
			}
		}
		// A flag with an alias (-o, --output) is declared under both
		// names, and the heading and the usage line write the pair
		// together, as help does.
		for long, short := range aliases {
			hasLong, hasShort := slices.Contains(declared, long), slices.Contains(declared, short)
			if hasLong != hasShort {
				t.Errorf("%s: declares only one of -%s and --%s", c.name, short, long)
			}
			if !hasLong {
				continue
			}
			pair := "-" + short + ", --" + long
			if !strings.Contains(h, pair) {
				t.Errorf("%s: docs/CLI.md heading lacks %q", c.name, pair)
			}
			if !strings.Contains(c.args, pair) {
				t.Errorf("%s: usage %q lacks %q", c.name, c.args, pair)
			}
		}
	}
}

// Help shows an aliased flag once, with both names, and both names parse
// to the same setting, which may be given once only.
func TestOutputFlagAlias(t *testing.T) {
	var help bytes.Buffer
	printCommandHelp(&help, lookup("extract"))
	_, flags, _ := strings.Cut(help.String(), "\nFlags:\n")
	if n := strings.Count(flags, "--output"); n != 1 || !strings.Contains(flags, "  -o, --output FILE ") {
		t.Errorf("extract help lists --output %d times:\n%s", n, flags)
	}
	for _, args := range [][]string{{"-o", "x.npy"}, {"--output", "x.npy"}, {"--output=x.npy"}, {"-output", "x.npy"}} {
		var out string
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		outputFlag(fs, &out, "`file`")
		if err := fs.Parse(args); err != nil || out != "x.npy" {
			t.Errorf("%v: %q, %v", args, out, err)
		}
	}
	var out string
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	outputFlag(fs, &out, "`file`")
	if err := fs.Parse([]string{"-o", "a.npy", "--output", "b.npy"}); err == nil {
		t.Errorf("-o and --output both accepted, giving %q", out)
	}
}
