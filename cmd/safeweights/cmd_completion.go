package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// The completion scripts are generated from the registered commands and
// their flag sets, so they cannot fall behind the commands.
func init() {
	c := &command{
		name:    "completion",
		args:    "bash|zsh|fish",
		summary: "print a shell completion script",
		help: `Completion prints a script that completes the commands and their flags
for bash, zsh or fish. Load it from the shell's start-up file.`,
		example: `  source <(safeweights completion bash)      # in ~/.bashrc
  safeweights completion zsh > "${fpath[1]}/_safeweights"
  safeweights completion fish > ~/.config/fish/completions/safeweights.fish`,
	}
	c.run = func(e *env, args []string) error {
		pos, done, err := parseOrHelp(e, c, newFlags(c), args, 1, 1)
		if done {
			return err
		}
		switch pos[0] {
		case "bash":
			writeBash(e.stdout)
		case "zsh":
			writeZsh(e.stdout)
		case "fish":
			writeFish(e.stdout)
		default:
			return usageErrorf("completion: unknown shell %q", pos[0]).withHint("use bash, zsh or fish")
		}
		return nil
	}
	register(c)
}

// flagNames returns c's flags as typed on the command line.
func flagNames(c *command) []string {
	var out []string
	newFlags(c).VisitAll(func(f *flag.Flag) { out = append(out, flagArg(f.Name)) })
	return append(out, "--help")
}

func commandNames() []string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return names
}

func writeBash(w io.Writer) {
	fmt.Fprintf(w, "# bash completion for safeweights\n_safeweights() {\n\tlocal cur=\"${COMP_WORDS[COMP_CWORD]}\"\n")
	fmt.Fprintf(w, "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n\t\tCOMPREPLY=($(compgen -W %q -- \"$cur\"))\n\t\treturn\n\tfi\n", strings.Join(commandNames(), " "))
	fmt.Fprintf(w, "\tcase \"${COMP_WORDS[1]}\" in\n")
	for _, c := range commands {
		fmt.Fprintf(w, "\t%s) if [[ \"$cur\" == -* ]]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); else COMPREPLY=($(compgen -f -- \"$cur\")); fi ;;\n",
			c.name, strings.Join(flagNames(c), " "))
	}
	fmt.Fprintf(w, "\tesac\n}\ncomplete -o filenames -F _safeweights safeweights\n")
}

func writeZsh(w io.Writer) {
	fmt.Fprintf(w, "#compdef safeweights\n_safeweights() {\n\tif (( CURRENT == 2 )); then\n\t\tlocal -a cmds\n\t\tcmds=(\n")
	for _, c := range commands {
		fmt.Fprintf(w, "\t\t\t%s\n", shellQuote(c.name+":"+c.summary))
	}
	fmt.Fprintf(w, "\t\t)\n\t\t_describe command cmds\n\t\treturn\n\tfi\n\tcase $words[2] in\n")
	for _, c := range commands {
		fmt.Fprintf(w, "\t%s) _arguments '*:file:_files'", c.name)
		for _, f := range flagNames(c) {
			fmt.Fprintf(w, " %s", shellQuote(f+"[]"))
		}
		fmt.Fprintf(w, " ;;\n")
	}
	fmt.Fprintf(w, "\tesac\n}\n_safeweights \"$@\"\n")
}

func writeFish(w io.Writer) {
	fmt.Fprintf(w, "# fish completion for safeweights\ncomplete -c safeweights -f\n")
	for _, c := range commands {
		fmt.Fprintf(w, "complete -c safeweights -n __fish_use_subcommand -a %s -d %s\n", c.name, shellQuote(c.summary))
		newFlags(c).VisitAll(func(f *flag.Flag) {
			_, usage := flag.UnquoteUsage(f)
			opt := "-l " + f.Name
			if len(f.Name) == 1 {
				opt = "-s " + f.Name
			}
			fmt.Fprintf(w, "complete -c safeweights -n '__fish_seen_subcommand_from %s' %s -d %s\n", c.name, opt, shellQuote(usage))
		})
		fmt.Fprintf(w, "complete -c safeweights -n '__fish_seen_subcommand_from %s' -F\n", c.name)
	}
}

// shellQuote quotes s in single quotes for sh, zsh and fish.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
