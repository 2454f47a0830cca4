package jld2

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
)

// walker turns the object graph into a convert.Model (rules J1-J9): a
// depth-first walk from the root group's links, in stored order, that
// follows object references and visits each object once.
type walker struct {
	f      *file
	opts   convert.Options
	m      *convert.Model
	visits map[uint64]*visit
	frames []*visit
	names  map[string]int
	nodes  int
	alias  int
	inOpt  bool
	// inGrad and inState count the gradients and state buffers being
	// walked: arrays below a gradient are dropped, those below a state
	// field have the role state (CONVERSION.md N7, N12).
	inGrad  int
	inState int
	// dictNext is the Dict type of the reference being followed, which
	// names the vector of pairs it refers to.
	dictNext string
}

type visit struct {
	path    []string
	node    *convert.Node
	done    bool
	tensors []tref
}

// tref is a tensor found below a visited object: the name parts after the
// object's own path, and the tensor's index in Model.Tensors.
type tref struct {
	suffix []string
	idx    int
}

func newWalker(f *file, opts convert.Options) *walker {
	return &walker{
		f:      f,
		opts:   opts,
		visits: map[uint64]*visit{},
		names:  map[string]int{},
		m: &convert.Model{
			SourceFormat: "jld2",
			Metadata:     map[string]string{},
			Report: convert.Report{
				SourceFormat: "jld2",
				Converter:    Converter,
				Tensors:      []convert.ReportTensor{},
				Dropped:      []convert.Dropped{},
			},
		},
	}
}

// optimizerNames are top-level names under which optimiser state is saved
// (rule J8); compared case-insensitively.
var optimizerNames = []string{"opt", "opt_state", "optstate", "opt_st", "optim", "optimizer", "optimiser", "optimizer_state", "optimiser_state", "state_opt"}

func (w *walker) run() (*convert.Model, error) {
	h := w.f.header
	if h.formatVersion != "" {
		w.m.Report.Versions = map[string]string{"jld2": h.formatVersion}
		if h.julia != "" {
			w.m.Report.Versions["julia"] = h.julia
		}
	} else {
		w.m.Report.Warnings = append(w.m.Report.Warnings, "no JLD2 text header: read as a plain HDF5 file")
	}
	root, err := w.f.info(w.f.root)
	if err != nil {
		return nil, err
	}
	if root.kind != kindGroup {
		return nil, errAt(convert.ErrMalformed, root.off, "root object is not a group")
	}
	w.visits[w.f.root] = &visit{}
	node, err := w.group(nil, root, 0)
	if err != nil {
		return nil, err
	}
	w.m.Structure = node
	if err := w.f.checkSpans(); err != nil {
		return nil, err
	}
	for _, t := range w.m.Tensors {
		w.m.Report.Tensors = append(w.m.Report.Tensors, convert.ReportTensor{
			Name: t.Name, DType: t.DType.String(), Shape: t.Shape, Bytes: int64(len(t.Data)), Aliases: t.Aliases, Role: t.Role,
		})
	}
	return w.m, nil
}

func (w *walker) drop(path []string, kind, detail string) {
	// The report entry is charged with its node (see node).
	w.m.Report.Dropped = append(w.m.Report.Dropped, convert.Dropped{Path: joinName(path), Kind: kind, Detail: detail})
}

func (w *walker) node(path []string, n *convert.Node) (*convert.Node, error) {
	w.nodes++
	if w.nodes > w.f.lim.MaxNodes {
		return nil, &Error{Offset: -1, Path: joinName(path), Reason: "more values than the node limit", Err: convert.ErrLimit}
	}
	// A node costs its path (built for it and for a report entry) and the
	// text it keeps: type names are shared, but each node writes them
	// again into the structure.
	if err := w.f.step(1 + 2*pathLen(path) + len(n.Type) + len(n.Value) + len(n.Function)); err != nil {
		return nil, err
	}
	return n, nil
}

func pathLen(path []string) int {
	n := len(path)
	for _, p := range path {
		n += len(p)
	}
	return n
}

func (w *walker) group(path []string, in *info, depth int) (*convert.Node, error) {
	n, err := w.node(path, &convert.Node{Kind: "struct", Type: "JLD2.Group"})
	if err != nil {
		return nil, err
	}
	for _, l := range in.links {
		if path == nil && l.name == "_types" {
			continue
		}
		p := append(slices.Clip(path), l.name)
		if l.kind == linkSoft {
			w.drop(p, convert.DropNonNumeric, "soft link")
			n.Fields = append(n.Fields, convert.Field{Name: l.name, Node: &convert.Node{Kind: "dropped", Dropped: convert.DropNonNumeric}})
			continue
		}
		var c *convert.Node
		if path == nil && !w.inOpt && slices.Contains(optimizerNames, strings.ToLower(l.name)) {
			c, err = w.optimizer(p, func(p []string) (*convert.Node, error) { return w.object(p, l.addr, depth+1) }, "top-level name "+l.name)
		} else {
			c, err = w.object(p, l.addr, depth+1)
		}
		if err != nil {
			return nil, err
		}
		n.Fields = append(n.Fields, convert.Field{Name: l.name, Node: c})
	}
	return n, nil
}

// optimizer drops optimiser state, or walks it with the part "optimizer"
// put before its path when the caller keeps it (CONVERSION.md N9), as the
// BSON converter names it.
func (w *walker) optimizer(path []string, walk func([]string) (*convert.Node, error), why string) (*convert.Node, error) {
	if !w.opts.IncludeOptimizer || w.inGrad > 0 {
		if w.inGrad == 0 {
			w.drop(path, convert.DropOptimizer, why)
		}
		return w.node(path, &convert.Node{Kind: "dropped", Dropped: convert.DropOptimizer})
	}
	p := append([]string{"optimizer"}, path...)
	w.inOpt = true
	defer func() { w.inOpt = false }()
	return walk(p)
}

// object walks the object at addr, reached by path (rule J3).
func (w *walker) object(path []string, addr uint64, depth int) (*convert.Node, error) {
	if addr == 0 || addr == undefAddr {
		w.drop(path, convert.DropUndef, "null reference")
		return w.node(path, &convert.Node{Kind: "nothing", Dropped: convert.DropUndef})
	}
	if depth > w.f.lim.MaxDepth {
		return nil, &Error{Offset: -1, Path: joinName(path), Reason: "values nested deeper than the limit", Err: convert.ErrLimit}
	}
	if v, ok := w.visits[addr]; ok {
		if !v.done {
			// A cycle: the object is being walked above. Its back-edge
			// is a reference to the path where it was first reached
			// (rule J3); the tensors below it are found by that walk.
			return w.node(path, &convert.Node{Kind: "ref", Ref: joinName(v.path)})
		}
		for _, t := range v.tensors {
			if err := w.addAlias(t.idx, append(slices.Clip(path), t.suffix...)); err != nil {
				return nil, err
			}
		}
		if v.node.Dropped == convert.DropGradient {
			// A gradient reached again (TrackedArray's grad is its
			// tracker's): reported at each path, as in BSON files.
			w.drop(path, convert.DropGradient, v.node.Type)
		}
		s := &convert.Node{Kind: v.node.Kind, Type: v.node.Type, Tensor: v.node.Tensor, DType: v.node.DType, Dropped: v.node.Dropped, Ref: joinName(v.path)}
		return w.node(path, s)
	}
	v := &visit{path: slices.Clone(path)}
	w.visits[addr] = v
	w.frames = append(w.frames, v)
	n, err := w.objectOnce(path, addr, depth)
	w.frames = w.frames[:len(w.frames)-1]
	if err != nil {
		if e, ok := err.(*Error); ok && e.Path == "" {
			e.Path = joinName(path)
		}
		return nil, err
	}
	v.node, v.done = n, true
	return n, nil
}

func (w *walker) objectOnce(path []string, addr uint64, depth int) (*convert.Node, error) {
	dictType := w.dictNext
	w.dictNext = ""
	in, err := w.f.info(addr)
	if err != nil {
		return nil, err
	}
	switch in.kind {
	case kindGroup:
		return w.group(path, in, depth)
	case kindType:
		ti, err := w.f.typeInfo(addr)
		if err != nil {
			return nil, err
		}
		w.drop(path, convert.DropNonNumeric, "type "+ti.name)
		return w.node(path, &convert.Node{Kind: "dropped", Type: baseName(ti.name), Dropped: convert.DropNonNumeric})
	}
	var ti *typeInfo
	name := ""
	if in.dt.committed != undefAddr {
		if ti, err = w.f.typeInfo(in.dt.committed); err != nil {
			return nil, err
		}
		if in.space.kind != spaceSimple {
			name = ti.name
		}
	}
	var dims []int64
	for _, a := range in.attrs {
		switch a.name {
		case "julia_type":
			if name, err = w.f.typeNameOf(a.dt, a.data, 0); err != nil {
				return nil, err
			}
		case "dimensions":
			dims = juliaDims(a)
		}
	}
	if dictType != "" && in.space.kind == spaceSimple {
		// The vector's own julia_type is its written type, an array of
		// pairs; the reference said it is a Dict.
		name = dictType
	}
	if n, stop, err := w.checkType(path, name, depth, func(p []string) (*convert.Node, error) {
		return w.dataset(p, in, ti, name, dims, depth)
	}); stop {
		return n, err
	}
	return w.dataset(path, in, ti, name, dims, depth)
}

// checkType applies the rules that depend on a Julia type name alone
// (rules J6-J8): GPU arrays, code, optimiser state.
func (w *walker) checkType(path []string, name string, depth int, walk func([]string) (*convert.Node, error)) (*convert.Node, bool, error) {
	base := baseName(name)
	switch {
	case strings.HasPrefix(base, "CUDA.") && strings.Contains(base, "CuArray"), base == "CuArray", strings.HasPrefix(base, "CUDA.Mem.DeviceBuffer"), strings.HasPrefix(base, "CUDA.CuPtr"):
		return nil, true, &Error{Offset: -1, Path: joinName(path), Reason: "GPU array (" + base + ") saved without its data; move the model to the CPU with cpu(model) before saving", Err: convert.ErrNoWeights}
	case base == "Core.CodeInfo" || base == "Core.Method" || base == "Core.MethodInstance" || base == "Core.MethodTable" || base == "Core.TypeMapEntry":
		w.m.Report.HasCode = true
		if w.opts.Strict {
			return nil, true, &Error{Offset: -1, Path: joinName(path), Reason: "serialized code (" + base + ") in strict mode", Err: convert.ErrHasCode}
		}
		w.drop(path, convert.DropCode, base)
		n, err := w.node(path, &convert.Node{Kind: "dropped", Type: base, Dropped: convert.DropCode})
		return n, true, err
	case !w.inOpt && convert.IsOptimiser(base):
		n, err := w.optimizer(path, walk, "type "+base)
		return n, true, err
	}
	return nil, false, nil
}

// dataset walks a dataset's value (rules J4, J5).
func (w *walker) dataset(path []string, in *info, ti *typeInfo, name string, dims []int64, depth int) (*convert.Node, error) {
	dt := in.dt
	switch in.space.kind {
	case spaceNull:
		if dims != nil {
			if d, ok := dt.numeric(); ok {
				if !slices.Contains(dims, 0) {
					return nil, &Error{Offset: in.off, Path: joinName(path), Reason: "dataset without data has non-empty dimensions", Err: convert.ErrMalformed}
				}
				shape := slices.Clone(dims)
				slices.Reverse(shape)
				return w.tensor(path, name, d, shape, nil)
			}
		}
		return w.ghost(path, name)
	case spaceScalar:
		b, _, err := w.f.datasetBytes(in)
		if err != nil {
			return nil, err
		}
		return w.value(path, dt, b, ti, name, depth)
	}
	if d, ok := dt.numeric(); ok {
		b, off, err := w.f.datasetBytes(in)
		if err != nil {
			return nil, err
		}
		w.f.addSpan(off, uint64(len(b)))
		shape := make([]int64, len(in.space.dims))
		for i, v := range in.space.dims {
			shape[i] = int64(v)
		}
		return w.tensor(path, name, d, shape, b)
	}
	if !dt.hasRefs() || dt.isVlenString() {
		kind := convert.DropUnsupportedType
		if dt.isVlenString() || dt.class == classString {
			kind = convert.DropNonNumeric
		}
		w.drop(path, kind, "array of "+describe(dt, name))
		return w.node(path, &convert.Node{Kind: "array", Type: baseName(name), Dropped: kind})
	}
	b, _, err := w.f.datasetBytes(in)
	if err != nil {
		return nil, err
	}
	if in.space.n > uint64(w.f.lim.MaxNodes) {
		return nil, &Error{Offset: in.off, Path: joinName(path), Reason: "array with more elements than the node limit", Err: convert.ErrLimit}
	}
	if _, _, ok := pairMembers(dt); (ok || dt.isObjectRef()) && isDict(baseName(name)) {
		return w.dict(path, in, b, ti, baseName(name), depth)
	}

	n, err := w.node(path, &convert.Node{Kind: "vector", Type: baseName(name)})
	if err != nil {
		return nil, err
	}
	for i := uint64(0); i < in.space.n; i++ {
		p := append(slices.Clip(path), strconv.FormatUint(i+1, 10))
		c, err := w.value(p, dt, b[i*uint64(dt.size):(i+1)*uint64(dt.size)], ti, "", depth+1)
		if err != nil {
			return nil, err
		}
		n.Items = append(n.Items, c)
	}
	return n, nil
}

// isDict reports the dictionary types JLD2 writes as a vector of pairs.
func isDict(base string) bool {
	switch base {
	case "Base.Dict", "Dict", "Base.IdDict", "IdDict":
		return true
	}
	return false
}

// pairMembers returns the members first and second of a Pair compound;
// second is -1 when the value has no data (an IdSet's pairs hold nothing).
func pairMembers(dt *dtype) (first, second int, ok bool) {
	if dt.class != classCompound || len(dt.members) < 1 || len(dt.members) > 2 {
		return 0, 0, false
	}
	first = slices.IndexFunc(dt.members, func(m member) bool { return m.name == "first" })
	second = slices.IndexFunc(dt.members, func(m member) bool { return m.name == "second" })
	return first, second, first >= 0 && (second >= 0 || len(dt.members) == 1)
}

// dict walks a Dict that JLD2 wrote as a vector of pairs, stored in place
// or as references to scalar pairs (rule J9), by CONVERSION.md N5: a
// string or symbol key names its value; otherwise pair i names its value
// entry<i> and its key key<i>. Each item of the dict node is a tuple of the
// key and the value, as in the BSON converter.
func (w *walker) dict(path []string, in *info, b []byte, ti *typeInfo, base string, depth int) (*convert.Node, error) {
	n, err := w.node(path, &convert.Node{Kind: "dict", Type: base})
	if err != nil {
		return nil, err
	}
	es := uint64(in.dt.size)
	for i := uint64(0); i < in.space.n; i++ {
		idx := strconv.FormatUint(i+1, 10)
		dt, e, pti := in.dt, b[i*es:(i+1)*es], ti
		if dt.isObjectRef() {
			if dt, e, pti, err = w.scalarAt(le64(e)); err != nil {
				return nil, err
			}
		}
		first, second, ok := -1, -1, false
		if dt != nil {
			first, second, ok = pairMembers(dt)
		}
		if !ok {
			// Not a pair: named like the value of a non-string key.
			c, err := w.value(append(slices.Clip(path), "entry"+idx), in.dt, b[i*es:(i+1)*es], ti, "", depth+1)
			if err != nil {
				return nil, err
			}
			n.Items = append(n.Items, c)
			continue
		}
		kt := w.memberType(pti, dt, first)
		km := dt.members[first]
		kb := e[km.offset : km.offset+km.typ.size]
		var key *convert.Node
		part := ""
		s, kind, err := w.keyText(km.typ, kb, kt)
		if err != nil {
			return nil, err
		}
		if kind != "" {
			part = s
			if key, err = w.node(path, &convert.Node{Kind: kind, Value: s}); err != nil {
				return nil, err
			}
		} else {
			if key, err = w.value(append(slices.Clip(path), "key"+idx), km.typ, kb, kt, "", depth+1); err != nil {
				return nil, err
			}
			part = "entry" + idx
		}
		var val *convert.Node
		if second >= 0 {
			vm := dt.members[second]
			val, err = w.value(append(slices.Clip(path), part), vm.typ, e[vm.offset:vm.offset+vm.typ.size], w.memberType(pti, dt, second), "", depth+1)
		} else {
			val, err = w.node(path, &convert.Node{Kind: "nothing"})
		}
		if err != nil {
			return nil, err
		}
		item, err := w.node(path, &convert.Node{Kind: "tuple", Items: []*convert.Node{key, val}})
		if err != nil {
			return nil, err
		}
		n.Items = append(n.Items, item)
	}
	return n, nil
}

// scalarAt returns the datatype, bytes and committed type information of
// the scalar dataset at addr; dt is nil for anything else.
func (w *walker) scalarAt(addr uint64) (*dtype, []byte, *typeInfo, error) {
	if addr == 0 || addr == undefAddr {
		return nil, nil, nil, nil
	}
	in, err := w.f.info(addr)
	if err != nil {
		return nil, nil, nil, err
	}
	if in.kind != kindDataset || in.space.kind != spaceScalar {
		return nil, nil, nil, nil
	}
	b, _, err := w.f.datasetBytes(in)
	if err != nil {
		return nil, nil, nil, err
	}
	var ti *typeInfo
	if in.dt.committed != undefAddr {
		if ti, err = w.f.typeInfo(in.dt.committed); err != nil {
			return nil, nil, nil, err
		}
	}
	return in.dt, b, ti, nil
}

// memberType returns the committed type information of member i of a
// compound whose type information is ti (JLD2's field_datatypes), if any.
func (w *walker) memberType(ti *typeInfo, dt *dtype, i int) *typeInfo {
	if ti == nil || len(ti.fieldTypes) != len(dt.members) || ti.fieldTypes[i] == 0 || ti.fieldTypes[i] == undefAddr {
		return nil
	}
	mti, err := w.f.typeInfo(ti.fieldTypes[i])
	if err != nil {
		return nil
	}
	return mti
}

// keyText returns the text of a dictionary key that is a string or a
// symbol, stored in place or in a scalar dataset it refers to; kind is
// "string" or "symbol", or empty for any other key.
func (w *walker) keyText(dt *dtype, b []byte, ti *typeInfo) (string, string, error) {
	name := ""
	if ti != nil {
		name = ti.name
	}
	if dt.isObjectRef() {
		var err error
		if dt, b, ti, err = w.scalarAt(le64(b)); err != nil || dt == nil {
			return "", "", err
		}
		name = ""
		if ti != nil {
			name = ti.name
		}
	}
	kind := "string"
	if base := baseName(name); base == "Core.Symbol" || base == "Symbol" {
		kind = "symbol"
	}
	switch {
	case dt.isVlenString() && dt.size == 16:
		s, err := w.f.vlenText(b)
		return s, kind, err
	case dt.class == classString:
		return strings.TrimRight(w.f.text(b[:dt.size]), "\x00 "), kind, nil
	}
	return "", "", nil
}

// ghost is a value without data: a singleton such as nothing, a function
// or an empty tuple (rule J5).
func (w *walker) ghost(path []string, name string) (*convert.Node, error) {
	base := baseName(name)
	switch {
	case isFunction(base) && isAnonymous(base):
		// Only the type is stored: JLD2 writes no code (CONVERSION.md 4).
		w.drop(path, convert.DropFunction, base)
		return w.node(path, &convert.Node{Kind: "function", Type: base, Anonymous: true})
	case isFunction(base):
		w.drop(path, convert.DropFunction, base)
		return w.node(path, &convert.Node{Kind: "function", Type: base, Function: functionName(base)})
	case base == "Core.Nothing" || base == "Nothing":
		return w.node(path, &convert.Node{Kind: "nothing", Type: base})
	case isTuple(base):
		return w.node(path, &convert.Node{Kind: "tuple", Type: "Core.Tuple"})
	case base == "Core.NamedTuple" || base == "NamedTuple":
		return w.node(path, &convert.Node{Kind: "namedtuple", Type: base})
	}
	return w.node(path, &convert.Node{Kind: "struct", Type: base})
}

func (w *walker) tensor(path []string, typeName string, d format.DType, shape []int64, data []byte) (*convert.Node, error) {
	if typeName == "" {
		typeName = "Core.Array"
	}
	if w.inGrad > 0 {
		w.drop(path, convert.DropGradient, baseName(typeName))
		return w.node(path, &convert.Node{Kind: "array", Type: baseName(typeName), DType: d.String(), Dropped: convert.DropGradient})
	}
	name := joinName(path)
	if path != nil && path[0] == "optimizer" && !w.inOpt {
		return nil, &Error{Offset: -1, Path: name, Reason: "top-level name optimizer is reserved for kept optimiser state", Err: convert.ErrNameClash}
	}
	if _, ok := w.names[name]; ok {
		return nil, &Error{Offset: -1, Path: name, Reason: "two arrays named " + name, Err: convert.ErrNameClash}
	}
	if err := w.f.step(len(name)); err != nil {
		return nil, err
	}
	idx := len(w.m.Tensors)
	w.names[name] = idx
	role := convert.RoleParameter
	if w.inState > 0 {
		role = convert.RoleState
	}
	w.m.Tensors = append(w.m.Tensors, convert.Tensor{Name: name, DType: d, Shape: shape, Data: data, Role: role})
	for _, f := range w.frames {
		if err := w.record(f, path, idx); err != nil {
			return nil, err
		}
	}
	return w.node(path, &convert.Node{Kind: "array", Type: baseName(typeName), Tensor: name, DType: d.String()})
}

func (w *walker) record(f *visit, path []string, idx int) error {
	if len(path) < len(f.path) {
		return nil
	}
	w.alias++
	if w.alias > w.f.lim.MaxAliases {
		return &Error{Offset: -1, Path: joinName(path), Reason: "more shared-array paths than the alias limit", Err: convert.ErrLimit}
	}
	if err := w.f.step(1 + pathLen(path[len(f.path):])); err != nil {
		return err
	}
	f.tensors = append(f.tensors, tref{suffix: slices.Clone(path[len(f.path):]), idx: idx})
	return nil
}

func (w *walker) addAlias(idx int, path []string) error {
	if err := w.f.step(1 + 2*pathLen(path)); err != nil {
		return err
	}
	name := joinName(path)
	if j, ok := w.names[name]; ok {
		if j != idx {
			return &Error{Offset: -1, Path: name, Reason: "two arrays named " + name, Err: convert.ErrNameClash}
		}
		return nil
	}
	w.names[name] = idx
	t := &w.m.Tensors[idx]
	t.Aliases = append(t.Aliases, name)
	for _, f := range w.frames {
		if err := w.record(f, path, idx); err != nil {
			return err
		}
	}
	return nil
}

// value walks one element of type dt held in b (rule J4).
func (w *walker) value(path []string, dt *dtype, b []byte, ti *typeInfo, name string, depth int) (*convert.Node, error) {
	if depth > w.f.lim.MaxDepth {
		return nil, &Error{Offset: -1, Path: joinName(path), Reason: "values nested deeper than the limit", Err: convert.ErrLimit}
	}
	if uint64(len(b)) < uint64(dt.size) {
		return nil, &Error{Offset: -1, Path: joinName(path), Reason: "value shorter than its datatype", Err: convert.ErrMalformed}
	}
	if ti == nil && dt.committed != undefAddr {
		var err error
		if ti, err = w.f.typeInfo(dt.committed); err != nil {
			return nil, err
		}
	}
	if name == "" && ti != nil {
		name = ti.name
	}
	if ti != nil && ti.dt != nil && ti.dt != dt && ti.dt.size != dt.size {
		ti = nil
	}
	if n, stop, err := w.checkType(path, name, depth, func(p []string) (*convert.Node, error) {
		return w.valueOf(p, dt, b, ti, name, depth)
	}); stop {
		return n, err
	}
	return w.valueOf(path, dt, b, ti, name, depth)
}

func (w *walker) valueOf(path []string, dt *dtype, b []byte, ti *typeInfo, name string, depth int) (*convert.Node, error) {
	base := baseName(name)
	if d, ok := dt.numeric(); ok {
		return w.node(path, &convert.Node{Kind: "scalar", Type: base, Value: convert.ScalarText(d, b), DType: d.String()})
	}
	switch dt.class {
	case classRef:
		if !dt.isObjectRef() {
			w.drop(path, convert.DropUnsupportedType, "region reference")
			return w.node(path, &convert.Node{Kind: "dropped", Dropped: convert.DropUnsupportedType})
		}
		if isDict(base) {
			// JLD2 writes a Dict as a reference, typed Dict, to a
			// vector of pairs (rule J9).
			w.dictNext = base
		}
		c, err := w.object(path, le64(b), depth+1)
		w.dictNext = ""
		return c, err
	case classCompound:
		if convert.BufferArray(base) {
			if n, ok, err := w.bufferArray(path, dt, b, ti, name, depth); ok || err != nil {
				return n, err
			}
		}
		if wr, ok := convert.WrapperOf(base); ok {
			if n, ok, err := w.wrapper(path, dt, b, ti, base, wr, depth); ok || err != nil {
				return n, err
			}
		}
		return w.compound(path, dt, b, ti, base, depth)
	case classString:
		s := strings.TrimRight(w.f.text(b[:dt.size]), "\x00 ")
		return w.str(path, base, s)
	case classVlen:
		if dt.size != 16 {
			return nil, &Error{Offset: -1, Path: joinName(path), Reason: "variable-length value of " + strconv.Itoa(int(dt.size)) + " bytes", Err: convert.ErrMalformed}
		}
		if dt.isVlenString() {
			s, err := w.f.vlenText(b)
			if err != nil {
				return nil, err
			}
			return w.str(path, base, s)
		}
		if !dt.base.isObjectRef() {
			w.drop(path, convert.DropNonNumeric, "variable-length sequence")
			return w.node(path, &convert.Node{Kind: "dropped", Type: base, Dropped: convert.DropNonNumeric})
		}
		s, cnt, err := w.f.vlen(b, 8)
		if err != nil {
			return nil, err
		}
		n, err := w.node(path, &convert.Node{Kind: "vector", Type: base})
		if err != nil {
			return nil, err
		}
		for i := uint64(0); i < cnt; i++ {
			c, err := w.object(append(slices.Clip(path), strconv.FormatUint(i+1, 10)), le64(s[8*i:]), depth+1)
			if err != nil {
				return nil, err
			}
			n.Items = append(n.Items, c)
		}
		return n, nil
	case classArray:
		n, err := w.node(path, &convert.Node{Kind: "tuple", Type: base})
		if err != nil {
			return nil, err
		}
		cnt := uint64(dt.size) / uint64(max(dt.base.size, 1))
		for i := uint64(0); i < cnt; i++ {
			es := uint64(dt.base.size)
			c, err := w.value(append(slices.Clip(path), strconv.FormatUint(i+1, 10)), dt.base, b[i*es:(i+1)*es], nil, "", depth+1)
			if err != nil {
				return nil, err
			}
			n.Items = append(n.Items, c)
		}
		return n, nil
	case classOpaque:
		if ti != nil && ti.empty {
			return w.ghost(path, name)
		}
	}
	if d, ok := convert.ElementType(base); ok && d.Size() == int(dt.size) && (dt.class == classOpaque || dt.class == classBitfield || dt.class == classFixed) {
		// A primitive that an old JLD2 wrote as its own committed type
		// (Julia 1.0's "Core.Core.Bool"): its bytes are the number.
		return w.node(path, &convert.Node{Kind: "scalar", Type: convert.TypeName(base), Value: convert.ScalarText(d, b[:dt.size]), DType: d.String()})
	}
	w.drop(path, convert.DropUnsupportedType, describe(dt, name))
	return w.node(path, &convert.Node{Kind: "dropped", Type: base, Dropped: convert.DropUnsupportedType})
}

func (w *walker) str(path []string, base, s string) (*convert.Node, error) {
	kind := "string"
	if base == "Core.Symbol" || base == "Symbol" {
		kind = "symbol"
	}
	w.drop(path, convert.DropNonNumeric, kind)
	return w.node(path, &convert.Node{Kind: kind, Type: base, Value: s})
}

// compound walks a struct, tuple or named tuple stored in place (rule J4):
// members by name, types of nested members from field_datatypes, fields
// without data from field_names and field_types.
func (w *walker) compound(path []string, dt *dtype, b []byte, ti *typeInfo, base string, depth int) (*convert.Node, error) {
	kind := "struct"
	switch base {
	case "Core.NamedTuple", "NamedTuple":
		kind = "namedtuple"
	case "Core.Tuple", "Tuple", "NTuple", "Core.NTuple":
		// NTuple{N, T} is an alias of Tuple{T, ...}: one name, as in
		// BSON (CONVERSION.md 4).
		kind = "tuple"
		base = "Core.Tuple"
	}
	n, err := w.node(path, &convert.Node{Kind: kind, Type: base})
	if err != nil {
		return nil, err
	}
	var ftypes []uint64
	if ti != nil && len(ti.fieldTypes) == len(dt.members) {
		ftypes = ti.fieldTypes
	}
	names := []string(nil)
	if ti != nil && len(ti.fieldNames) >= len(dt.members) {
		names = ti.fieldNames
	}
	walkMember := func(i int) (*convert.Node, error) {
		m := dt.members[i]
		var mti *typeInfo
		if ftypes != nil && ftypes[i] != 0 && ftypes[i] != undefAddr {
			if mti, err = w.f.typeInfo(ftypes[i]); err != nil {
				return nil, err
			}
		}
		if convert.IsStateField(base, m.name) {
			w.inState++
			defer func() { w.inState-- }()
		}
		return w.value(append(slices.Clip(path), fieldName(base, m.name)), m.typ, b[m.offset:m.offset+m.typ.size], mti, "", depth+1)
	}
	add := func(name string, c *convert.Node) {
		if kind == "tuple" {
			n.Items = append(n.Items, c)
		} else {
			n.Fields = append(n.Fields, convert.Field{Name: name, Node: c})
		}
	}
	if slots, ok := restorable(names, kind, base, dt, ti); ok {
		// Before JLD2 0.5: fields without data restored in place, so that
		// item i of a Chain is layer i and a Dense has its σ.
		for _, s := range slots {
			var c *convert.Node
			if s.member >= 0 {
				c, err = walkMember(s.member)
			} else {
				c, err = w.ghost(append(slices.Clip(path), s.name), s.ghost)
			}
			if err != nil {
				return nil, err
			}
			add(s.name, c)
		}
		return n, nil
	}
	if names == nil {
		if ti != nil {
			at := funcPaths(path, kind, base, dt, ti)
			for i, fn := range ti.funcParams {
				w.drop(at[i], convert.DropFunction, fn+" (type parameter of "+base+")")
			}
		}
		for i, m := range dt.members {
			c, err := walkMember(i)
			if err != nil {
				return nil, err
			}
			add(fieldName(base, m.name), c)
		}
		return n, nil
	}
	// JLD2 0.5 and later: every field in declaration order.
	for j, fname := range names {
		i := slices.IndexFunc(dt.members, func(m member) bool { return m.name == fname })
		var c *convert.Node
		if i >= 0 {
			c, err = walkMember(i)
		} else {
			tn := ""
			if j < len(ti.fieldJT) {
				tn, err = w.f.typeNameOf(&dtype{class: classRef, size: 8, version: 1}, binary.LittleEndian.AppendUint64(nil, ti.fieldJT[j]), 0)
			}
			if err == nil {
				c, err = w.ghost(append(slices.Clip(path), fieldName(base, fname)), tn)
			}
		}
		if err != nil {
			return nil, err
		}
		add(fieldName(base, fname), c)
	}
	return n, nil
}

// fieldName applies CONVERSION.md N3a: fields Flux renamed are named by
// their current names, so that a model gets the same names whichever Flux
// version saved it.
func fieldName(typ, field string) string {
	if typ == "Flux.Dense" {
		switch field {
		case "W":
			return "weight"
		case "b":
			return "bias"
		}
	}
	return field
}

func describe(dt *dtype, name string) string {
	if name != "" {
		return baseName(name)
	}
	return "HDF5 datatype class " + strconv.Itoa(int(dt.class)) + " of " + strconv.Itoa(int(dt.size)) + " bytes"
}

// juliaDims reads JLD2's "dimensions" attribute of an empty array.
func juliaDims(a *attribute) []int64 {
	if a.dt.class != classFixed || a.dt.size != 8 || a.space.n > maxRank || uint64(len(a.data)) < 8*a.space.n {
		return nil
	}
	d := make([]int64, a.space.n)
	n := uint64(1)
	for i := range d {
		v := le64(a.data[8*i:])
		if v > 1<<62 {
			return nil
		}
		d[i] = int64(v)
		// The product of the dimensions other than zero must be a
		// size, so that no consumer overflows computing it.
		if v != 0 {
			hi, lo := bits.Mul64(n, v)
			if hi != 0 || lo > 1<<62 {
				return nil
			}
			n = lo
		}
	}
	return d
}

// baseName strips type parameters: "Flux.Dense{typeof(relu), ...}" gives
// "Flux.Dense".
//
// Module names repeated in a row, as JLD2 files of Julia 1.0 and 1.1 write
// them ("Tracker.Tracker.TrackedArray"), are collapsed (CONVERSION.md N3b).
func baseName(s string) string {
	if i := strings.IndexByte(s, '{'); i > 0 {
		s = s[:i]
	}
	return convert.CollapseModules(s)
}

func isTuple(base string) bool {
	switch base {
	case "Core.Tuple", "Tuple", "NTuple", "Core.NTuple":
		return true
	}
	return false
}

func isFunction(base string) bool {
	return strings.Contains(base, ".#") || strings.HasPrefix(base, "#") || strings.HasPrefix(base, "typeof(")
}

func functionName(base string) string {
	if s, ok := strings.CutPrefix(base, "typeof("); ok {
		base = strings.TrimSuffix(s, ")")
	}
	if i := strings.LastIndex(base, "#"); i >= 0 {
		return base[i+1:]
	}
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		return base[i+1:]
	}
	return base
}

// joinName joins name parts (CONVERSION.md N1, N6).
func joinName(parts []string) string { return convert.NameJoin(parts...) }

// gradient walks a member whose arrays are gradients: dropped (N7).
func (w *walker) gradient(walk func() (*convert.Node, error)) (*convert.Node, error) {
	w.inGrad++
	defer func() { w.inGrad-- }()
	return walk()
}

// wrapper walks a parameter wrapper (CONVERSION.md N7): the value member
// takes the wrapper's path, gradient members are dropped, optimiser
// members are optimiser state. ok is false when the compound lacks the
// value member; it is then walked as a struct.
func (w *walker) wrapper(path []string, dt *dtype, b []byte, ti *typeInfo, base string, wr convert.Wrapper, depth int) (*convert.Node, bool, error) {
	vi := slices.IndexFunc(dt.members, func(m member) bool { return m.name == wr.Value })
	if vi < 0 {
		return nil, false, nil
	}
	var ftypes []uint64
	if ti != nil && len(ti.fieldTypes) == len(dt.members) {
		ftypes = ti.fieldTypes
	}
	walkMember := func(i int, p []string) (*convert.Node, error) {
		m := dt.members[i]
		var mti *typeInfo
		if ftypes != nil && ftypes[i] != 0 && ftypes[i] != undefAddr {
			var err error
			if mti, err = w.f.typeInfo(ftypes[i]); err != nil {
				return nil, err
			}
		}
		return w.value(p, m.typ, b[m.offset:m.offset+m.typ.size], mti, "", depth+1)
	}
	// The wrapper's node is its value's: the other members are walked
	// for what they hold (drops, aliases), their nodes not kept.
	var value *convert.Node
	for i, m := range dt.members {
		var err error
		p := append(slices.Clip(path), m.name)
		switch {
		case i == vi:
			value, err = walkMember(i, path)
		case slices.Contains(wr.Gradient, m.name):
			_, err = w.gradient(func() (*convert.Node, error) { return walkMember(i, p) })
		case slices.Contains(wr.Optimizer, m.name) && !w.inOpt:
			_, err = w.optimizer(p, func(p []string) (*convert.Node, error) { return walkMember(i, p) }, "optimiser state of "+base)
		default:
			_, err = walkMember(i, p)
		}
		if err != nil {
			return nil, true, err
		}
	}
	return value, true, nil
}

// intsOf reads a tuple of Int64 stored in place (an HDF5 array of 8-byte
// integers, or a compound of them) as Julia dimensions.
func intsOf(dt *dtype, b []byte) ([]int64, bool) {
	var out []int64
	add := func(t *dtype, v []byte) bool {
		if t.class != classFixed || t.size != 8 || uint64(len(v)) < 8 {
			return false
		}
		x := le64(v)
		if x > 1<<62 {
			return false
		}
		out = append(out, int64(x))
		return true
	}
	switch dt.class {
	case classFixed:
		return out, add(dt, b)
	case classArray:
		if dt.base == nil || dt.base.size != 8 {
			return nil, false
		}
		for i := uint32(0); i < dt.size/8; i++ {
			if !add(dt.base, b[8*i:]) {
				return nil, false
			}
		}
	case classCompound:
		for _, m := range dt.members {
			if !add(m.typ, b[m.offset:]) {
				return nil, false
			}
		}
	default:
		return nil, false
	}
	return out, len(out) <= maxRank
}

// bufferArray reads an array that keeps its data as bytes beside its
// dimensions (CONVERSION.md N11): Knet's KnetArray{T,N}, a compound of
// ptr (a KnetPtr whose ptr refers to the Vector{UInt8} of the data) and
// dims. The tensor has T's type and the dimensions reversed, and takes the
// array's path. ok is false for a value that is not laid out so (a KnetPtr
// that holds a device pointer); it is then walked as a struct.
func (w *walker) bufferArray(path []string, dt *dtype, b []byte, ti *typeInfo, name string, depth int) (*convert.Node, bool, error) {
	param := ""
	if params := convert.TypeParams(name); len(params) > 0 {
		param = params[0]
	} else if ti != nil {
		param = ti.param1
	}
	et, ok := convert.ElementType(param)
	if !ok {
		return nil, false, nil
	}
	pi := slices.IndexFunc(dt.members, func(m member) bool { return m.name == "ptr" })
	di := slices.IndexFunc(dt.members, func(m member) bool { return m.name == "dims" })
	if pi < 0 || di < 0 {
		return nil, false, nil
	}
	dm := dt.members[di]
	dims, ok := intsOf(dm.typ, b[dm.offset:dm.offset+dm.typ.size])
	if !ok {
		return nil, false, nil
	}
	pm := dt.members[pi]
	pdt, pb := pm.typ, b[pm.offset:pm.offset+pm.typ.size]
	if pdt.isObjectRef() {
		var err error
		if pdt, pb, _, err = w.scalarAt(le64(pb)); err != nil || pdt == nil {
			return nil, false, err
		}
	}
	if pdt.class != classCompound {
		return nil, false, nil
	}
	bi := slices.IndexFunc(pdt.members, func(m member) bool { return m.name == "ptr" })
	if bi < 0 || !pdt.members[bi].typ.isObjectRef() {
		return nil, false, nil
	}
	addr := le64(pb[pdt.members[bi].offset:])
	in, err := w.f.info(addr)
	if err != nil {
		return nil, true, err
	}
	if in.kind != kindDataset || in.space.kind != spaceSimple || len(in.space.dims) != 1 {
		return nil, false, nil
	}
	if d, ok := in.dt.numeric(); !ok || d != format.U8 {
		return nil, false, nil
	}
	// The byte count must be the element count times the element size,
	// computed without overflow.
	n := uint64(1)
	for _, d := range dims {
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > 1<<62 {
			return nil, true, &Error{Offset: in.off, Path: joinName(path), Reason: "array dimensions overflow", Err: convert.ErrMalformed}
		}
		n = lo
	}
	hi, want := bits.Mul64(n, uint64(et.Size()))
	if hi != 0 || want != in.space.dims[0] {
		return nil, true, &Error{Offset: in.off, Path: joinName(path), Reason: "byte buffer of " + strconv.FormatUint(in.space.dims[0], 10) + " bytes for dimensions " + fmtDims(dims) + " of " + et.String(), Err: convert.ErrMalformed}
	}
	shape := slices.Clone(dims)
	slices.Reverse(shape)
	typ := baseName(name)
	return w.sharedObject(path, addr, func(path []string) (*convert.Node, error) {
		data, off, err := w.f.datasetBytes(in)
		if err != nil {
			return nil, err
		}
		w.f.addSpan(off, uint64(len(data)))
		return w.tensor(path, typ, et, shape, data)
	})
}

func fmtDims(d []int64) string {
	s := make([]string, len(d))
	for i, v := range d {
		s[i] = strconv.FormatInt(v, 10)
	}
	return "(" + strings.Join(s, ", ") + ")"
}

// sharedObject walks the object at addr once, as object does, with walk in
// place of reading the object: reached again, its tensors become aliases.
func (w *walker) sharedObject(path []string, addr uint64, walk func([]string) (*convert.Node, error)) (*convert.Node, bool, error) {
	if v, ok := w.visits[addr]; ok {
		if !v.done {
			n, err := w.node(path, &convert.Node{Kind: "ref", Ref: joinName(v.path)})
			return n, true, err
		}
		for _, t := range v.tensors {
			if err := w.addAlias(t.idx, append(slices.Clip(path), t.suffix...)); err != nil {
				return nil, true, err
			}
		}
		n, err := w.node(path, &convert.Node{Kind: v.node.Kind, Type: v.node.Type, Tensor: v.node.Tensor, DType: v.node.DType, Ref: joinName(v.path)})
		return n, true, err
	}
	v := &visit{path: slices.Clone(path)}
	w.visits[addr] = v
	w.frames = append(w.frames, v)
	n, err := walk(path)
	w.frames = w.frames[:len(w.frames)-1]
	if err != nil {
		return nil, true, err
	}
	v.node, v.done = n, true
	return n, true, nil
}

// funcPaths returns where each function among the type parameters of a
// compound sits, for files that do not name the fields without data: in
// a tuple, parameter i is element i+1; in a struct of the table of known
// types, the fields without data are, in order, the function parameters
// when they are as many. Otherwise the compound's own path.
func funcPaths(path []string, kind, base string, dt *dtype, ti *typeInfo) [][]string {
	at := make([][]string, len(ti.funcParams))
	for i := range at {
		at[i] = path
	}
	switch {
	case kind == "tuple" && len(ti.funcIdx) == len(at):
		for i, j := range ti.funcIdx {
			at[i] = append(slices.Clip(path), strconv.Itoa(j+1))
		}
	case kind == "struct":
		have := map[string]bool{}
		for _, m := range dt.members {
			have[fieldName(base, m.name)] = true
		}
		for _, fields := range convert.Layouts(base) {
			var missing []string
			all := true
			for _, f := range fields {
				if !have[f] {
					missing = append(missing, f)
				}
			}
			for name := range have {
				all = all && slices.Contains(fields, name)
			}
			if all && len(missing) == len(at) {
				for i := range at {
					at[i] = append(slices.Clip(path), missing[i])
				}
				break
			}
		}
	}
	return at
}
