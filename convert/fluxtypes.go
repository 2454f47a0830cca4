package convert

import "strings"

// This file is the table of known Flux (and common Julia) types that
// spec/CONVERSION.md rule N3 refers to. Formats that store a struct's fields
// by position only (BSON.jl) name them from this table, keyed by the type's
// name and its number of stored fields, because layouts changed across Flux
// versions. Where two versions store the same number of fields under
// different names, the table gives the current Flux names, unless the number
// of type parameters tells the versions apart (recurrent cells).

// layout is one known field layout of a type.
type layout struct {
	fields []string
	// nparams, when not zero, restricts the layout to types with that many
	// type parameters; the entry with nparams zero is the default.
	nparams int
}

func fl(names ...string) layout { return layout{fields: names} }

func flp(nparams int, names ...string) layout { return layout{fields: names, nparams: nparams} }

var optimiserTypes = map[string]bool{}

// knownTypes maps a type name (module path without a leading "Main.") to its
// known layouts.
var knownTypes = map[string][]layout{
	// Containers.
	"Flux.Chain":            {fl("layers")},
	"Flux.Parallel":         {fl("connection", "layers")},
	"Flux.PairwiseFusion":   {fl("connection", "layers")},
	"Flux.SkipConnection":   {fl("layers", "connection")},
	"Flux.Maxout":           {fl("layers")},
	"Flux.Params":           {fl("order", "params")},
	"Zygote.Params":         {fl("order", "params")},
	"Zygote.Buffer":         {fl("data", "freeze")},
	"Zygote.IdSet":          {fl("dict")},
	"Flux.Zeros":            {fl("dims")},
	"Flux.Dense":            {fl("weight", "bias", "σ")},
	"Flux.Bilinear":         {fl("weight", "bias", "σ")},
	"Flux.Diagonal":         {fl("α", "β"), fl("weight", "bias", "σ")},
	"Flux.Scale":            {fl("scale", "bias", "σ")},
	"Flux.Embedding":        {fl("weight")},
	"Flux.EmbeddingBag":     {fl("weight", "reduction")},
	"Flux.Conv":             {fl("σ", "weight", "bias", "stride", "pad", "dilation"), fl("σ", "weight", "bias", "stride", "pad", "dilation", "groups")},
	"Flux.ConvTranspose":    {fl("σ", "weight", "bias", "stride", "pad", "dilation"), fl("σ", "weight", "bias", "stride", "pad", "dilation", "groups"), fl("σ", "weight", "bias", "stride", "pad", "outpad", "dilation", "groups")},
	"Flux.DepthwiseConv":    {fl("σ", "weight", "bias", "stride", "pad", "dilation")},
	"Flux.CrossCor":         {fl("σ", "weight", "bias", "stride", "pad", "dilation")},
	"Flux.MaxPool":          {fl("k", "pad", "stride")},
	"Flux.MeanPool":         {fl("k", "pad", "stride")},
	"Flux.AdaptiveMaxPool":  {fl("out")},
	"Flux.AdaptiveMeanPool": {fl("out")},
	"Flux.GlobalMaxPool":    {fl()},
	"Flux.GlobalMeanPool":   {fl()},
	"Flux.Upsample":         {fl("scale", "size")},
	"Flux.PixelShuffle":     {fl("r")},
	"Flux.Dropout":          {fl("p", "active"), fl("p", "dims", "active"), fl("p", "dims", "active", "rng")},
	"Flux.AlphaDropout":     {fl("p", "active"), fl("p", "active", "rng")},
	"Flux.BatchNorm": {
		fl("λ", "β", "γ", "μ", "σ²", "ϵ", "momentum", "active"),
		fl("λ", "β", "γ", "μ", "σ²", "ϵ", "momentum", "affine", "track_stats", "active", "chs"),
	},
	"Flux.InstanceNorm": {
		fl("λ", "β", "γ", "μ", "σ²", "ϵ", "momentum", "active"),
		fl("λ", "β", "γ", "μ", "σ²", "ϵ", "momentum", "affine", "track_stats", "active", "chs"),
	},
	"Flux.GroupNorm": {
		fl("G", "λ", "β", "γ", "μ", "σ²", "ϵ", "momentum", "active"),
		fl("G", "λ", "β", "γ", "μ", "σ²", "ϵ", "momentum", "affine", "track_stats", "active", "chs"),
	},
	"Flux.LayerNorm": {fl("diag"), fl("λ", "diag", "ϵ", "size", "affine")},
	"Flux.MultiHeadAttention": {
		fl("nheads", "q_proj", "k_proj", "v_proj", "attn_drop", "out_proj"),
	},

	// Recurrent layers. Flux up to 0.11 kept the hidden state in mutable
	// cells (h, c); 0.12 to 0.14 store state0 and have one more type
	// parameter; 0.15 stores neither.
	"Flux.RNNCell": {
		flp(3, "σ", "Wi", "Wh", "b", "h"),
		flp(4, "σ", "Wi", "Wh", "b", "state0"),
		fl("σ", "Wi", "Wh", "b", "state0"),
		fl("σ", "Wi", "Wh", "bias"),
	},
	"Flux.LSTMCell": {
		fl("Wi", "Wh", "b", "h", "c"),
		fl("Wi", "Wh", "b", "state0"),
		fl("Wi", "Wh", "bias"),
	},
	"Flux.GRUCell": {
		flp(2, "Wi", "Wh", "b", "h"),
		flp(3, "Wi", "Wh", "b", "state0"),
		fl("Wi", "Wh", "b", "state0"),
		fl("Wi", "Wh", "bias"),
	},
	"Flux.GRUv3Cell": {fl("Wi", "Wh", "b", "Wh_h̃", "state0"), fl("Wi", "Wh", "bias", "Wh_h̃")},
	"Flux.Recur":     {fl("cell", "state"), fl("cell", "init", "state")},
	"Flux.RNN":       {fl("cell")},
	"Flux.LSTM":      {fl("cell")},
	"Flux.GRU":       {fl("cell")},
	"Flux.GRUv3":     {fl("cell")},

	// Optimisers (their state is optimiser state, rule N9).
	"Flux.Optimise.Descent":     {fl("eta")},
	"Flux.Optimise.Momentum":    {fl("eta", "rho", "velocity")},
	"Flux.Optimise.Nesterov":    {fl("eta", "rho", "velocity")},
	"Flux.Optimise.RMSProp":     {fl("eta", "rho", "acc"), fl("eta", "rho", "epsilon", "acc")},
	"Flux.Optimise.ADAM":        {fl("eta", "beta", "state"), fl("eta", "beta", "epsilon", "state")},
	"Flux.Optimise.Adam":        {fl("eta", "beta", "state"), fl("eta", "beta", "epsilon", "state")},
	"Flux.Optimise.RADAM":       {fl("eta", "beta", "state"), fl("eta", "beta", "epsilon", "state")},
	"Flux.Optimise.AdaMax":      {fl("eta", "beta", "state"), fl("eta", "beta", "epsilon", "state")},
	"Flux.Optimise.ADAGrad":     {fl("eta", "acc"), fl("eta", "epsilon", "acc")},
	"Flux.Optimise.ADADelta":    {fl("rho", "state"), fl("rho", "epsilon", "state")},
	"Flux.Optimise.AMSGrad":     {fl("eta", "beta", "state"), fl("eta", "beta", "epsilon", "state")},
	"Flux.Optimise.NADAM":       {fl("eta", "beta", "state"), fl("eta", "beta", "epsilon", "state")},
	"Flux.Optimise.AdaBelief":   {fl("eta", "beta", "state"), fl("eta", "beta", "epsilon", "state")},
	"Flux.Optimise.Optimiser":   {fl("os")},
	"Flux.Optimise.WeightDecay": {fl("wd")},
	"Flux.Optimise.ExpDecay":    {fl("eta", "decay", "step", "clip", "start", "current")},
	"Flux.Optimise.ClipValue":   {fl("thresh")},
	"Flux.Optimise.ClipNorm":    {fl("thresh")},
	"Knet.Train20.Rmsprop":      {fl("lr", "rho", "eps", "gclip", "G")},
	"Knet.Rmsprop":              {fl("lr", "rho", "eps", "gclip", "G")},
	"Knet.Train20.Adam":         {fl("lr", "beta1", "beta2", "eps", "t", "gclip", "fstm", "scndm")},
	"Knet.Adam":                 {fl("lr", "beta1", "beta2", "eps", "t", "gclip", "fstm", "scndm")},
	"Knet.Train20.Adagrad":      {fl("lr", "eps", "gclip", "G")},
	"Knet.Train20.Sgd":          {fl("lr", "gclip")},
	"Knet.Train20.Momentum":     {fl("lr", "gamma", "gclip", "velocity")},
	"Optimisers.Leaf":           {fl("rule", "state"), fl("rule", "state", "frozen")},
	"Optimisers.Adam":           {fl("eta", "beta", "epsilon")},
	"Optimisers.AdamW":          {fl("eta", "beta", "lambda", "epsilon")},
	"Optimisers.Descent":        {fl("eta")},
	"Optimisers.Momentum":       {fl("eta", "rho")},

	// Parameter wrappers of other packages (see Wrapper).
	"AutoGrad.Param":               {fl("value", "opt")},
	"InvertibleNetworks.Parameter": {fl("data", "grad")},

	// Knet's arrays: the data as bytes beside the dimensions (see
	// BufferArray), or copied to the CPU by Knet's save functions.
	"Knet.JLD2KnetArray":            {fl("array")},
	"Knet.KnetArrays.JLD2KnetArray": {fl("array")},
	"Knet.FileIO_gpu.KnetJLD":       {fl("a")},
	"Knet.FileIO_gpu.ParamJLD":      {fl("value", "opt")},
	"Knet.KnetArrays.KnetArray":     {fl("ptr", "dims")},
	"Knet.KnetArray":                {fl("ptr", "dims")},
	"Knet.KnetArrays.KnetPtr":       {fl("ptr", "len", "dev", "parent")},
	"Knet.KnetPtr":                  {fl("ptr", "len", "dev", "parent")},

	// Tracker.jl (Flux up to 0.9 and the separate package).
	"Tracker.TrackedArray":      {fl("tracker", "data", "grad")},
	"Tracker.TrackedReal":       {fl("data", "tracker")},
	"Tracker.Tracked":           {fl("ref", "f", "isleaf", "grad")},
	"Tracker.Call":              {fl("func", "args")},
	"Flux.Tracker.TrackedArray": {fl("tracker", "data", "grad")},
	"Flux.Tracker.TrackedReal":  {fl("data", "tracker")},
	"Flux.Tracker.Tracked":      {fl("ref", "f", "isleaf", "grad")},
	"Flux.Tracker.Call":         {fl("func", "args")},

	// Julia Base and standard libraries.
	"Base.Complex":                 {fl("re", "im")},
	"Base.RefValue":                {fl("x")},
	"Base.UnitRange":               {fl("start", "stop")},
	"Base.OneTo":                   {fl("stop")},
	"Base.StepRange":               {fl("start", "step", "stop")},
	"Base.Pair":                    {fl("first", "second")},
	"Base.Colon":                   {fl()},
	"Base.IdDict":                  {fl("keys", "vals"), fl("ht", "count", "ndel")},
	"Base.Dict":                    {fl("keys", "vals")},
	"Base.Set":                     {fl("dict")},
	"Base.Threads.Atomic":          {fl("value")},
	"Core.Box":                     {fl("contents")},
	"SparseArrays.SparseMatrixCSC": {fl("m", "n", "colptr", "rowval", "nzval")},
	"SparseArrays.SparseVector":    {fl("n", "nzind", "nzval")},
	"LinearAlgebra.Diagonal":       {fl("diag")},
	"LinearAlgebra.Adjoint":        {fl("parent")},
	"LinearAlgebra.Transpose":      {fl("parent")},
	"Random.MersenneTwister":       {fl("seed", "state", "vals", "ints", "idxF", "idxI"), fl("seed", "state", "vals", "ints", "idxF", "idxI", "adv", "adv_jump", "adv_vals", "adv_ints")},
	"CUDA.CuArray":                 {fl("storage", "maxsize", "offset", "dims")},
}

func init() {
	for name := range knownTypes {
		if strings.HasPrefix(name, "Flux.Optimise.") || strings.HasPrefix(name, "Optimisers.") {
			optimiserTypes[name] = true
		}
	}
}

// TypeName normalises a Julia type path: it drops a leading "Main." (BSON.jl
// writes the path from Main for types of Base and Core) and any parameters,
// and collapses a module name repeated in a row, which JLD2 files written
// by Julia 1.0 and 1.1 hold ("Tracker.Tracker.TrackedArray",
// "Core.Core.Bool", "Flux.Optimise.Optimise.ADAM"): no module of the types
// the converters know is named like the module it is in.
func TypeName(path string) string {
	if i := strings.IndexByte(path, '{'); i >= 0 {
		path = path[:i]
	}
	for strings.HasPrefix(path, "Main.") {
		path = path[len("Main."):]
	}
	path = CollapseModules(path)
	// Julia 1.0's JLD2 spelled a submodule by its own name twice, losing
	// its parent ("Optimise.Optimise.ADAM" for Flux.Optimise.ADAM).
	for short, full := range legacySubmodules {
		if strings.HasPrefix(path, short) {
			return full + path[len(short):]
		}
	}
	return path
}

// legacySubmodules are the submodules whose parent legacy JLD2 files lose.
// (Tracker was Flux.Tracker in those Flux versions and is also a package
// of its own: both names are in the tables.)
var legacySubmodules = map[string]string{"Optimise.": "Flux.Optimise."}

// CollapseModules collapses a module name repeated in a row in a type path
// without parameters ("Tracker.Tracker.TrackedArray" is
// "Tracker.TrackedArray"); the type's own name, the last part, is kept.
func CollapseModules(path string) string {
	if strings.Count(path, ".") < 2 {
		return path
	}
	parts := strings.Split(path, ".")
	out := parts[:1]
	for i, p := range parts[1:] {
		// The last part is the type's own name, kept even when a
		// module of that name holds it (Tracker.Tracked is no module).
		if p == out[len(out)-1] && i+1 < len(parts)-1 {
			continue
		}
		out = append(out, p)
	}
	if len(out) == len(parts) {
		return path
	}
	return strings.Join(out, ".")
}

// FieldNames returns the field names of the known type typeName (a Julia
// module path such as "Flux.Dense"; a leading "Main." is ignored) when it
// stores nfields fields. ok is false for a type or a field count the table
// does not know; the caller then names fields field1, field2, … (rule N3).
func FieldNames(typeName string, nfields int) (names []string, ok bool) {
	return FieldNamesParams(typeName, nfields, -1)
}

// FieldNamesParams is FieldNames for a type with nparams type parameters
// (-1 when unknown), which tells apart Flux versions whose layouts have the
// same number of fields.
func FieldNamesParams(typeName string, nfields, nparams int) (names []string, ok bool) {
	layouts := knownTypes[TypeName(typeName)]
	var fallback []string
	found := false
	for _, l := range layouts {
		if len(l.fields) != nfields {
			continue
		}
		if l.nparams != 0 {
			if l.nparams == nparams {
				return l.fields, true
			}
			if !found {
				fallback, found = l.fields, true
			}
			continue
		}
		return l.fields, true
	}
	return fallback, found
}

// Layouts returns every field layout the table knows for typeName.
func Layouts(typeName string) [][]string {
	var out [][]string
	for _, l := range knownTypes[TypeName(typeName)] {
		out = append(out, l.fields)
	}
	return out
}

// KnownType reports whether typeName is in the table.
func KnownType(typeName string) bool {
	_, ok := knownTypes[TypeName(typeName)]
	return ok
}

// IsOptimiser reports whether typeName is an optimiser of Flux.Optimise,
// Optimisers.jl (their state trees too: Optimisers.Leaf) or Knet, whose contents are optimiser state (rule N9). Types of
// those modules that hold a model rather than optimiser state are not:
// Optimisers.Restructure (what destructure returns) holds the model whose
// parameters it rebuilds.
func IsOptimiser(typeName string) bool {
	n := TypeName(typeName)
	if notOptimiser[n] {
		return false
	}
	return optimiserTypes[n] || strings.HasPrefix(n, "Flux.Optimise.") || strings.HasPrefix(n, "Optimisers.") || isKnetOptimiser(n)
}

// knetOptimisers are the optimisers of Knet (Knet.Train20 since Knet 1.4,
// the top module before), whose fields hold per-parameter state (Rmsprop's
// and Adagrad's G, Adam's moments fstm and scndm).
var knetOptimisers = map[string]bool{
	"Sgd": true, "Momentum": true, "Nesterov": true, "Adagrad": true, "Adadelta": true, "Rmsprop": true, "Adam": true,
}

func isKnetOptimiser(n string) bool {
	i := strings.LastIndexByte(n, '.')
	return i > 0 && strings.HasPrefix(n, "Knet.") && knetOptimisers[n[i+1:]]
}

// notOptimiser are the types of the optimiser modules that hold a model.
var notOptimiser = map[string]bool{
	"Optimisers.Restructure": true,
}

// EscapePart escapes one part of a tensor name (rule N6): "%" becomes "%25"
// and "." becomes "%2E", so that splitting a name on "." gives its parts back.
func EscapePart(part string) string {
	if !strings.ContainsAny(part, "%.") {
		return part
	}
	var b strings.Builder
	b.Grow(len(part) + 4)
	for i := 0; i < len(part); i++ {
		switch part[i] {
		case '%':
			b.WriteString("%25")
		case '.':
			b.WriteString("%2E")
		default:
			b.WriteByte(part[i])
		}
	}
	return b.String()
}

// UnescapePart reverses EscapePart. It leaves a "%" that does not start
// "%25" or "%2E" as it is.
func UnescapePart(part string) string {
	if !strings.Contains(part, "%") {
		return part
	}
	var b strings.Builder
	for i := 0; i < len(part); i++ {
		if part[i] == '%' && i+2 < len(part) {
			switch part[i+1 : i+3] {
			case "25":
				b.WriteByte('%')
				i += 2
				continue
			case "2E", "2e":
				b.WriteByte('.')
				i += 2
				continue
			}
		}
		b.WriteByte(part[i])
	}
	return b.String()
}

// NameJoin escapes each part (rule N6) and joins them with "." (rule N1).
func NameJoin(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p) + 1
	}
	var b strings.Builder
	b.Grow(n)
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(EscapePart(p))
	}
	return b.String()
}

// NameSplit splits a name into its unescaped parts.
func NameSplit(name string) []string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = UnescapePart(p)
	}
	return parts
}
