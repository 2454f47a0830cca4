package main

import (
	"flag"
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
	}
}
