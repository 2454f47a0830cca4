package bson

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/safeweights/safeweights/internal/fixtures"
)

// maxSeed bounds the fuzz seeds taken from the fixtures.
const maxSeed = 16 << 10

func FuzzRead(f *testing.F) {
	boundMinimization()
	f.Add(synthDense())
	f.Add(anonFile())
	f.Add(encode(D{{"model", dense(cuArray(), cuArray(), fn("NNlib", "relu"))}}))
	f.Add(encode(D{{"x", br(1)}, {"_backrefs", A{tup(br(2)), tup(br(1))}}}))
	f.Add(encode(D{{"nt", strct(dt(path("Core", "NamedTuple"), tup(sym("a")), dt(path("Core", "Tuple"))), f32arr(3, 1))}}))
	f.Add(deepList(100))
	f.Add(dag(6, 3, f32arr(1, 2)))
	f.Add(knetFile([]int64{2, 3}, f32s(6, 1)))
	agent := strct(dt(path("RL", "Agent")), br(2), strct(dt(path("Base", "IdDict")), A{br(1)}, A{f32arr(9, 3)}))
	f.Add(encode(D{{"learner", br(1)}, {"_backrefs", A{agent, f32arr(1, 2, 2)}}}))
	f.Add(append([]byte("7JL\x0c\x04\x00\x00\x00"), synthDense()...))
	// Fixtures go in with their arrays cut to one element (shrink): whole
	// checkpoints of megabytes make each minimization of a new input take
	// the fuzzer's whole minimization time, and fuzzing stalls.
	if dir := fixtureDirOrEmpty(); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*.bson"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				if s := shrink(b); s != nil && len(s) <= maxSeed {
					f.Add(s)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := options{Limits: Limits{MaxValues: 1 << 16, MaxAliases: 1 << 12}}
		w, err := newWalker(data, opts)
		if err != nil {
			t.Fatal(err)
		}
		m, err := w.run()
		if lim, _ := opts.Limits.withDefaults(); w.work > workBound(data, lim) {
			t.Fatalf("work %d for %d bytes", w.work, len(data))
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not a *bson.Error: %v", err, err)
			}
			return
		}
		names := map[string]bool{}
		for _, x := range m.Tensors {
			if !within(x.Data, data) {
				t.Fatalf("%s does not alias the input", x.Name)
			}
			n := int64(x.DType.Size())
			for _, d := range x.Shape {
				n *= d
			}
			if n != int64(len(x.Data)) {
				t.Fatalf("%s: %d bytes for shape %v of %v", x.Name, len(x.Data), x.Shape, x.DType)
			}
			for _, a := range append([]string{x.Name}, x.Aliases...) {
				if names[a] {
					t.Fatalf("name %s twice", a)
				}
				names[a] = true
			}
		}
	})
}

func fixtureDirOrEmpty() string { return fixtures.Dir("flux-bson") }

// boundMinimization caps the fuzzer's minimization of each new input at
// 10000 runs unless -fuzzminimizetime is given. Go's byte minimizer tries
// removing every subrange of the input, quadratic in its length: for the
// structured seeds here (kilobytes) the default of 60 seconds per new
// input is spent in full each time, and coverage-guided fuzzing, which
// runs only between minimizations, stalls. The flag is read when f.Fuzz
// starts the coordinator, so setting it here takes effect.
func boundMinimization() {
	fl := flag.Lookup("test.fuzzminimizetime")
	if fl == nil || fl.Value.String() != fl.DefValue {
		return
	}
	set := false
	flag.Visit(func(g *flag.Flag) { set = set || g.Name == fl.Name })
	if !set {
		_ = fl.Value.Set("10000x")
	}
}
