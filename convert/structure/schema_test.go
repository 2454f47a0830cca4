package structure_test

// A validator for the subset of JSON Schema (draft 2020-12) that
// spec/structure.schema.json uses: $ref to $defs, type, enum, const,
// properties, additionalProperties false, required, items, anyOf,
// minLength. A keyword outside the subset fails the test, so the schema
// cannot grow past what is checked here.

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/safeweights/safeweights/convert"
	"github.com/safeweights/safeweights/convert/structure"
	"github.com/safeweights/safeweights/format"
)

type schema struct {
	root map[string]any
}

func loadSchema(t testing.TB) *schema {
	t.Helper()
	b, err := os.ReadFile("../../spec/structure.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	if root["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Fatalf("$schema %v", root["$schema"])
	}
	return &schema{root: root}
}

var known = map[string]bool{
	"$schema": true, "$id": true, "title": true, "description": true, "$defs": true,
	"$ref": true, "type": true, "enum": true, "const": true, "properties": true,
	"additionalProperties": true, "required": true, "items": true, "anyOf": true, "minLength": true,
}

func (s *schema) validate(v any, path string) error { return s.check(s.root, v, path) }

func (s *schema) resolve(ref string) (map[string]any, error) {
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		return nil, fmt.Errorf("$ref %q outside the subset", ref)
	}
	d, ok := s.root["$defs"].(map[string]any)[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$ref %q not defined", ref)
	}
	return d, nil
}

func (s *schema) check(sc map[string]any, v any, path string) error {
	for k := range sc {
		if !known[k] {
			return fmt.Errorf("schema keyword %q outside the subset", k)
		}
	}
	if ref, ok := sc["$ref"].(string); ok {
		d, err := s.resolve(ref)
		if err != nil {
			return err
		}
		if err := s.check(d, v, path); err != nil {
			return err
		}
	}
	if typ, ok := sc["type"].(string); ok {
		okType := false
		switch typ {
		case "object":
			_, okType = v.(map[string]any)
		case "array":
			_, okType = v.([]any)
		case "string":
			_, okType = v.(string)
		case "boolean":
			_, okType = v.(bool)
		default:
			return fmt.Errorf("type %q outside the subset", typ)
		}
		if !okType {
			return fmt.Errorf("%s: not a %s", path, typ)
		}
	}
	if enum, ok := sc["enum"].([]any); ok && !slices.Contains(enum, v) {
		return fmt.Errorf("%s: %v not in the enum", path, v)
	}
	if c, ok := sc["const"]; ok && !reflect.DeepEqual(c, v) {
		return fmt.Errorf("%s: %v is not %v", path, v, c)
	}
	if n, ok := sc["minLength"].(float64); ok {
		if str, _ := v.(string); utf8.RuneCountInString(str) < int(n) {
			return fmt.Errorf("%s: shorter than %v", path, n)
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := sc["properties"].(map[string]any)
		for k, pv := range obj {
			p, ok := props[k].(map[string]any)
			if !ok {
				if ap, ok := sc["additionalProperties"].(bool); ok && !ap {
					return fmt.Errorf("%s: member %q not allowed", path, k)
				}
				continue
			}
			if err := s.check(p, pv, path+"."+k); err != nil {
				return err
			}
		}
		if req, ok := sc["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					return fmt.Errorf("%s: %v required", path, r)
				}
			}
		}
	}
	if arr, ok := v.([]any); ok {
		if it, ok := sc["items"].(map[string]any); ok {
			for i, e := range arr {
				if err := s.check(it, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	if alts, ok := sc["anyOf"].([]any); ok {
		var errs []string
		for _, a := range alts {
			err := s.check(a.(map[string]any), v, path)
			if err == nil {
				errs = nil
				break
			}
			errs = append(errs, err.Error())
		}
		if errs != nil {
			return fmt.Errorf("%s: no alternative of anyOf holds: %s", path, strings.Join(errs, "; "))
		}
	}
	return nil
}

func jsonNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestSchemaMatchesGo: the schema names the members of convert.Node and
// convert.Field, and the kinds, drop kinds and dtypes of the Go code.
func TestSchemaMatchesGo(t *testing.T) {
	s := loadSchema(t)
	defs := s.root["$defs"].(map[string]any)
	node := defs["node"].(map[string]any)["properties"].(map[string]any)
	field := defs["field"].(map[string]any)["properties"].(map[string]any)
	if got, want := keys(node), jsonNames(reflect.TypeOf(convert.Node{})); !slices.Equal(got, want) {
		t.Errorf("node members %v, Go %v", got, want)
	}
	if got, want := keys(field), jsonNames(reflect.TypeOf(convert.Field{})); !slices.Equal(got, want) {
		t.Errorf("field members %v, Go %v", got, want)
	}
	if got := strs(node["kind"].(map[string]any)["enum"]); !slices.Equal(got, structure.Kinds) {
		t.Errorf("kinds %v, Go %v", got, structure.Kinds)
	}
	if got := strs(node["dropped"].(map[string]any)["enum"]); !slices.Equal(got, structure.DropKinds) {
		t.Errorf("drop kinds %v, Go %v", got, structure.DropKinds)
	}
	var dts []string
	for _, d := range format.DTypes() {
		dts = append(dts, d.String())
	}
	if got := strs(node["dtype"].(map[string]any)["enum"]); !slices.Equal(got, dts) {
		t.Errorf("dtypes %v, format %v", got, dts)
	}
}

// TestSchemaRefuses: the validator above is not vacuous.
func TestSchemaRefuses(t *testing.T) {
	s := loadSchema(t)
	for _, js := range []string{
		`{"type":"Flux.Dense"}`,
		`{"kind":"closure"}`,
		`{"kind":"nothing","code":"x"}`,
		`{"kind":"struct","fields":[{"name":"","node":{"kind":"nothing"}}]}`,
		`{"kind":"struct","fields":[{"name":"a"}]}`,
		`{"kind":"tuple","items":[{"kind":"scalar","dtype":"F128"}]}`,
	} {
		var v any
		if err := json.Unmarshal([]byte(js), &v); err != nil {
			t.Fatal(err)
		}
		if s.validate(v, "$") == nil {
			t.Errorf("%s validated", js)
		}
	}
}
