package bson

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"

	mbson "go.mongodb.org/mongo-driver/v2/bson"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
)

// SourceFormat is the source format name recorded in the provenance.
const SourceFormat = "bson.jl"

// What a subtree is, for the keep rule.
const (
	modeModel = iota
	modeOptimizer
	modeGradient
)

type ctx struct {
	mode   uint8
	prefix bool // names start with "optimizer" (rule N9)
	state  bool // arrays are state buffers, not parameters (rule N12)
}

type brEntry struct {
	off, n uint32
	t      mbson.Type
}

type pending struct {
	v     val
	ti    *typeInfo
	td    tdoc
	parts []string
	c     ctx
	node  *convert.Node
	phys  []seg
}

type walker struct {
	data []byte
	opts options
	lim  Limits
	m    *convert.Model

	phys   []seg
	depth  int
	values int

	brList  val
	hasBR   bool
	brBuilt bool
	brIdx   []brEntry
	brState []uint8          // brOnStack, and bit 1<<mode once walked in that mode
	brPath  map[int][]string // entries on the stack -> the path that entered them

	// An entry is walked once per mode; reached again, it replays the
	// tensors found below it as aliases of the new path (rule R3), so the
	// work is linear in the file even when backrefs form a DAG.
	memo      map[int]*visit // k*4+mode -> what walking entry k found
	frames    []*visit       // entries being walked, innermost last
	aliases   int            // tensor paths recorded or replayed, bounded by MaxAliases
	work      int            // values visited plus paths replayed (tests check it is linear)
	tnames    map[int][]string
	zeroElems uint64 // dict elements of zero-size types, bounded by the file size
	peeked    map[int]bool

	types     map[int]*typeInfo
	arrTensor map[int]int    // offset of an array's document -> tensor index
	names     map[string]int // every tensor name and alias -> tensor index
	quiet     int            // >0 while walking a subtree a second time
	phase2    bool
	pending   []pending
	gpuModel  int
	firstGPU  error
}

const brOnStack = 0x80

// visit is what walking one _backrefs entry in one mode found: its node
// without children and the tensors below it by the path parts under the
// entry's own path.
type visit struct {
	path []string // the entry's first path
	base int      // number of path parts of the entry's first path
	node *convert.Node
	refs []tref
}

type tref struct {
	suffix []string
	idx    int
}

func newWalker(data []byte, opts options) (*walker, error) {
	lim, err := opts.Limits.withDefaults()
	if err != nil {
		return nil, err
	}
	w := &walker{
		data: data, opts: opts, lim: lim,
		m: &convert.Model{
			SourceFormat: SourceFormat,
			Report: convert.Report{
				SourceFormat: SourceFormat,
				Converter:    Converter,
				Tensors:      []convert.ReportTensor{},
				Dropped:      []convert.Dropped{},
			},
		},
		types:     map[int]*typeInfo{},
		arrTensor: map[int]int{},
		names:     map[string]int{},
		memo:      map[int]*visit{},
		tnames:    map[int][]string{},
		peeked:    map[int]bool{},
		brPath:    map[int][]string{},
	}
	return w, nil
}

func (w *walker) run() (*convert.Model, error) {
	data := w.data
	if len(data) < 5 || int64(int32(binary.LittleEndian.Uint32(data))) != int64(len(data)) {
		// Not framed as a BSON document: say what it is, where that can
		// be told (spec/CONVERSION.md section 6).
		if err := convert.Diagnose(data); err != nil {
			return nil, &Error{Offset: 0, Msg: "not a BSON.jl file", Err: err}
		}
	}
	if len(data) < 5 {
		return nil, w.errAt(0, convert.ErrMalformed, "file of %d bytes is no BSON document", len(data))
	}
	if n := int64(int32(binary.LittleEndian.Uint32(data))); n != int64(len(data)) {
		if n < int64(len(data)) && n >= 5 {
			return nil, w.errAt(int(n), convert.ErrMalformed, "%d bytes after the document", int64(len(data))-n)
		}
		return nil, w.errAt(0, convert.ErrMalformed, "document length %d in a %d-byte file", n, len(data))
	}
	top := val{t: mbson.TypeEmbeddedDocument, b: data}

	type root struct {
		key string
		v   val
	}
	var roots []root
	seen := map[string]bool{}
	err := w.each(top, func(key []byte, e val) error {
		k := string(key)
		if seen[k] {
			return w.errAt(e.off, convert.ErrMalformed, "duplicate top-level key %q", k)
		}
		seen[k] = true
		if k == "_backrefs" {
			if e.t != mbson.TypeArray {
				return w.errAt(e.off, convert.ErrMalformed, "_backrefs is a %s, not a list", e.t)
			}
			w.brList, w.hasBR = e, true
			return nil
		}
		roots = append(roots, root{k, e})
		return nil
	})
	if err != nil {
		return nil, err
	}

	// The top level is a Dict{Symbol,Any}: each key is a root (rule N2).
	// A top level with a "tag" key is one tagged value (BSON.jl writes a
	// Dict{String,Any} handed to bson() so): its entries are the roots
	// (rule B5).
	rootNode := &convert.Node{Kind: "dict"}
	if seen["tag"] {
		var td tdoc
		for _, r := range roots {
			switch r.key {
			case "tag":
				td.f[kTag] = r.v
			case "type":
				td.f[kType] = r.v
			case "data":
				td.f[kData] = r.v
			default:
				return nil, w.errAt(r.v.off, convert.ErrMalformed, "top-level key %q beside a tag", r.key)
			}
		}
		if s, ok := asString(td.f[kTag]); !ok || s != "struct" || len(roots) != 3 {
			return nil, w.errAt(0, convert.ErrUnsupported, "top-level tagged document that is not a struct with type and data")
		}
		td.tag = tagStruct
		n, err := w.structure(top, td, nil, ctx{})
		if err != nil {
			return nil, err
		}
		if n.Kind != "dict" {
			return nil, w.errAt(0, convert.ErrUnsupported, "top-level value of type %s is not a dictionary", n.Type)
		}
		rootNode = n
		roots = nil
	}
	for _, r := range roots {
		w.phys = append(w.phys[:0], seg{key: r.key})
		n, err := w.value(r.v, []string{r.key}, ctx{})
		if err != nil {
			return nil, err
		}
		rootNode.Items = append(rootNode.Items, dictItem(&convert.Node{Kind: "symbol", Value: r.key}, n))
	}
	// Optimisers go last, so that the model's arrays they refer to are
	// named by their place in the model (spec/convert-bson.md).
	w.phase2 = true
	for i := 0; i < len(w.pending); i++ {
		p := w.pending[i]
		w.phys = append(w.phys[:0], p.phys...)
		n, err := w.optimiser(p.td, p.ti, p.parts, p.c)
		if err != nil {
			return nil, err
		}
		*p.node = *n
	}
	w.phys = w.phys[:0]
	if w.gpuModel > 0 {
		return nil, w.firstGPU
	}
	if len(w.m.Tensors) == 0 && w.gpuAny() {
		return nil, w.firstGPU
	}
	w.m.Structure = rootNode
	for _, t := range w.m.Tensors {
		w.m.Report.Tensors = append(w.m.Report.Tensors, convert.ReportTensor{
			Name: t.Name, DType: t.DType.String(), Shape: t.Shape, Bytes: int64(len(t.Data)), Aliases: t.Aliases, Role: t.Role,
		})
	}
	return w.m, nil
}

func (w *walker) gpuAny() bool { return w.firstGPU != nil }

func dictItem(k, v *convert.Node) *convert.Node {
	return &convert.Node{Kind: "tuple", Items: []*convert.Node{k, v}}
}

func child(parts []string, p string) []string {
	return append(parts[:len(parts):len(parts)], p)
}

func (w *walker) push(s seg) { w.phys = append(w.phys, s) }
func (w *walker) pop()       { w.phys = w.phys[:len(w.phys)-1] }

// drop reports something not carried into the output (rule C2).
func (w *walker) drop(parts []string, kind, detail string) *convert.Node {
	if w.quiet == 0 {
		w.m.Report.Dropped = append(w.m.Report.Dropped, convert.Dropped{Path: convert.NameJoin(parts...), Kind: kind, Detail: detail})
	}
	return &convert.Node{Kind: "dropped", Dropped: kind}
}

// code reports serialized code; in strict mode it is an error.
func (w *walker) code(parts []string, off int, detail string) (*convert.Node, error) {
	w.m.Report.HasCode = true
	if w.opts.Strict {
		return nil, w.errAt(off, convert.ErrHasCode, "%s at %s", detail, convert.NameJoin(parts...))
	}
	return w.drop(parts, convert.DropCode, detail), nil
}

// backref resolves a backref document to its _backrefs entry.
func (w *walker) backref(td tdoc) (int, val, error) {
	r, ok := w.asInt(td.f[kRef])
	if !ok {
		return 0, val{}, w.errAt(td.f[kRef].off, convert.ErrMalformed, "backref is a %s, not an integer", td.f[kRef].t)
	}
	if !w.brBuilt {
		w.brBuilt = true
		if w.hasBR {
			err := w.eachList(w.brList, func(_ int, e val) error {
				w.brIdx = append(w.brIdx, brEntry{off: uint32(e.off), n: uint32(len(e.b)), t: e.t})
				return nil
			})
			if err != nil {
				return 0, val{}, err
			}
			w.brState = make([]uint8, len(w.brIdx))
		}
	}
	if r < 1 || r > int64(len(w.brIdx)) {
		return 0, val{}, w.errAt(td.off, convert.ErrMalformed, "backref %d out of range (%d entries)", r, len(w.brIdx))
	}
	e := w.brIdx[r-1]
	return int(r), val{t: e.t, b: w.data[e.off : e.off+e.n], off: int(e.off)}, nil
}

// value walks one value and returns its structure node.
func (w *walker) value(v val, parts []string, c ctx) (*convert.Node, error) {
	w.values++
	w.work++
	if w.values > w.lim.MaxValues {
		return nil, w.errAt(v.off, convert.ErrLimit, "more than %d values", w.lim.MaxValues)
	}
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > w.lim.MaxDepth {
		return nil, w.errAt(v.off, convert.ErrLimit, "nesting deeper than %d", w.lim.MaxDepth)
	}
	switch v.t {
	case mbson.TypeDouble:
		f, _ := asDouble(v)
		return &convert.Node{Kind: "scalar", DType: "F64", Value: strconv.FormatFloat(f, 'g', -1, 64)}, nil
	case mbson.TypeInt64, mbson.TypeInt32:
		i, _ := w.asInt(v)
		dt := "I64"
		if v.t == mbson.TypeInt32 {
			dt = "I32"
		}
		return &convert.Node{Kind: "scalar", DType: dt, Value: strconv.FormatInt(i, 10)}, nil
	case mbson.TypeBoolean:
		b, _ := v.raw().BooleanOK()
		return &convert.Node{Kind: "scalar", DType: "BOOL", Value: strconv.FormatBool(b)}, nil
	case mbson.TypeNull:
		return &convert.Node{Kind: "nothing"}, nil
	case mbson.TypeString:
		s, ok := asString(v)
		if !ok {
			return nil, w.errAt(v.off, convert.ErrMalformed, "bad string")
		}
		return &convert.Node{Kind: "string", Value: s}, nil
	case mbson.TypeBinary:
		// A Vector{UInt8}, which BSON.jl writes as plain binary.
		b, ok := asBinary(v)
		if !ok {
			return nil, w.errAt(v.off, convert.ErrMalformed, "binary of subtype other than 0")
		}
		return w.leaf(v.off, parts, c, format.U8, "Core.UInt8", []int64{int64(len(b))}, b)
	case mbson.TypeArray:
		// A Vector{Any}.
		return w.items(v, parts, c, &convert.Node{Kind: "vector"})
	case mbson.TypeEmbeddedDocument:
		td, tagged, err := w.parseTagged(v)
		if err != nil {
			return nil, err
		}
		if !tagged {
			return w.symDict(v, parts, c)
		}
		return w.tagged(v, td, parts, c)
	}
	return nil, w.errAt(v.off, convert.ErrUnsupported, "bson type %s", v.t)
}

// items walks a list whose elements are named 1, 2, ... (rule N4).
func (w *walker) items(v val, parts []string, c ctx, n *convert.Node) (*convert.Node, error) {
	err := w.eachList(v, func(i int, e val) error {
		w.push(seg{idx: i})
		item, err := w.value(e, child(parts, strconv.Itoa(i+1)), c)
		w.pop()
		n.Items = append(n.Items, item)
		return err
	})
	return n, err
}

// symDict walks an untagged document: a Dict{Symbol,Any} whose keys name
// their values (rule N5).
func (w *walker) symDict(v val, parts []string, c ctx) (*convert.Node, error) {
	n := &convert.Node{Kind: "dict", Type: "Base.Dict"}
	seen := map[string]bool{}
	err := w.each(v, func(key []byte, e val) error {
		k := string(key)
		if seen[k] {
			return w.errAt(e.off, convert.ErrMalformed, "duplicate key %q", k)
		}
		seen[k] = true
		w.push(seg{key: k})
		item, err := w.value(e, child(parts, k), c)
		w.pop()
		n.Items = append(n.Items, dictItem(&convert.Node{Kind: "symbol", Value: k}, item))
		return err
	})
	return n, err
}

func (w *walker) tagged(v val, td tdoc, parts []string, c ctx) (*convert.Node, error) {
	switch td.tag {
	case tagBackref:
		return w.follow(v, td, parts, c)
	case tagArray:
		return w.array(v, td, parts, c)
	case tagStruct:
		return w.structure(v, td, parts, c)
	case tagTuple, tagSvec:
		typ := "Core.Tuple"
		if td.tag == tagSvec {
			typ = "Core.SimpleVector"
		}
		w.push(seg{key: "data"})
		defer w.pop()
		return w.items(td.f[kData], parts, c, &convert.Node{Kind: "tuple", Type: typ})
	case tagSymbol:
		s, ok := asString(td.f[kName])
		if !ok {
			return nil, w.errAt(td.f[kName].off, convert.ErrMalformed, "symbol name is a %s", td.f[kName].t)
		}
		return &convert.Node{Kind: "symbol", Value: s}, nil
	case tagRef:
		p, err := w.typePath(td.f[kPath])
		if err != nil {
			return nil, err
		}
		return w.drop(parts, convert.DropGlobalRef, p), nil
	case tagAnonymous:
		w.peekVersion(td.f[kTypename])
		return w.code(parts, v.off, "anonymous function type")
	case tagDatatype, tagUnionall, tagBottom:
		// A type as a value: kept by name.
		ti, err := w.resolveType(v)
		if err != nil {
			return nil, err
		}
		return &convert.Node{Kind: "symbol", Type: "DataType", Value: ti.name}, nil
	}
	return nil, w.errAt(v.off, convert.ErrUnsupported, "tag %d", td.tag)
}

// follow walks the _backrefs entry a backref names. An array reached again
// is not written again: the path becomes one of its aliases (rule N8). Any
// other entry is walked once per mode (model, optimiser state, gradient);
// reached again in that mode, the tensors found below it become aliases
// under the new path and its node keeps only its kind and type (rule R3).
func (w *walker) follow(v val, td tdoc, parts []string, c ctx) (*convert.Node, error) {
	k, target, err := w.backref(td)
	if err != nil {
		return nil, err
	}
	if idx, ok := w.arrTensor[target.off]; ok {
		return w.alias(idx, parts, c, target.off)
	}
	st := w.brState[k-1]
	if st&brOnStack != 0 {
		// A cycle: the entry is being walked above. Its back-edge is a
		// reference to the path where the walk entered it (rule R2).
		return &convert.Node{Kind: "ref", Ref: convert.NameJoin(w.brPath[k]...)}, nil
	}
	mk := k*4 + int(c.mode)
	if st&(1<<c.mode) != 0 {
		vis := w.memo[mk]
		for _, r := range vis.refs {
			w.work++
			if _, err := w.alias(r.idx, append(parts[:len(parts):len(parts)], r.suffix...), c, target.off); err != nil {
				return nil, err
			}
		}
		n := *vis.node
		n.Ref = convert.NameJoin(vis.path...)
		return &n, nil
	}
	if st != 0 {
		// Walked before in another mode: its drops are reported already.
		w.quiet++
		defer func() { w.quiet-- }()
	}
	vis := &visit{path: parts, base: len(parts)}
	w.brState[k-1] = st | brOnStack
	w.brPath[k] = parts
	w.frames = append(w.frames, vis)
	w.push(seg{br: k})
	n, err := w.value(target, parts, c)
	w.pop()
	w.frames = w.frames[:len(w.frames)-1]
	w.brState[k-1] = st | 1<<c.mode
	delete(w.brPath, k)
	if err != nil {
		return nil, err
	}
	shallow := *n
	shallow.Fields, shallow.Items = nil, nil
	vis.node = &shallow
	w.memo[mk] = vis
	return n, nil
}

// record notes, in every entry being walked, that the tensor idx is reached
// at parts, for replay when the entry is reached again. Each record counts
// towards MaxAliases: they bound the aliases a DAG of backrefs can produce.
func (w *walker) record(parts []string, c ctx, idx, off int) error {
	if c.mode == modeGradient || (c.mode == modeOptimizer && !c.prefix) {
		return nil
	}
	for _, f := range w.frames {
		if err := w.countAlias(off); err != nil {
			return err
		}
		f.refs = append(f.refs, tref{suffix: parts[f.base:], idx: idx})
	}
	return nil
}

func (w *walker) countAlias(off int) error {
	w.aliases++
	if w.aliases > w.lim.MaxAliases {
		return w.errAt(off, convert.ErrLimit, "more than %d paths to shared arrays", w.lim.MaxAliases)
	}
	return nil
}

// tensorName applies rule N9's prefix.
func tensorName(parts []string, c ctx) string {
	if c.prefix {
		return convert.NameJoin(append([]string{"optimizer"}, parts...)...)
	}
	return convert.NameJoin(parts...)
}

func (w *walker) alias(idx int, parts []string, c ctx, off int) (*convert.Node, error) {
	t := &w.m.Tensors[idx]
	n := &convert.Node{Kind: "array", Type: "Array", DType: t.DType.String(), Tensor: t.Name}
	if c.mode == modeGradient || (c.mode == modeOptimizer && !c.prefix) {
		return n, nil
	}
	name := tensorName(parts, c)
	if other, ok := w.names[name]; ok {
		if other != idx {
			return nil, w.errAt(off, convert.ErrNameClash, "%q names two arrays", name)
		}
		return n, nil
	}
	if err := w.countAlias(off); err != nil {
		return nil, err
	}
	w.names[name] = idx
	t.Aliases = append(t.Aliases, name)
	return n, w.record(parts, c, idx, off)
}

// leaf is a plain-bits array: written as a tensor, or dropped by the keep
// rule. Julia's column-major size (d1, ..., dn) becomes the row-major shape
// [dn, ..., d1]; the bytes do not move.
func (w *walker) leaf(off int, parts []string, c ctx, dt format.DType, typ string, dims []int64, b []byte) (*convert.Node, error) {
	if idx, ok := w.arrTensor[off]; ok {
		return w.alias(idx, parts, c, off)
	}
	n := &convert.Node{Kind: "array", Type: "Array", DType: dt.String()}
	switch {
	case c.mode == modeGradient:
		w.drop(parts, convert.DropGradient, typ)
		n.Dropped = convert.DropGradient
		return n, nil
	case c.mode == modeOptimizer && !c.prefix:
		w.drop(parts, convert.DropOptimizer, typ)
		n.Dropped = convert.DropOptimizer
		return n, nil
	}
	if len(parts) == 0 {
		return nil, w.errAt(off, convert.ErrMalformed, "array without a name")
	}
	if len(w.m.Tensors) >= w.lim.MaxTensors {
		return nil, w.errAt(off, convert.ErrLimit, "more than %d arrays", w.lim.MaxTensors)
	}
	name := tensorName(parts, c)
	if _, ok := w.names[name]; ok {
		return nil, w.errAt(off, convert.ErrNameClash, "%q names two arrays", name)
	}
	shape := make([]int64, len(dims))
	for i, d := range dims {
		shape[len(dims)-1-i] = d
	}
	idx := len(w.m.Tensors)
	role := convert.RoleParameter
	if c.state {
		role = convert.RoleState
	}
	w.m.Tensors = append(w.m.Tensors, convert.Tensor{Name: name, DType: dt, Shape: shape, Data: b, Role: role})
	w.names[name] = idx
	w.arrTensor[off] = idx
	n.Tensor = name
	return n, w.record(parts, c, idx, off)
}

// array decodes an array document: element type, Julia size, and either
// the raw little-endian column-major bytes of a plain-bits element type or
// a list of elements.
func (w *walker) array(v val, td tdoc, parts []string, c ctx) (*convert.Node, error) {
	w.push(seg{key: "type"})
	et, err := w.resolveType(td.f[kType])
	w.pop()
	if err != nil {
		return nil, err
	}
	w.push(seg{key: "size"})
	dims, err := w.dims(td.f[kSize])
	if err != nil {
		w.pop()
		return nil, err
	}
	numel, err := w.numel(dims, td.f[kSize].off)
	w.pop()
	if err != nil {
		return nil, err
	}
	data := td.f[kData]
	w.push(seg{key: "data"})
	defer w.pop()
	switch data.t {
	case mbson.TypeBinary:
		b, ok := asBinary(data)
		if !ok {
			return nil, w.errAt(data.off, convert.ErrMalformed, "binary of subtype other than 0")
		}
		dt, ok, err := w.dtypeOf(et)
		if err != nil {
			return nil, err
		}
		if !ok {
			if zeroSize[et.name] && len(b) != 0 {
				return nil, w.errAt(data.off, convert.ErrMalformed, "%d bytes of data for an array of %s", len(b), et.name)
			}
			n := w.drop(parts, convert.DropUnsupportedType, et.name)
			n.Type = "Array"
			return n, nil
		}
		hi, lo := bitsMul(numel, uint64(dt.Size()))
		if hi != 0 || lo != uint64(len(b)) {
			return nil, w.errAt(data.off, convert.ErrMalformed, "array data of %d bytes for size %v of %s", len(b), dims, et.name)
		}
		return w.leaf(v.off, parts, c, dt, et.name, dims, b)
	case mbson.TypeArray:
		count, err := w.listLen(data)
		if err != nil {
			return nil, err
		}
		if uint64(count) != numel {
			return nil, w.errAt(data.off, convert.ErrMalformed, "%d elements for size %v", count, dims)
		}
		return w.items(data, parts, c, &convert.Node{Kind: "vector", Type: "Array"})
	}
	return nil, w.errAt(data.off, convert.ErrMalformed, "array data is a %s", data.t)
}

// Types whose values are code, pointers or GPU memory.
var (
	codeTypes = map[string]bool{
		"Core.Method": true, "Core.CodeInfo": true, "Core.MethodInstance": true, "Core.MethodTable": true,
		"Core.TypeName": true, "Core.Expr": true, "Core.CodeInstance": true, "Core.OpaqueClosure": true,
		"Core.LineInfoNode": true, "Core.SSAValue": true, "Core.SlotNumber": true, "Core.ReturnNode": true,
		"Core.GotoNode": true, "Core.GotoIfNot": true, "Core.PhiNode": true, "Core.QuoteNode": true,
		"Core.Binding": true, "Core.Module": true,
	}
	ptrTypes = map[string]bool{"Core.Ptr": true, "CUDA.CuPtr": true, "Core.LLVMPtr": true, "CUDA.PtrOrCuPtr": true}
	gpuTypes = map[string]bool{
		"CUDA.CuArray": true, "CuArrays.CuArray": true, "CUDA.CuDeviceArray": true,
		"AMDGPU.ROCArray": true, "Metal.MtlArray": true, "oneAPI.oneArray": true,
	}
	dictTypes = map[string]bool{"Base.Dict": true, "Base.IdDict": true}
)

// isFunction reports whether a type is a function's singleton type, whose
// last name part starts with '#' ("NNlib.#relu").
func isFunction(name string) (string, bool) {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if strings.HasPrefix(last, "#") && len(last) > 1 {
		return last[1:], true
	}
	return "", false
}

func (w *walker) structure(v val, td tdoc, parts []string, c ctx) (*convert.Node, error) {
	w.push(seg{key: "type"})
	ti, err := w.resolveType(td.f[kType])
	w.pop()
	if err != nil {
		return nil, err
	}
	data := td.f[kData]
	if ti.kind == tagAnonymous {
		w.peekVersion(ti.typename)
		n, err := w.code(parts, v.off, "closure (instance of an anonymous function)")
		if n != nil {
			// It keeps its place, in a Chain too (CONVERSION.md 4).
			n.Kind, n.Anonymous = "function", true
		}
		return n, err
	}
	if ti.kind != tagDatatype {
		return nil, w.errAt(v.off, convert.ErrMalformed, "struct of type %s", ti.name)
	}
	name := ti.name
	switch {
	case codeTypes[name]:
		if name == "Core.TypeName" {
			w.peekVersion(v)
		}
		return w.code(parts, v.off, name)
	case name == "Core.GlobalRef":
		return w.drop(parts, convert.DropGlobalRef, name), nil
	case ptrTypes[name]:
		return w.drop(parts, convert.DropRawPointer, name), nil
	case gpuTypes[name]:
		if w.firstGPU == nil {
			w.firstGPU = w.errAt(v.off, convert.ErrNoWeights, "%s at %s holds only a device pointer", name, convert.NameJoin(parts...))
		}
		if c.mode == modeModel {
			w.gpuModel++
		}
		return w.drop(parts, convert.DropGPUArray, name), nil
	case name == "BSON.Undef":
		return w.drop(parts, convert.DropUndef, name), nil
	}
	if fn, ok := isFunction(name); ok {
		n := w.drop(parts, convert.DropFunction, name)
		n.Kind, n.Dropped, n.Type, n.Function = "function", "", name, fn
		return n, nil
	}
	if data.t == mbson.TypeBinary {
		// A primitive value such as a Float32 scalar: its bytes.
		b, ok := asBinary(data)
		if !ok {
			return nil, w.errAt(data.off, convert.ErrMalformed, "binary of subtype other than 0")
		}
		dt, known := plainTypes[name]
		if !known {
			n := w.drop(parts, convert.DropNonNumeric, name)
			n.Type = name
			return n, nil
		}
		if len(b) != dt.Size() {
			return nil, w.errAt(data.off, convert.ErrMalformed, "%d bytes for a %s", len(b), name)
		}
		return &convert.Node{Kind: "scalar", Type: name, DType: dt.String(), Value: convert.ScalarText(dt, b)}, nil
	}
	if data.t != mbson.TypeArray {
		return nil, w.errAt(data.off, convert.ErrMalformed, "struct data is a %s", data.t)
	}
	if convert.IsOptimiser(name) && c.mode != modeGradient {
		if !w.phase2 {
			n := &convert.Node{}
			w.pending = append(w.pending, pending{v: v, ti: ti, td: td, parts: parts, c: c, node: n, phys: slices.Clone(w.phys)})
			return n, nil
		}
		return w.optimiser(td, ti, parts, c)
	}
	return w.fields(td, ti, parts, c)
}

// optimiser walks an optimiser's fields as optimiser state (rule N9).
func (w *walker) optimiser(td tdoc, ti *typeInfo, parts []string, c ctx) (*convert.Node, error) {
	if c.mode != modeGradient {
		c.mode = modeOptimizer
		c.prefix = w.opts.IncludeOptimizer
	}
	return w.fields(td, ti, parts, c)
}

// fields walks a struct's stored fields, named from the table of known
// types or positionally (rule N3).
func (w *walker) fields(td tdoc, ti *typeInfo, parts []string, c ctx) (*convert.Node, error) {
	data := td.f[kData]
	w.push(seg{key: "data"})
	defer w.pop()
	var elems []val
	if err := w.eachList(data, func(_ int, e val) error { elems = append(elems, e); return nil }); err != nil {
		return nil, err
	}
	name := ti.name
	names, ok := convert.FieldNamesParams(name, len(elems), ti.nparams)
	if wr, isWrapper := convert.WrapperOf(name); isWrapper && ok && slices.Contains(names, wr.Value) {
		return w.wrapped(elems, names, wr, parts, c)
	}
	if dictTypes[name] && len(elems) == 2 && w.isSeq(elems[0]) && w.isSeq(elems[1]) {
		return w.dict(name, elems, parts, c)
	}
	if convert.BufferArray(name) && ok {
		if n, ok, err := w.bufferArray(ti, elems, names, parts, c); ok || err != nil {
			return n, err
		}
	}
	kind := "struct"
	if name == "Core.NamedTuple" {
		kind = "namedtuple"
		names, ok = w.tupleNames(ti, len(elems))
	}
	if !ok {
		names = make([]string, len(elems))
		for i := range names {
			names[i] = "field" + strconv.Itoa(i+1)
		}
	}
	n := &convert.Node{Kind: kind, Type: name, Fields: make([]convert.Field, 0, len(elems))}
	for i, e := range elems {
		w.push(seg{idx: i})
		fc := c
		if convert.IsStateField(name, names[i]) {
			fc.state = true
		}
		f, err := w.value(e, child(parts, names[i]), fc)
		w.pop()
		if err != nil {
			return nil, err
		}
		n.Fields = append(n.Fields, convert.Field{Name: names[i], Node: f})
	}
	return n, nil
}

// wrapped makes a parameter wrapper transparent (rule N7): the value
// field takes the wrapper's path; arrays of its gradient fields are
// dropped (gradient); its optimiser fields, such as AutoGrad.Param's opt,
// are optimiser state (rule N9), whatever their type; other fields are
// walked below the wrapper's path.
func (w *walker) wrapped(elems []val, names []string, wr convert.Wrapper, parts []string, c ctx) (*convert.Node, error) {
	var value *convert.Node
	for i, e := range elems {
		fc, p := c, child(parts, names[i])
		switch {
		case names[i] == wr.Value:
			p = parts
		case slices.Contains(wr.Gradient, names[i]):
			fc.mode = modeGradient
		case slices.Contains(wr.Optimizer, names[i]) && c.mode == modeModel:
			fc.mode, fc.prefix = modeOptimizer, w.opts.IncludeOptimizer
		}
		w.push(seg{idx: i})
		n, err := w.value(e, p, fc)
		w.pop()
		if err != nil {
			return nil, err
		}
		if names[i] == wr.Value {
			value = n
		}
	}
	return value, nil
}

// isSeq reports whether v can be a Dict's key or value sequence as BSON.jl
// writes it, inline: a BSON list (Vector{Any}) or an array document
// (Vector{K} for a concrete K).
func (w *walker) isSeq(v val) bool {
	if v.t == mbson.TypeArray {
		return true
	}
	if !isDoc(v) {
		return false
	}
	td, tagged, err := w.parseTagged(v)
	return err == nil && tagged && td.tag == tagArray
}

// seq is a Dict's keys or values: list elements, or the packed elements of
// a plain-bits array, or n values of a zero-size type.
type seq struct {
	elems []val  // a list, or an array document with list data
	list  bool   // elems is used
	n     int    // number of elements
	raw   []byte // packed elements
	dt    format.DType
	known bool   // dt is the element type of raw
	etype string // element type name of an array document
	off   int
}

// seqOf reads a Dict's key or value sequence (isSeq already holds).
func (w *walker) seqOf(v val) (seq, error) {
	s := seq{off: v.off}
	if v.t == mbson.TypeArray {
		s.list = true
		err := w.eachList(v, func(_ int, e val) error { s.elems = append(s.elems, e); return nil })
		s.n = len(s.elems)
		return s, err
	}
	td, tagged, err := w.parseTagged(v)
	if err != nil {
		return s, err
	}
	if !tagged || td.tag != tagArray {
		return s, w.errAt(v.off, convert.ErrMalformed, "dict keys or values are not an array")
	}
	w.push(seg{key: "type"})
	et, err := w.resolveType(td.f[kType])
	w.pop()
	if err != nil {
		return s, err
	}
	s.etype = et.name
	w.push(seg{key: "size"})
	defer w.pop()
	dims, err := w.dims(td.f[kSize])
	if err != nil {
		return s, err
	}
	numel, err := w.numel(dims, td.f[kSize].off)
	if err != nil {
		return s, err
	}
	data := td.f[kData]
	switch data.t {
	case mbson.TypeArray:
		s.list = true
		err := w.eachList(data, func(_ int, e val) error { s.elems = append(s.elems, e); return nil })
		if err == nil && uint64(len(s.elems)) != numel {
			err = w.errAt(data.off, convert.ErrMalformed, "%d elements for size %v", len(s.elems), dims)
		}
		s.n = len(s.elems)
		return s, err
	case mbson.TypeBinary:
		b, ok := asBinary(data)
		if !ok {
			return s, w.errAt(data.off, convert.ErrMalformed, "binary of subtype other than 0")
		}
		dt, known, err := w.dtypeOf(et)
		if err != nil {
			return s, err
		}
		switch {
		case known:
			hi, lo := bitsMul(numel, uint64(dt.Size()))
			if hi != 0 || lo != uint64(len(b)) {
				return s, w.errAt(data.off, convert.ErrMalformed, "array data of %d bytes for size %v of %s", len(b), dims, et.name)
			}
			s.raw, s.dt, s.known = b, dt, true
		case zeroSize[et.name]:
			if len(b) != 0 {
				return s, w.errAt(data.off, convert.ErrMalformed, "%d bytes of data for an array of %s", len(b), et.name)
			}
			// Elements of a zero-size type cost no bytes; bound all of
			// them by the file so that the work stays in proportion
			// (rule C3).
			w.zeroElems += numel
			if numel > uint64(len(w.data)) || w.zeroElems > uint64(len(w.data)) {
				return s, w.errAt(data.off, convert.ErrLimit, "%d elements of %s in a %d-byte file", numel, et.name, len(w.data))
			}
		default:
			// Elements of unknown size: numel cannot exceed the bytes.
			if numel > uint64(len(b)) && len(b) > 0 || numel > uint64(len(w.data)) {
				return s, w.errAt(data.off, convert.ErrMalformed, "%d elements of %s in %d bytes", numel, et.name, len(b))
			}
			s.raw = b
		}
		s.n = int(numel)
		return s, nil
	}
	return s, w.errAt(data.off, convert.ErrMalformed, "array data is a %s", data.t)
}

// elem walks element i of a sequence; phys is the document path of the
// sequence for error locations.
func (w *walker) elem(s seq, i int, parts []string, c ctx) (*convert.Node, error) {
	if s.list {
		w.push(seg{idx: i})
		defer w.pop()
		return w.value(s.elems[i], parts, c)
	}
	w.values++
	w.work++
	if w.values > w.lim.MaxValues {
		return nil, w.errAt(s.off, convert.ErrLimit, "more than %d values", w.lim.MaxValues)
	}
	switch {
	case s.known:
		sz := s.dt.Size()
		return &convert.Node{Kind: "scalar", Type: s.etype, DType: s.dt.String(), Value: convert.ScalarText(s.dt, s.raw[i*sz:(i+1)*sz])}, nil
	case zeroSize[s.etype]:
		return &convert.Node{Kind: "nothing", Type: s.etype}, nil
	}
	// Reported once for the whole sequence by dict.
	return &convert.Node{Kind: "dropped", Type: s.etype, Dropped: convert.DropUnsupportedType}, nil
}

// dict walks a Dict or IdDict, which BSON.jl stores as [keys, values],
// each a list or an array. A string or symbol key names its value; any
// other entry i is named "entry<i>" and its key "key<i>" (rule N5).
func (w *walker) dict(typ string, elems []val, parts []string, c ctx) (*convert.Node, error) {
	w.push(seg{idx: 0})
	keys, err := w.seqOf(elems[0])
	w.pop()
	if err != nil {
		return nil, err
	}
	w.push(seg{idx: 1})
	vals, err := w.seqOf(elems[1])
	w.pop()
	if err != nil {
		return nil, err
	}
	if keys.n != vals.n {
		return nil, w.errAt(elems[1].off, convert.ErrMalformed, "dict with %d keys and %d values", keys.n, vals.n)
	}
	for _, s := range []seq{keys, vals} {
		if !s.list && !s.known && !zeroSize[s.etype] && s.n > 0 {
			what := "keys"
			if s.off == vals.off {
				what = "values"
			}
			w.drop(parts, convert.DropUnsupportedType, what+" of type "+s.etype)
		}
	}
	n := &convert.Node{Kind: "dict", Type: typ, Items: make([]*convert.Node, 0, min(keys.n, 1024))}
	for i := range keys.n {
		var kn *convert.Node
		part := ""
		if keys.list {
			if s, ok := asString(keys.elems[i]); ok {
				kn, part = &convert.Node{Kind: "string", Value: s}, s
			} else if s, ok := w.symbolName(keys.elems[i]); ok {
				kn, part = &convert.Node{Kind: "symbol", Value: s}, s
			}
		}
		if kn == nil {
			w.push(seg{idx: 0})
			kn, err = w.elem(keys, i, child(parts, "key"+strconv.Itoa(i+1)), c)
			w.pop()
			if err != nil {
				return nil, err
			}
			part = "entry" + strconv.Itoa(i+1)
		}
		w.push(seg{idx: 1})
		vn, err := w.elem(vals, i, child(parts, part), c)
		w.pop()
		if err != nil {
			return nil, err
		}
		n.Items = append(n.Items, dictItem(kn, vn))
	}
	return n, nil
}

func (w *walker) symbolName(v val) (string, bool) {
	if !isDoc(v) {
		return "", false
	}
	td, tagged, err := w.parseTagged(v)
	if err != nil || !tagged || td.tag != tagSymbol {
		return "", false
	}
	return asString(td.f[kName])
}

// tupleNames reads a NamedTuple's field names from its first type
// parameter, a tuple of symbols.
func (w *walker) tupleNames(ti *typeInfo, n int) ([]string, bool) {
	p, ok := w.firstParam(ti)
	if !ok {
		return nil, false
	}
	d, _, err := w.deref(p)
	if err != nil || !isDoc(d) {
		return nil, false
	}
	// Memoized: many NamedTuples may share one tuple of names.
	if names, ok := w.tnames[d.off]; ok {
		return names, names != nil && len(names) == n
	}
	td, tagged, err := w.parseTagged(d)
	if err != nil || !tagged || td.tag != tagTuple {
		w.tnames[d.off] = nil
		return nil, false
	}
	var names []string
	err = w.eachList(td.f[kData], func(_ int, e val) error {
		s, ok := w.symbolName(e)
		if !ok {
			return convert.ErrMalformed
		}
		names = append(names, s)
		return nil
	})
	if err != nil {
		names = nil
	}
	w.tnames[d.off] = names
	if names == nil || len(names) != n {
		return nil, false
	}
	return names, true
}

// peekVersion records the Julia version a serialized TypeName states
// (its first field) without walking the code it holds.
func (w *walker) peekVersion(v val) {
	d, _, err := w.deref(v)
	if err != nil || !isDoc(d) || w.peeked[d.off] {
		return
	}
	w.peeked[d.off] = true
	td, tagged, err := w.parseTagged(d)
	if err != nil || !tagged || td.tag != tagStruct || td.f[kData].t != mbson.TypeArray {
		return
	}
	_ = w.eachList(td.f[kData], func(i int, e val) error {
		if i == 0 {
			if s, ok := asString(e); ok && len(s) < 64 {
				if w.m.Report.Versions == nil {
					w.m.Report.Versions = map[string]string{}
				}
				w.m.Report.Versions["julia"] = s
			}
		}
		return errStop
	})
}

var errStop = &Error{Msg: "stop"}

// bufferArray reads an array that keeps its data as bytes beside its
// dimensions (rule N11): Knet's KnetArray{T,N}, whose fields are ptr, a
// KnetPtr whose first field is the Vector{UInt8} of the data, and dims, a
// tuple of integers. The tensor has T's type and the dimensions reversed,
// and takes the array's path. ok is false for a value not laid out so (a
// KnetPtr holding a device pointer); it is then walked as a struct.
func (w *walker) bufferArray(ti *typeInfo, elems []val, names []string, parts []string, c ctx) (*convert.Node, bool, error) {
	pi, di := slices.Index(names, "ptr"), slices.Index(names, "dims")
	if pi < 0 || di < 0 {
		return nil, false, nil
	}
	p, ok := w.firstParam(ti)
	if !ok {
		return nil, false, nil
	}
	et, err := w.resolveType(p)
	if err != nil {
		return nil, false, nil
	}
	dt, known := convert.ElementType(et.name)
	if !known {
		return nil, false, nil
	}
	// dims: a tuple of integers.
	d, _, err := w.deref(elems[di])
	if err != nil || !isDoc(d) {
		return nil, false, err
	}
	td, tagged, err := w.parseTagged(d)
	if err != nil || !tagged || td.tag != tagTuple {
		return nil, false, err
	}
	var dims []int64
	err = w.eachList(td.f[kData], func(_ int, e val) error {
		x, ok := w.asInt(e)
		if !ok || x < 0 || len(dims) >= w.lim.MaxDims {
			return errStop
		}
		dims = append(dims, x)
		return nil
	})
	if err != nil {
		return nil, false, nil
	}
	// ptr: a KnetPtr struct whose first field is the bytes.
	pd, _, err := w.deref(elems[pi])
	if err != nil || !isDoc(pd) {
		return nil, false, err
	}
	ptd, tagged, err := w.parseTagged(pd)
	if err != nil || !tagged || ptd.tag != tagStruct || ptd.f[kData].t != mbson.TypeArray {
		return nil, false, err
	}
	var buf val
	found := false
	_ = w.eachList(ptd.f[kData], func(i int, e val) error {
		buf, found = e, true
		return errStop
	})
	if !found {
		return nil, false, nil
	}
	var raw []byte
	switch {
	case buf.t == mbson.TypeBinary:
		b, ok := asBinary(buf)
		if !ok {
			return nil, false, nil
		}
		raw = b
	case isDoc(buf):
		// An array document of UInt8.
		atd, tagged, err := w.parseTagged(buf)
		if err != nil || !tagged || atd.tag != tagArray || atd.f[kData].t != mbson.TypeBinary {
			return nil, false, err
		}
		at, err := w.resolveType(atd.f[kType])
		if err != nil || at.name != "Core.UInt8" {
			return nil, false, err
		}
		raw, _ = asBinary(atd.f[kData])
		buf = atd.f[kData]
	default:
		return nil, false, nil
	}
	numel, err := w.numel(dims, d.off)
	if err != nil {
		return nil, true, err
	}
	hi, lo := bitsMul(numel, uint64(dt.Size()))
	if hi != 0 || lo != uint64(len(raw)) {
		return nil, true, w.errAt(buf.off, convert.ErrMalformed, "byte buffer of %d bytes for size %v of %s", len(raw), dims, et.name)
	}
	n, err := w.leaf(buf.off, parts, c, dt, et.name, dims, raw)
	if n != nil {
		n.Type = ti.name
	}
	return n, true, err
}
