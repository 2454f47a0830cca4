// Command safeweights converts, inspects, verifies, signs and loads
// safeweights (.swt) model files. See docs/CLI.md.
//
// This package only parses command lines and prints: the work is done by
// the public packages (decode, sign, convert/auto, convert/npy, gpu).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/auto"
	"github.com/safeweights/safeweights/format"
	"github.com/safeweights/safeweights/gpu"
	"github.com/safeweights/safeweights/sign"
	"github.com/safeweights/safeweights/source"
	"github.com/safeweights/safeweights/source/httpsrc"
	"github.com/safeweights/safeweights/source/remote"
	"github.com/safeweights/safeweights/source/s3src"
)

// Exit codes (docs/CLI.md, "Exit codes").
const (
	exitOK      = 0
	exitInvalid = 1 // a check failed: invalid, corrupt, unsupported, untrusted file
	exitUsage   = 2 // bad command line
	exitError   = 3 // anything else: I/O, permissions, GPU
)

// env is what a command may touch besides the file system.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// tty: stderr is a terminal, so progress bars may be drawn.
	tty bool
}

type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	help    string // description, flags are appended, then examples
	example string
	flags   func(fs *flag.FlagSet) // declares the flags, for --help
	run     func(e *env, args []string) error
}

// commands is filled in by the cmd_*.go files' init functions, in the order
// the help lists them.
var commands []*command

func register(c *command) { commands = append(commands, c) }

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func main() {
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, tty: isTerminal(os.Stderr)}
	os.Exit(run(e, os.Args[1:]))
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

// run runs the command line args and returns the exit code.
func run(e *env, args []string) int {
	sortCommands()
	if len(args) == 0 {
		printUsage(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	case "-v", "-version", "--version":
		name = "version"
	}
	c := lookup(name)
	if c == nil {
		return report(e, usageErrorf("unknown command %q", name).withHint("run 'safeweights help' for the list of commands"))
	}
	return report(e, c.run(e, args[1:]))
}

var order = []string{"demo", "convert", "inspect", "verify", "diff", "extract", "keygen", "sign", "load", "completion", "version", "help"}

func sortCommands() {
	rank := map[string]int{}
	for i, n := range order {
		rank[n] = i
	}
	sort.SliceStable(commands, func(i, j int) bool { return rank[commands[i].name] < rank[commands[j].name] })
}

// cliError carries an exit code and hints.
type cliError struct {
	code  int
	err   error
	hints []string
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

func (e *cliError) withHint(h string) *cliError { e.hints = append(e.hints, h); return e }

func usageErrorf(f string, a ...any) *cliError {
	return &cliError{code: exitUsage, err: fmt.Errorf(f, a...)}
}

// failf is a check that failed (exit code 1) without an underlying error.
func failf(f string, a ...any) *cliError {
	return &cliError{code: exitInvalid, err: fmt.Errorf(f, a...)}
}

// errSilent reports a failure that the command has already printed (as in
// --json output); only the exit code is left.
type errSilent int

func (e errSilent) Error() string { return "silent" }

// report prints err under the output policy and returns the exit code.
func report(e *env, err error) int {
	if err == nil {
		return exitOK
	}
	var s errSilent
	if errors.As(err, &s) {
		return int(s)
	}
	code, hints := classify(err)
	msg := err.Error()
	fmt.Fprintf(e.stderr, "safeweights: %s\n", msg)
	for _, h := range hints {
		fmt.Fprintf(e.stderr, "hint: %s\n", h)
	}
	return code
}

// classify maps an error to its exit code and the hints that help with it.
func classify(err error) (int, []string) {
	var ce *cliError
	if errors.As(err, &ce) && ce.code == exitUsage {
		return ce.code, ce.hints
	}
	var hints []string
	if ce != nil {
		hints = ce.hints
	}
	hint := func(h string) { hints = append(hints, h) }
	code := exitError
	var st *source.StatusError
	switch {
	case errors.Is(err, remote.ErrScheme):
		code = exitUsage
		hint("FILE may be a path, an http:// or https:// URL, or s3://BUCKET/KEY")
	case errors.Is(err, source.ErrChanged):
		code = exitError
		hint("the file changed on the server while it was read; run the command again")
	case errors.Is(err, httpsrc.ErrNoRanges):
		code = exitError
		hint("the server does not answer range requests; download the file and pass its path")
	case errors.Is(err, s3src.ErrNoRegion):
		code = exitUsage
		hint("set AWS_REGION to the bucket's region, or AWS_ENDPOINT_URL to an S3-compatible store's address")
	case errors.As(err, &st) && (st.Code == 401 || st.Code == 403) && fromS3(err):
		code = exitError
		hint("the object store refused the request; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and AWS_ENDPOINT_URL for a store that is not AWS")
	case errors.As(err, &st) && (st.Code == 401 || st.Code == 403):
		code = exitError
		hint("the server refused the request; set " + tokenEnv + " to a token it accepts (sent over https only)")
	case errors.Is(err, format.ErrIO):
		code = exitError
	case errors.Is(err, format.ErrNotRegular):
		code = exitError
		hint("safeweights reads regular files only, never a FIFO, a device or a directory")
	case errors.Is(err, format.ErrNotFound):
		code = exitUsage
		hint("run 'safeweights inspect FILE' to list the tensor names")
	case errors.Is(err, format.ErrNoSignature):
		code = exitInvalid
		hint("the file is not signed by a key in the trusted set; check --trusted, or ask the producer for the public key")
	case errors.Is(err, format.ErrSignature):
		code = exitInvalid
		hint("a trusted key's signature does not verify: the file or its signature was changed after signing")
	case errors.Is(err, format.ErrDigest), errors.Is(err, format.ErrPadding):
		code = exitInvalid
		hint("the file was changed or damaged after it was written; download or copy it again")
	case errors.Is(err, format.ErrMagic):
		code = exitInvalid
		hint("this command reads .swt files; convert others with 'safeweights convert IN OUT.swt'")
	case format.KindOf(err) != nil:
		code = exitInvalid
	case errors.Is(err, convert.ErrJuliaSerialization):
		code = exitInvalid
		hint("reading a Julia Serialization stream can run code, so it is never read; in Julia, re-save the weights: using JLD2; jldsave(\"model.jld2\"; model_state = Flux.state(model))")
	case errors.Is(err, convert.ErrTextMode):
		code = exitInvalid
		hint("the file was changed by a text-mode transfer (line endings or NUL bytes rewritten); copy it again in binary mode (git: mark it binary in .gitattributes; ftp: binary)")
	case errors.Is(err, auto.ErrUnknownFormat):
		code = exitInvalid
		hint("safeweights reads .swt, safetensors, BSON.jl and JLD2 files, recognised by their content")
	case errors.Is(err, convert.ErrHasCode):
		code = exitInvalid
		hint("the source contains serialized code; without --strict it is dropped and reported, never run")
	case errors.Is(err, convert.ErrNoWeights):
		code = exitInvalid
		hint("in Julia: model = cpu(model); BSON.@save \"model.bson\" model")
	case errors.Is(err, convert.ErrMalformed), errors.Is(err, convert.ErrLimit),
		errors.Is(err, convert.ErrUnsupported), errors.Is(err, convert.ErrRefused),
		errors.Is(err, convert.ErrNameClash), errors.Is(err, auto.ErrSameFormat):
		code = exitInvalid
	case errors.Is(err, sign.ErrPassphrase):
		code = exitInvalid
	case errors.Is(err, sign.ErrKey):
		code = exitInvalid
		hint("keys are Ed25519 PEM files, as written by 'safeweights keygen' or 'openssl genpkey -algorithm ed25519'")
	case errors.Is(err, gpu.ErrNoDriver):
		hint("load needs an NVIDIA GPU and its driver (libcuda.so.1)")
	case errors.Is(err, os.ErrNotExist):
		code = exitError
	case errors.Is(err, context.Canceled):
		hint("interrupted: the output was removed, nothing is left half-written")
	}
	if ce != nil && ce.code != 0 && code == exitError {
		code = ce.code
	}
	return code, hints
}

// parse parses args with fs, allowing flags after positional arguments, and
// checks the number of positional arguments (max < 0: no upper bound).
func parse(c *command, fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		if err != nil {
			return nil, usageErrorf("%s: %v", c.name, err).withHint(fmt.Sprintf("run 'safeweights %s --help'", c.name))
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return nil, usageErrorf("%s: wrong number of arguments", c.name).
			withHint(fmt.Sprintf("usage: safeweights %s %s", c.name, c.args))
	}
	return pos, nil
}

// errHelp asks the command to print its help to stdout and succeed.
var errHelp = errors.New("help requested")

// newFlags returns the command's flag set and a function that runs the
// command body unless --help was asked for.
func newFlags(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	if c.flags != nil {
		c.flags(fs)
	}
	return fs
}

// parseOrHelp wraps parse: on --help it prints the command's help and
// returns done.
func parseOrHelp(e *env, c *command, fs *flag.FlagSet, args []string, min, max int) (pos []string, done bool, err error) {
	pos, err = parse(c, fs, args, min, max)
	if errors.Is(err, errHelp) {
		printCommandHelp(e.stdout, c)
		return nil, true, nil
	}
	return pos, err != nil, err
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "safeweights: safe, signed, zero-copy model weights\n\nUsage:\n  safeweights COMMAND [ARGS] [FLAGS]\n\nCommands:\n")
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'safeweights COMMAND --help' for a command's flags and examples.
A FILE argument of "-" means standard input where a command says so; a .swt
FILE that a command reads may be an http:// or https:// URL or an
s3://BUCKET/KEY object (the client from the standard AWS environment).

Exit codes:
  0  success
  1  a check failed: the file is invalid, corrupt, unsupported, not signed
     by a trusted key, or (diff --exit-code) the files differ
  2  usage error: bad flags or arguments, unknown tensor name
  3  any other error: I/O, permissions, missing files, GPU
`)
}

// aliases maps a flag's long name to its one-letter name, for the flags
// that every command declares under both: an output file is -o, --output.
// Help shows the pair on one line, as docs/CLI.md does.
var aliases = map[string]string{"output": "o"}

// outputFlag declares a command's output-file flag as -o and --output,
// both setting p. Given twice, with either name, it is a usage error:
// which one wins would otherwise depend on their order.
func outputFlag(fs *flag.FlagSet, p *string, usage string) {
	*p = "" // as fs.StringVar does: a command run twice in one process starts afresh
	v := &onceValue{p: p}
	fs.Var(v, "o", usage)
	fs.Var(v, "output", usage)
}

// onceValue is a string flag that may be given once.
type onceValue struct {
	p   *string
	set bool
}

func (v *onceValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return *v.p
}

func (v *onceValue) Set(s string) error {
	if v.set {
		return errors.New("given more than once")
	}
	v.set = true
	*v.p = s
	return nil
}

// flagArg is how help and completion write a flag: -o for one letter,
// --name otherwise.
func flagArg(name string) string {
	if len(name) == 1 {
		return "-" + name // -o, as the usage lines and docs/CLI.md write it
	}
	return "--" + name
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: safeweights %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.help))
	fs := newFlags(c)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		short, isAlias := aliases[f.Name]
		if isAlias && fs.Lookup(short) != nil {
			return // shown with its one-letter name
		}
		if first {
			fmt.Fprint(w, "\nFlags:\n")
			first = false
		}
		name, usage := flag.UnquoteUsage(f)
		arg := flagArg(f.Name)
		for long, s := range aliases {
			if s == f.Name && fs.Lookup(long) != nil {
				arg += ", " + flagArg(long)
			}
		}
		if name != "" {
			arg += " " + strings.ToUpper(name) // FILE, as docs/CLI.md writes it
		}
		fmt.Fprintf(w, "  %-24s %s", arg, usage)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
	if c.example != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", strings.TrimRight(c.example, "\n"))
	}
}

func init() {
	register(&command{
		name:    "help",
		args:    "[COMMAND]",
		summary: "show help for safeweights or one command",
		help:    "Help prints the list of commands and the exit codes, or the help of one command.",
		example: "  safeweights help\n  safeweights help convert",
		run: func(e *env, args []string) error {
			c := lookup("help")
			fs := newFlags(c)
			pos, done, err := parseOrHelp(e, c, fs, args, 0, 1)
			if done {
				return err
			}
			if len(pos) == 0 {
				printUsage(e.stdout)
				return nil
			}
			sc := lookup(pos[0])
			if sc == nil {
				return usageErrorf("unknown command %q", pos[0]).withHint("run 'safeweights help' for the list of commands")
			}
			printCommandHelp(e.stdout, sc)
			return nil
		},
	})
}

// fromS3 reports whether err is a failed read of an s3:// object.
func fromS3(err error) bool {
	var se *source.Error
	return errors.As(err, &se) && strings.HasPrefix(se.Name, "s3://")
}
