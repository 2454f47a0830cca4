// Package structure reads the model structure that the converters record
// as the metadata value safeweights.structure (spec/CONVERSION.md section
// 4; JSON Schema spec/structure.schema.json). The value comes from a file,
// so Parse treats it as untrusted: it bounds nesting depth, node count and
// size before it builds the tree, and checks every node against the
// schema's rules.
package structure

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/format"
)

// Errors that Parse wraps; test them with errors.Is.
var (
	// ErrMalformed: the value is not JSON, or a node breaks a rule of the
	// schema.
	ErrMalformed = errors.New("structure: malformed")
	// ErrLimit: the value is over a limit.
	ErrLimit = errors.New("structure: limit exceeded")
)

// Error says where a structure is wrong: Path is the JSON path of the node
// ("$.fields[0].node.items[3]"), empty for a problem of the whole value.
type Error struct {
	Path   string
	Reason string
	Err    error // ErrMalformed or ErrLimit
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "structure: " + e.Reason
	}
	return "structure: " + e.Path + ": " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// Limits bound what a structure may ask for. A zero field means its
// default.
type Limits struct {
	// MaxBytes bounds the JSON text. Default 64 MiB.
	MaxBytes int
	// MaxDepth bounds the nesting of JSON arrays and objects. A struct
	// nests three levels per level of the model (its object, its fields
	// array, a field's object), so the default, 4096, holds what the
	// converters write under their default depth limits (512 values for
	// BSON, 128 for JLD2).
	MaxDepth int
	// MaxNodes bounds the number of nodes. Default 1<<22, the BSON
	// converter's default value limit.
	MaxNodes int
}

// DefaultLimits returns the limits used for fields left zero.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 64 << 20, MaxDepth: 4096, MaxNodes: 1 << 22}
}

func (l Limits) withDefaults() (Limits, error) {
	if l.MaxBytes < 0 || l.MaxDepth < 0 || l.MaxNodes < 0 {
		return l, fmt.Errorf("structure: negative limit in %+v", l)
	}
	d := DefaultLimits()
	if l.MaxBytes == 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxDepth == 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxNodes == 0 {
		l.MaxNodes = d.MaxNodes
	}
	return l, nil
}

// Parse reads a structure under the default limits.
func Parse(data []byte) (*convert.Node, error) { return ParseLimits(data, Limits{}) }

// ParseLimits reads a structure under lim. Before any node is built the
// text is scanned once, in constant memory, for its size, nesting depth
// and number of objects, so that the tree built is bounded by lim. Unknown
// members, duplicate members and nodes that break the schema are errors.
func ParseLimits(data []byte, lim Limits) (*convert.Node, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(data) > lim.MaxBytes {
		return nil, &Error{Reason: fmt.Sprintf("%d bytes, over the limit of %d", len(data), lim.MaxBytes), Err: ErrLimit}
	}
	if err := scan(data, lim); err != nil {
		return nil, err
	}
	if err := noDuplicates(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var root convert.Node
	if err := dec.Decode(&root); err != nil {
		return nil, &Error{Reason: err.Error(), Err: ErrMalformed}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &Error{Reason: "data after the value", Err: ErrMalformed}
	}
	v := validator{lim: lim}
	if err := v.node(&root, "$", 0); err != nil {
		return nil, err
	}
	return &root, nil
}

// scan bounds the nesting depth and the number of objects of a JSON text
// without building anything: brackets outside strings are counted.
func scan(data []byte, lim Limits) error {
	depth, objects := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > lim.MaxDepth {
				return &Error{Reason: fmt.Sprintf("nested deeper than %d", lim.MaxDepth), Err: ErrLimit}
			}
			if c == '{' {
				objects++
				// Each node is an object, and so is each field.
				if objects > 2*lim.MaxNodes {
					return &Error{Reason: fmt.Sprintf("more than %d nodes", lim.MaxNodes), Err: ErrLimit}
				}
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// noDuplicates refuses an object with a member twice: encoding/json keeps
// the last, other readers the first, and a structure must mean one thing.
// scan has bounded the depth, so the stack of key sets is bounded too.
func noDuplicates(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool // the next token in this object is a key
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &Error{Reason: err.Error(), Err: ErrMalformed}
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if top != nil && top.obj && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].key = true
				}
				continue
			}
			k, _ := tok.(string)
			if top.keys[k] {
				return &Error{Reason: fmt.Sprintf("member %q twice in one object", k), Err: ErrMalformed}
			}
			top.keys[k] = true
			top.key = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{obj: true, keys: map[string]bool{}, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the object holding it expects a key next.
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].key = true
		}
	}
}

// Kinds lists the node kinds of CONVERSION.md section 4.
var Kinds = []string{"struct", "namedtuple", "tuple", "vector", "dict", "array", "function", "scalar", "string", "symbol", "nothing", "dropped", "ref"}

// DropKinds lists the drop kinds of CONVERSION.md section 3.
var DropKinds = []string{
	convert.DropCode, convert.DropFunction, convert.DropGPUArray, convert.DropRawPointer, convert.DropGlobalRef,
	convert.DropGradient, convert.DropOptimizer, convert.DropUnsupportedType, convert.DropNonNumeric, convert.DropUndef, convert.DropOrphan,
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type validator struct {
	lim   Limits
	nodes int
}

func bad(path, format string, a ...any) error {
	return &Error{Path: path, Reason: fmt.Sprintf(format, a...), Err: ErrMalformed}
}

// node checks one node against the schema's rules (spec/structure.schema.json).
func (v *validator) node(n *convert.Node, path string, depth int) error {
	if n == nil {
		return bad(path, "null where a node belongs")
	}
	v.nodes++
	if v.nodes > v.lim.MaxNodes {
		return &Error{Path: path, Reason: fmt.Sprintf("more than %d nodes", v.lim.MaxNodes), Err: ErrLimit}
	}
	if depth > v.lim.MaxDepth {
		return &Error{Path: path, Reason: fmt.Sprintf("nested deeper than %d", v.lim.MaxDepth), Err: ErrLimit}
	}
	if n.Kind == "" {
		return bad(path, "a node without kind")
	}
	if !contains(Kinds, n.Kind) {
		return bad(path, "unknown kind %q", n.Kind)
	}
	if n.Kind == "ref" && (n.Type != "" || len(n.Fields) > 0 || len(n.Items) > 0 || n.Tensor != "" ||
		n.Function != "" || n.Anonymous || n.Value != "" || n.DType != "" || n.Dropped != "") {
		return bad(path, "a ref node with more than ref")
	}
	if n.Dropped != "" && !contains(DropKinds, n.Dropped) {
		return bad(path, "unknown drop kind %q", n.Dropped)
	}
	if n.Kind == "dropped" && n.Dropped == "" {
		return bad(path, "a dropped node without its drop kind")
	}
	if n.DType != "" {
		if _, ok := format.ParseDType(n.DType); !ok {
			return bad(path, "unknown dtype %q", n.DType)
		}
	}
	switch {
	case len(n.Fields) > 0 && n.Kind != "struct" && n.Kind != "namedtuple":
		return bad(path, "fields on a %s", n.Kind)
	case len(n.Items) > 0 && n.Kind != "tuple" && n.Kind != "vector" && n.Kind != "dict":
		return bad(path, "items on a %s", n.Kind)
	case n.Tensor != "" && n.Kind != "array":
		return bad(path, "a tensor name on a %s", n.Kind)
	case (n.Function != "" || n.Anonymous) && n.Kind != "function":
		return bad(path, "a function name on a %s", n.Kind)
	case n.Function != "" && n.Anonymous:
		return bad(path, "an anonymous function with a name")
	case n.Value != "" && n.Kind != "scalar" && n.Kind != "string" && n.Kind != "symbol":
		return bad(path, "a value on a %s", n.Kind)
	case n.DType != "" && n.Kind != "scalar" && n.Kind != "array":
		return bad(path, "a dtype on a %s", n.Kind)
	}
	for i, f := range n.Fields {
		p := fmt.Sprintf("%s.fields[%d]", path, i)
		if f.Name == "" {
			return bad(p, "a field without a name")
		}
		if err := v.node(f.Node, p+".node", depth+1); err != nil {
			return err
		}
	}
	for i, it := range n.Items {
		p := fmt.Sprintf("%s.items[%d]", path, i)
		if err := v.node(it, p, depth+1); err != nil {
			return err
		}
	}
	return nil
}
